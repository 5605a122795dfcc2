import { createTenantScope } from '@portcullis/kit';
import type { ApiKey, PrismaClient } from '../generated/prisma/client.js';
import type { ApiKeyKind, ApiKeyLookup, ApiKeyRecord, ApiKeyStore } from '../libraries/api-keys.js';

const kindOf = (kind: string): ApiKeyKind => (kind === 'tenant' ? 'tenant' : 'user');

function recordOf(row: ApiKey): ApiKeyRecord {
  return {
    id: row.id,
    tenantId: row.tenantId,
    kind: kindOf(row.kind),
    userId: row.userId,
    createdBy: row.createdBy,
    name: row.name,
    scopes: row.scopes,
    createdAt: row.createdAt,
    expiresAt: row.expiresAt,
    revokedAt: row.revokedAt,
    lastUsedAt: row.lastUsedAt,
    graceUntil: row.graceUntil,
    rotatedFrom: row.rotatedFrom,
  };
}

interface LookupRow {
  id: string;
  tenant_id: string;
  kind: string;
  user_id: string | null;
  created_by: string;
  secret_hash: string;
  scopes: string[];
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  grace_until: Date | null;
}

/**
 * api_keys is tenant-owned (row-level security): every query runs in the tenant's scope,
 * except verification's lookup by key id, which goes through the SECURITY DEFINER function
 * find_api_key (see the migration) because the tenant is not known yet.
 */
export function createApiKeyQueries(prisma: PrismaClient): ApiKeyStore {
  const scope = createTenantScope(prisma);
  return {
    insert(key) {
      return scope.run(key.tenantId, async (tx) => recordOf(await tx.apiKey.create({ data: key })));
    },
    list(tenantId) {
      return scope.run(tenantId, async (tx) => (await tx.apiKey.findMany({ orderBy: { createdAt: 'desc' } })).map(recordOf));
    },
    get(tenantId, id) {
      return scope.run(tenantId, async (tx) => {
        const row = await tx.apiKey.findUnique({ where: { id } });
        return row ? recordOf(row) : undefined;
      });
    },
    revoke(tenantId, id, at) {
      return scope.run(tenantId, async (tx) => {
        const key = await tx.apiKey.findUnique({ where: { id }, select: { rotatedFrom: true } });
        if (!key) return false;
        const own = await tx.apiKey.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: at } });
        // The key it replaced dies with it if it is still in its grace period.
        if (key.rotatedFrom !== null) {
          await tx.apiKey.updateMany({ where: { id: key.rotatedFrom, revokedAt: null, graceUntil: { gt: at } }, data: { revokedAt: at } });
        }
        return own.count > 0;
      });
    },
    rotate(tenantId, oldId, graceUntil, successor) {
      return scope.run(tenantId, async (tx) => {
        // One conditional update: of two concurrent rotations of a key, only one matches.
        const { count } = await tx.apiKey.updateMany({ where: { id: oldId, revokedAt: null, graceUntil: null }, data: { graceUntil } });
        if (count === 0) return undefined;
        return recordOf(await tx.apiKey.create({ data: successor }));
      });
    },
    async findForVerification(id) {
      const [row] = await prisma.$queryRaw<LookupRow[]>`
        SELECT id, tenant_id::text AS tenant_id, kind, user_id::text AS user_id, created_by::text AS created_by, secret_hash, scopes, created_at, expires_at, revoked_at, grace_until
          FROM find_api_key(${id})`;
      if (!row) return undefined;
      const lookup: ApiKeyLookup = {
        id: row.id,
        tenantId: row.tenant_id,
        kind: kindOf(row.kind),
        userId: row.user_id,
        createdBy: row.created_by,
        secretHash: row.secret_hash,
        scopes: row.scopes,
        createdAt: row.created_at,
        expiresAt: row.expires_at,
        revokedAt: row.revoked_at,
        graceUntil: row.grace_until,
      };
      return lookup;
    },
    async touch(tenantId, id, at, minIntervalMs) {
      await scope.run(tenantId, (tx) =>
        tx.apiKey.updateMany({
          where: { id, OR: [{ lastUsedAt: null }, { lastUsedAt: { lt: new Date(at.getTime() - minIntervalMs) } }] },
          data: { lastUsedAt: at },
        }),
      );
    },
  };
}
