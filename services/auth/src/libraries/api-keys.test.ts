import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { AppError } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind, Role, type Principal } from '@portcullis/proto/common';
import { recordingAudit } from '../test-support/audit-events.js';
import { fakeClock } from '../test-support/memory-stores.js';
import { createApiKeys, normaliseScopes, parseApiKey, type ApiKeyRecord, type ApiKeyStore } from './api-keys.js';

const tenant = '00000000-0000-4000-8000-00000000000a';
const owner = '00000000-0000-4000-8000-0000000000f1';
const user = '00000000-0000-4000-8000-0000000000f2';
const admin = '00000000-0000-4000-8000-0000000000f3';
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

/**
 * tenant-registry as API keys use it: each member's role and when their membership began
 * (since undefined: an answer without member_since); a test may change them or take it down.
 */
function fakeRegistry(clock: { now: () => number }) {
  const joinedAt = new Date(clock.now() - 86_400_000);
  const members = new Map<string, { role: Role; since: Date | undefined }>([
    [owner, { role: Role.OWNER, since: joinedAt }],
    [user, { role: Role.USER, since: joinedAt }],
    [admin, { role: Role.ADMIN, since: joinedAt }],
  ]);
  const state = { down: false, calls: 0 };
  return {
    members,
    state,
    /** The person leaves the tenant and is added again, with the same role, now. */
    removeAndAddAgain(userId: string) {
      const member = members.get(userId);
      if (!member) throw new Error(`${userId} is not a member`);
      members.set(userId, { role: member.role, since: new Date(clock.now()) });
    },
    directory: {
      async getMembership({ tenantId, userId }: { tenantId?: string; userId?: string }) {
        state.calls += 1;
        if (state.down) throw new AppError('DEPENDENCY_UNAVAILABLE', 'a required service is unavailable');
        const member = members.get(userId ?? '');
        if (member === undefined || tenantId !== tenant) throw new AppError('NOT_FOUND', 'membership not found');
        const memberSince = member.since && timestampFromDate(member.since);
        return { membership: { tenantId, userId, role: member.role, memberSince } } as never;
      },
    },
  };
}

