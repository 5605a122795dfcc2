import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PrincipalKind, Role, TenantStatus } from '@portcullis/proto/common';
import { createTestDatabase, pollUntil, testRunId, withPg, type TestDatabase } from '@portcullis/test';
import { migrationsDir, startFakePolicy, startRegistry, type FakePolicy, type Registry } from './harness.js';

describe('tenant registry over gRPC against Postgres and NATS', () => {
  let db: TestDatabase;
  let policy: FakePolicy;
  let registry: Registry;
  const host = (label: string) => `${label}.${testRunId}.example`;

  beforeAll(async () => {
    db = await createTestDatabase('tenant-registry', migrationsDir);
    policy = await startFakePolicy();
    registry = await startRegistry(db, policy.address);
  });

  afterAll(async () => {
    await registry.stop();
    await policy.stop();
    await db.drop();
  });

  /** A fresh tenant with one assistant, owned by a fresh user. */
  async function newTenant(name = `Tenant ${randomUUID().slice(0, 8)}`) {
    const ownerId = randomUUID();
    const { tenant } = await registry.client.createTenant({ name, ownerUserId: ownerId });
    if (!tenant) throw new Error('no tenant in response');
    const { assistant } = await registry.client.createAssistant({ tenantId: tenant.id, name: 'Concierge' });
    if (!assistant) throw new Error('no assistant in response');
    return { tenant, assistant, ownerId };
  }

  /** The owner of a tenant made by newTenant, as the principal making membership changes. */
  const owner = ({ tenant, ownerId }: { tenant: { id: string }; ownerId: string }) => ({
    kind: PrincipalKind.USER,
    id: ownerId,
    tenantId: tenant.id,
  });

  const countTenants = () =>
    withPg(db.ownerUrl, async (c) => (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM tenants')).rows[0]?.n);

  it('makes the creator owner: membership stored, owner role assigned in policy, change announced', async () => {
    const ownerId = randomUUID();
    const { tenant } = await registry.client.createTenant({ name: 'Acme', ownerUserId: ownerId });
    expect(tenant).toMatchObject({ name: 'Acme', status: TenantStatus.ACTIVE });
    const tenantId = tenant!.id;
    expect(policy.calls).toContainEqual({ call: 'assign', tenantId, userId: ownerId, role: Role.OWNER });
    const { membership } = await registry.client.getMembership({ tenantId, userId: ownerId });
    expect(membership).toMatchObject({ tenantId, tenantName: 'Acme', userId: ownerId, role: Role.OWNER });
    await pollUntil(() => registry.notices.find((n) => n.tenantId === tenantId && n.change === 'tenant.created'), {
      timeoutMs: 5_000,
      what: 'tenant.created notice',
    });
  });

  it('creates no tenant when the policy service fails', async () => {
    const before = await countTenants();
    const ownerId = randomUUID();
    policy.failing = true;
    try {
      await expect(registry.client.createTenant({ name: 'Doomed', ownerUserId: ownerId })).rejects.toMatchObject({
        code: 'DEPENDENCY_UNAVAILABLE',
      });
    } finally {
      policy.failing = false;
    }
    expect(await countTenants()).toBe(before);
    expect((await registry.client.listUserTenants({ userId: ownerId })).memberships).toEqual([]);
  });

  it('creates no tenant when the policy service is unreachable', async () => {
    const gone = await startFakePolicy();
    await gone.stop();
    const isolated = await startRegistry(db, gone.address);
    try {
      const before = await countTenants();
      await expect(isolated.client.createTenant({ name: 'Doomed', ownerUserId: randomUUID() })).rejects.toMatchObject({
        code: 'DEPENDENCY_UNAVAILABLE',
      });
      expect(await countTenants()).toBe(before);
    } finally {
      await isolated.stop();
    }
  });

  it('resolves a host with a port and in mixed case, and an assistant id', async () => {
    const { tenant, assistant } = await newTenant('Resolvable');
    const { domain } = await registry.client.addDomain({ tenantId: tenant.id, assistantId: assistant.id, host: `Chat.${host('resolve')}` });
    expect(domain?.host).toBe(`chat.${host('resolve')}`);
    const expected = { tenantId: tenant.id, tenantName: 'Resolvable', tenantStatus: TenantStatus.ACTIVE, assistantId: assistant.id };

    const byHost = await registry.client.resolveContext({ host: `CHAT.${host('resolve').toUpperCase()}:8443` });
    expect(byHost.context).toMatchObject(expected);
    const byAssistant = await registry.client.resolveContext({ assistantId: assistant.id });
    expect(byAssistant.context).toMatchObject(expected);

    const byTenant = await registry.client.resolveContext({ tenantId: tenant.id });
    expect(byTenant.context).toMatchObject({ ...expected, assistantId: '' });
  });

  it('lets the assistant id win over the host', async () => {
    const first = await newTenant();
    const second = await newTenant();
    await registry.client.addDomain({ tenantId: first.tenant.id, assistantId: first.assistant.id, host: host('first') });
    const { context } = await registry.client.resolveContext({ host: host('first'), assistantId: second.assistant.id });
    expect(context).toMatchObject({ tenantId: second.tenant.id, assistantId: second.assistant.id });
  });

  it('answers NOT_FOUND for a host or assistant nobody configured', async () => {
    await expect(registry.client.resolveContext({ host: host('nobody') })).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: 'no tenant is configured for this host',
    });
    await expect(registry.client.resolveContext({ assistantId: randomUUID() })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(registry.client.resolveContext({ tenantId: randomUUID() })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(registry.client.resolveContext({})).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('refuses a suspended tenant without returning its data', async () => {
    const { tenant, assistant } = await newTenant('Suspended Corp');
    await registry.client.addDomain({ tenantId: tenant.id, assistantId: assistant.id, host: host('suspended') });
    await expect(registry.client.resolveContext({ host: host('suspended') })).resolves.toBeDefined();
    await withPg(db.ownerUrl, (c) => c.query("UPDATE tenants SET status = 'suspended' WHERE id = $1", [tenant.id]));

    for (const request of [{ host: host('suspended') }, { assistantId: assistant.id }, { tenantId: tenant.id }]) {
      const error: unknown = await registry.client.resolveContext(request).then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(error).toMatchObject({ code: 'TENANT_SUSPENDED' });
      expect((error as Error).message).not.toMatch(/Suspended Corp|[0-9a-f]{8}-/);
    }
  });

  it('rejects a host another tenant already has, whatever its case or port', async () => {
    const first = await newTenant();
    const second = await newTenant();
    await registry.client.addDomain({ tenantId: first.tenant.id, assistantId: first.assistant.id, host: host('taken') });
    await expect(
      registry.client.addDomain({ tenantId: second.tenant.id, assistantId: second.assistant.id, host: `${host('TAKEN')}:443` }),
    ).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
    const { context } = await registry.client.resolveContext({ host: host('taken') });
    expect(context?.tenantId).toBe(first.tenant.id);
  });

  it("refuses a domain for another tenant's assistant", async () => {
    const first = await newTenant();
    const second = await newTenant();
    await expect(
      registry.client.addDomain({ tenantId: first.tenant.id, assistantId: second.assistant.id, host: host('foreign') }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(registry.client.resolveContext({ host: host('foreign') })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it("lists a user's tenants across tenants, with names and roles", async () => {
    const a = await newTenant('Alpha');
    const b = await newTenant('Beta');
    const userId = a.ownerId;
    const calls = policy.calls.length;
    const { membership } = await registry.client.addMember({ tenantId: b.tenant.id, userId, role: Role.USER, actor: owner(b) });
    expect(membership).toMatchObject({ tenantId: b.tenant.id, tenantName: 'Beta', role: Role.USER });
    expect(policy.calls.slice(calls)).toEqual([{ call: 'assign', tenantId: b.tenant.id, userId, role: Role.USER }]);

    const { memberships } = await registry.client.listUserTenants({ userId });
    expect(memberships.map((m) => ({ tenantId: m.tenantId, tenantName: m.tenantName, userId: m.userId, role: m.role }))).toEqual([
      { tenantId: a.tenant.id, tenantName: 'Alpha', userId, role: Role.OWNER },
      { tenantId: b.tenant.id, tenantName: 'Beta', userId, role: Role.USER },
    ]);
    expect((await registry.client.listUserTenants({ userId: randomUUID() })).memberships).toEqual([]);
  });

  it('changes a role in policy before the membership, withdrawing the old one', async () => {
    const created = await newTenant();
    const { tenant } = created;
    const actor = owner(created);
    const userId = randomUUID();
    await registry.client.addMember({ tenantId: tenant.id, userId, role: Role.ADMIN, actor });
    const calls = policy.calls.length;
    const { membership } = await registry.client.addMember({ tenantId: tenant.id, userId, role: Role.USER, actor });
    expect(membership?.role).toBe(Role.USER);
    expect(policy.calls.slice(calls)).toEqual([
      { call: 'assign', tenantId: tenant.id, userId, role: Role.USER },
      { call: 'revoke', tenantId: tenant.id, userId, role: Role.ADMIN },
    ]);

    policy.failing = true;
    try {
      await expect(registry.client.addMember({ tenantId: tenant.id, userId, role: Role.ADMIN, actor })).rejects.toMatchObject({
        code: 'DEPENDENCY_UNAVAILABLE',
      });
    } finally {
      policy.failing = false;
    }
    expect((await registry.client.getMembership({ tenantId: tenant.id, userId })).membership?.role).toBe(Role.USER);
    await pollUntil(() => registry.notices.find((n) => n.tenantId === tenant.id && n.change === 'member.changed'), {
      timeoutMs: 5_000,
      what: 'member.changed notice',
    });
  });

  it('announces every change with the tenant id', async () => {
    const { tenant, assistant } = await newTenant();
    await registry.client.addDomain({ tenantId: tenant.id, assistantId: assistant.id, host: host('announced') });
    await registry.client.createTeam({ tenantId: tenant.id, name: 'Ops' });
    const expected = ['tenant.created', 'assistant.created', 'domain.added', 'team.created'];
    const seen = await pollUntil(
      () => {
        const changes = registry.notices.filter((n) => n.tenantId === tenant.id).map((n) => n.change);
        return expected.every((change) => changes.includes(change)) ? changes : undefined;
      },
      { timeoutMs: 5_000, what: 'every change notice' },
    );
    expect(seen).toEqual(expected);
  });

  it('answers NOT_FOUND for an absent membership or tenant, INVALID_ARGUMENT for bad input', async () => {
    const created = await newTenant();
    const { tenant } = created;
    await expect(registry.client.getMembership({ tenantId: tenant.id, userId: randomUUID() })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(registry.client.createTeam({ tenantId: randomUUID(), name: 'Ghosts' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(registry.client.createAssistant({ tenantId: randomUUID(), name: 'Ghost' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const stranger = randomUUID();
    await expect(
      registry.client.addMember({
        tenantId: stranger,
        userId: randomUUID(),
        role: Role.USER,
        actor: { kind: PrincipalKind.USER, id: randomUUID(), tenantId: stranger },
      }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(registry.client.createTenant({ name: 'x', ownerUserId: 'not-a-uuid' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(registry.client.createTenant({ name: 'x'.repeat(101), ownerUserId: randomUUID() })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(registry.client.addMember({ tenantId: tenant.id, userId: randomUUID(), actor: owner(created) })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(registry.client.addMember({ tenantId: tenant.id, userId: randomUUID(), role: Role.USER })).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
    });
    await expect(registry.client.resolveContext({ host: 'not a host' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
