import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { AppError } from '@portcullis/kit';
import { PrincipalKind, Role, type Principal } from '@portcullis/proto/common';
import { fakeClock } from '../test-support/memory-stores.js';
import { createApiKeys, normaliseScopes, parseApiKey, type ApiKeyRecord, type ApiKeyStore } from './api-keys.js';

const tenant = '00000000-0000-4000-8000-00000000000a';
const owner = '00000000-0000-4000-8000-0000000000f1';
const user = '00000000-0000-4000-8000-0000000000f2';
const admin = '00000000-0000-4000-8000-0000000000f3';
const roles = new Map([
  [owner, Role.OWNER],
  [user, Role.USER],
  [admin, Role.ADMIN],
]);
const actor = (id: string): Principal => ({
  $typeName: 'portcullis.common.v1.Principal',
  kind: PrincipalKind.USER,
  id,
  tenantId: tenant,
  role: Role.UNSPECIFIED,
  actingUserId: '',
  teamIds: [],
});

function memoryStore(): ApiKeyStore & { rows: Map<string, ApiKeyRecord & { secretHash: string }> } {
  const rows = new Map<string, ApiKeyRecord & { secretHash: string }>();
  return {
    rows,
    async insert(key) {
      const row = { ...key, revokedAt: null, lastUsedAt: null, graceUntil: null };
      rows.set(key.id, row);
      return row;
    },
    async list(tenantId) {
      return [...rows.values()].filter((r) => r.tenantId === tenantId);
    },
    async get(tenantId, id) {
      const row = rows.get(id);
      return row?.tenantId === tenantId ? row : undefined;
    },
    async revoke(_tenantId, id, at) {
      const row = rows.get(id);
      if (!row || row.revokedAt) return false;
      row.revokedAt = at;
      return true;
    },
    async rotate(_tenantId, oldId, graceUntil, successor) {
      const old = rows.get(oldId);
      if (!old || old.revokedAt || old.graceUntil) return undefined;
      old.graceUntil = graceUntil;
      return this.insert(successor);
    },
    async findForVerification(id) {
      return rows.get(id);
    },
    async touch(_tenantId, id, at, minIntervalMs) {
      const row = rows.get(id);
      if (row && (!row.lastUsedAt || row.lastUsedAt.getTime() < at.getTime() - minIntervalMs)) row.lastUsedAt = at;
    },
  };
}

function setUp() {
  const clock = fakeClock();
  const store = memoryStore();
  const logs: unknown[] = [];
  const apiKeys = createApiKeys({
    store,
    tenants: {
      async getMembership({ tenantId, userId }) {
        const role = roles.get(userId ?? '');
        if (role === undefined || tenantId !== tenant) throw new AppError('NOT_FOUND', 'membership not found');
        return { membership: { tenantId, userId, role } } as never;
      },
    },
    logger: { info: (...args: unknown[]) => logs.push(args), warn: (...args: unknown[]) => logs.push(args) },
    now: clock.now,
  });
  const create = (by: string, kind: 'tenant' | 'user', expiresAt?: Date) =>
    apiKeys.create({ tenantId: tenant, actor: actor(by), kind, name: 'ci', scopes: ['tools:invoke'], expiresAt });
  return { clock, store, apiKeys, logs, create };
}

describe('API keys', () => {
  it('verifies a fresh key and records its use at most once a minute', async () => {
    const { apiKeys, store, clock, create } = setUp();
    const { key, apiKey } = await create(owner, 'tenant');
    expect(await apiKeys.verify(key)).toEqual({
      keyId: apiKey.id,
      tenantId: tenant,
      kind: 'tenant',
      userId: null,
      createdBy: owner,
      scopes: ['tools:invoke'],
    });
    const firstUse = store.rows.get(apiKey.id)?.lastUsedAt;
    clock.advance(30_000);
    await apiKeys.verify(key);
    expect(store.rows.get(apiKey.id)?.lastUsedAt).toEqual(firstUse);
    clock.advance(31_000);
    await apiKeys.verify(key);
    expect(store.rows.get(apiKey.id)?.lastUsedAt?.getTime()).toBe(clock.now());
  });

  it('stops an expired key, and a rotated key after its grace period', async () => {
    const { apiKeys, clock, create } = setUp();
    const expiring = await create(owner, 'user', new Date(clock.now() + 10_000));
    const old = await create(owner, 'tenant');
    const rotated = await apiKeys.rotate(tenant, actor(owner), old.apiKey.id, 60);
    clock.advance(10_000);
    await expect(apiKeys.verify(expiring.key)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(apiKeys.verify(old.key)).resolves.toMatchObject({ keyId: old.apiKey.id });
    clock.advance(50_000);
    await expect(apiKeys.verify(old.key)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(apiKeys.verify(rotated.key)).resolves.toMatchObject({ keyId: rotated.apiKey.id });
  });

  it('lets only owners and admins create tenant keys; users create user keys acting as themselves', async () => {
    const { create } = setUp();
    await expect(create(user, 'tenant')).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(create(user, 'user')).resolves.toMatchObject({ apiKey: { kind: 'user', userId: user, createdBy: user } });
  });

  it("never lets a manager take over another person's key by rotating it", async () => {
    const { apiKeys, create } = setUp();
    const ownersUserKey = await create(owner, 'user');
    const ownersTenantKey = await create(owner, 'tenant');
    for (const keyId of [ownersUserKey.apiKey.id, ownersTenantKey.apiKey.id]) {
      await expect(apiKeys.rotate(tenant, actor(admin), keyId, 60)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    }
    const adminsTenantKey = await create(admin, 'tenant');
    await expect(apiKeys.rotate(tenant, actor(admin), adminsTenantKey.apiKey.id, 60)).resolves.toMatchObject({
      apiKey: { kind: 'tenant' },
    });
    const usersKey = await create(user, 'user');
    await expect(apiKeys.rotate(tenant, actor(owner), usersKey.apiKey.id, 60)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(apiKeys.rotate(tenant, actor(user), usersKey.apiKey.id, 60)).resolves.toMatchObject({ apiKey: { userId: user } });
  });

  it('never logs a key', async () => {
    const { apiKeys, logs, create } = setUp();
    const { key } = await create(owner, 'tenant');
    await apiKeys.verify(key);
    expect(JSON.stringify(logs)).not.toContain(key.slice(21));
  });

  it('validates scopes as capabilities object:action', () => {
    expect(normaliseScopes(['tools:invoke', 'audit:read', 'tools:invoke'])).toEqual(['audit:read', 'tools:invoke']);
    for (const bad of [[], ['tools'], ['*:*'], ['Tools:invoke'], ['tools:invoke:x']]) {
      expect(() => normaliseScopes(bad)).toThrow(AppError);
    }
  });

  it('parser: random input is only ever refused with UNAUTHENTICATED', async () => {
    const { apiKeys } = setUp();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string(),
          fc.string().map((s) => `pck_${s}`),
          fc.uint8Array().map((b) => Buffer.from(b).toString('latin1')),
        ),
        async (input) => {
          expect(() => parseApiKey(input)).toThrow(AppError);
          await expect(apiKeys.verify(input)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
        },
      ),
    );
  });
});
