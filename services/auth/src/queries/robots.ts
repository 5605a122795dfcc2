import { createTenantScope } from '@portcullis/kit';
import type { JWK } from 'jose';
import type { PrismaClient, Robot } from '../generated/prisma/client.js';
import type { VerificationKeyStore } from '../libraries/robot-tokens.js';
import type { RobotRecord, RobotStore } from '../libraries/robots.js';

const recordOf = (row: Robot): RobotRecord => ({
  id: row.id,
  tenantId: row.tenantId,
  name: row.name,
  creatorId: row.creatorId,
  teamIds: row.teamIds,
  signingKid: row.signingKid,
  createdAt: row.createdAt,
  expiresAt: row.expiresAt,
  revokedAt: row.revokedAt,
  revokedBy: row.revokedBy,
});

/**
 * robots is tenant-owned (row-level security): every query runs in the tenant's scope. A robot
 * token names its tenant in its signed claims, so even verification never reads outside it.
 */
export function createRobotQueries(prisma: PrismaClient): RobotStore {
  const scope = createTenantScope(prisma);
  return {
    insert(robot) {
      return scope.run(robot.tenantId, async (tx) => recordOf(await tx.robot.create({ data: robot })));
    },
    list(tenantId) {
      return scope.run(tenantId, async (tx) =>
        (await tx.robot.findMany({ orderBy: [{ createdAt: 'desc' }, { id: 'asc' }] })).map(recordOf),
      );
    },
    get(tenantId, id) {
      return scope.run(tenantId, async (tx) => {
        const row = await tx.robot.findUnique({ where: { id } });
        return row ? recordOf(row) : undefined;
      });
    },
    revoke(tenantId, id, at, by) {
      return scope.run(tenantId, async (tx) => {
        const { count } = await tx.robot.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: at, revokedBy: by } });
        return count > 0;
      });
    },
  };
}

/**
 * Public signing keys by kid, including keys retired from the JWKS (retirement ends a key's
 * publication and signing; its row stays). Only robot-token verification reads them this way.
 */
export function createVerificationKeyQueries(prisma: PrismaClient): VerificationKeyStore {
  return {
    async findPublicKey(kid) {
      const row = await prisma.signingKey.findUnique({ where: { kid }, select: { alg: true, publicJwk: true } });
      return row ? { alg: row.alg, publicJwk: row.publicJwk as JWK } : undefined;
    },
  };
}