function setUp() {
  const clock = fakeClock();
  const store = memoryStore();
  const registry = fakeRegistry(clock);
  const logs: unknown[] = [];
  const recorded = recordingAudit();
  const apiKeys = createApiKeys({
    store,
    tenants: registry.directory,
    audit: recorded.audit,
    logger: { info: (...args: unknown[]) => logs.push(args), warn: (...args: unknown[]) => logs.push(args) },
    now: clock.now,
  });
  const create = (by: string, kind: 'tenant' | 'user', expiresAt?: Date) =>
    apiKeys.create({ tenantId: tenant, actor: actor(by), kind, name: 'ci', scopes: ['tools:invoke'], expiresAt });
  return { clock, store, registry, apiKeys, logs, create, recorded };
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

  it('refuses a user key once its user left the tenant, and for good after they are added again; records no refused use', async () => {
    const { apiKeys, store, clock, registry, create } = setUp();
    const old = await create(user, 'user');
    await expect(apiKeys.verify(old.key)).resolves.toMatchObject({ keyId: old.apiKey.id, userId: user });
    const lastUsed = store.rows.get(old.apiKey.id)?.lastUsedAt;
    clock.advance(3_600_000);
    registry.members.delete(user);
    const gone = { code: 'UNAUTHENTICATED', message: 'the person behind this API key no longer belongs to this tenant' };
    await expect(apiKeys.verify(old.key)).rejects.toMatchObject(gone);
    clock.advance(60_000);
    registry.members.set(user, { role: Role.USER, since: new Date(clock.now()) });
    await expect(apiKeys.verify(old.key)).rejects.toMatchObject(gone);
    clock.advance(86_400_000);
    await expect(apiKeys.verify(old.key)).rejects.toMatchObject(gone);
    // A refused key's use is not recorded: last_used_at still says when it last worked.
    expect(store.rows.get(old.apiKey.id)?.lastUsedAt).toEqual(lastUsed);

    const fresh = await create(user, 'user');
    await expect(apiKeys.verify(fresh.key)).resolves.toMatchObject({ keyId: fresh.apiKey.id, userId: user });
  });

  it("refuses a tenant key once its creator left and came back; other people's keys are untouched", async () => {
    const { apiKeys, clock, registry, create } = setUp();
    const admins = await create(admin, 'tenant');
    const owners = await create(owner, 'tenant');
    clock.advance(60_000);
    registry.removeAndAddAgain(admin);
    await expect(apiKeys.verify(admins.key)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(apiKeys.verify(owners.key)).resolves.toMatchObject({ keyId: owners.apiKey.id, createdBy: owner });
    // A role change is not a new membership.
    registry.members.set(owner, { role: Role.ADMIN, since: registry.members.get(owner)?.since });
    await expect(apiKeys.verify(owners.key)).resolves.toMatchObject({ keyId: owners.apiKey.id });
  });

  it('judges a rotated key by its rotator and the time of rotation, the key it replaced by its own', async () => {
    const { apiKeys, clock, registry, create } = setUp();
    const original = await create(admin, 'tenant');
    clock.advance(60_000);
    // The owner left and came back after the key was made, and then rotated it.
    registry.removeAndAddAgain(owner);
    clock.advance(60_000);
    const rotated = await apiKeys.rotate(tenant, actor(owner), original.apiKey.id, 3_600);
    await expect(apiKeys.verify(rotated.key)).resolves.toMatchObject({ keyId: rotated.apiKey.id, createdBy: owner });
    await expect(apiKeys.verify(original.key)).resolves.toMatchObject({ keyId: original.apiKey.id, createdBy: admin });
    // The admin who made the original leaves and comes back: the original (in its grace) dies, the rotated key does not.
    clock.advance(60_000);
    registry.removeAndAddAgain(admin);
    await expect(apiKeys.verify(original.key)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(apiKeys.verify(rotated.key)).resolves.toMatchObject({ keyId: rotated.apiKey.id });
  });

  it('allows one second of clock difference between auth and tenant-registry, not more', async () => {
    const { apiKeys, clock, registry, create } = setUp();
    const { key } = await create(user, 'user');
    registry.members.set(user, { role: Role.USER, since: new Date(clock.now() + 1_000) });
    await expect(apiKeys.verify(key)).resolves.toMatchObject({ userId: user });
    registry.members.set(user, { role: Role.USER, since: new Date(clock.now() + 1_001) });
    await expect(apiKeys.verify(key)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('denies with DEPENDENCY_UNAVAILABLE, recording nothing, while tenant-registry is down or answers without member_since', async () => {
    const { apiKeys, store, registry, logs, create } = setUp();
    const { key, apiKey } = await create(owner, 'tenant');
    registry.state.down = true;
    await expect(apiKeys.verify(key)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(store.rows.get(apiKey.id)?.lastUsedAt).toBeNull();
    registry.state.down = false;
    registry.members.set(owner, { role: Role.OWNER, since: undefined });
    await expect(apiKeys.verify(key)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(store.rows.get(apiKey.id)?.lastUsedAt).toBeNull();
    expect(JSON.stringify(logs)).toContain('without member_since');
  });

  it('asks tenant-registry only about keys whose secret matched', async () => {
    const { apiKeys, registry, create } = setUp();
    const { key } = await create(owner, 'tenant');
    const callsBefore = registry.state.calls;
    const tampered = `${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`;
    await expect(apiKeys.verify(tampered)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(apiKeys.verify(`pck_${'a'.repeat(16)}_${'A'.repeat(43)}`)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(registry.state.calls).toBe(callsBefore);
    await apiKeys.verify(key);
    expect(registry.state.calls).toBe(callsBefore + 1);
  });

  it('records creation, rotation and revocation by the acting person, with id, prefix and scopes but never a secret', async () => {
    const { apiKeys, create, recorded, clock } = setUp();
    const created = await create(admin, 'tenant', new Date(clock.now() + 86_400_000));
    const rotated = await apiKeys.rotate(tenant, actor(admin), created.apiKey.id, 60);
    await apiKeys.revoke(tenant, actor(owner), rotated.apiKey.id);
    // Revoking it again changes nothing and records nothing.
    await apiKeys.revoke(tenant, actor(owner), rotated.apiKey.id);
    const by = (id: string, role: Role) => ({ kind: PrincipalKind.USER, id, tenantId: tenant, role });
    const keyOf = (id: string) => ({
      key_id: id,
      key_prefix: `pck_${id}`,
      key_kind: 'tenant',
      name: 'ci',
      scopes: 'tools:invoke',
      expires_at: new Date(clock.now() + 86_400_000).toISOString(),
    });
    expect(recorded.events).toEqual([
      {
        tenantId: tenant,
        kind: 'apikey.created',
        principal: by(admin, Role.ADMIN),
        object: 'apikeys',
        action: 'create',
        outcome: Outcome.SUCCESS,
        attributes: keyOf(created.apiKey.id),
      },
      {
        tenantId: tenant,
        kind: 'apikey.rotated',
        principal: by(admin, Role.ADMIN),
        object: 'apikeys',
        action: 'rotate',
        outcome: Outcome.SUCCESS,
        attributes: {
          ...keyOf(rotated.apiKey.id),
          rotated_from: created.apiKey.id,
          old_key_valid_until: new Date(clock.now() + 60_000).toISOString(),
        },
      },
      {
        tenantId: tenant,
        kind: 'apikey.revoked',
        principal: by(owner, Role.OWNER),
        object: 'apikeys',
        action: 'revoke',
        outcome: Outcome.SUCCESS,
        attributes: keyOf(rotated.apiKey.id),
      },
    ]);
    const text = JSON.stringify(recorded.events);
    for (const key of [created.key, rotated.key]) expect(text).not.toContain(key.slice(21));
  });

  it('hands out no key whose creation was not recorded, and records a user key with its user', async () => {
    const { create, recorded, store } = setUp();
    recorded.fail();
    await expect(create(user, 'user')).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    // The row exists, but its secret was never shown to anyone.
    expect(store.rows.size).toBe(1);
    recorded.fail(false);
    const { apiKey } = await create(user, 'user');
    expect(recorded.ofKind('apikey.created')[0]?.attributes).toMatchObject({ key_kind: 'user', user_id: user, key_id: apiKey.id });
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
