import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind, Role } from '@portcullis/proto/common';
import {
  createTestDatabase,
  pollUntil,
  startAuditRecorder,
  testRunId,
  withPg,
  type AuditRecorder,
  type TestDatabase,
} from '@portcullis/test';
import { startReplica, type Replica } from './replica.js';

describe('policy service against Postgres and NATS', () => {
  let db: TestDatabase;
  let one: Replica;
  let two: Replica;
  /** The audit events of the run, as JetStream delivered them. */
  let recorder: AuditRecorder;
  const tenantA = randomUUID();
  const tenantB = randomUUID();
  const owner = randomUUID();
  const alice = randomUUID();
  const bob = randomUUID();
  const assistant1 = randomUUID();
  const assistant2 = randomUUID();
  const principal = (id: string, tenantId = tenantA) => ({ kind: PrincipalKind.USER, id, tenantId });
  const byOwner = { actor: principal(owner) };

  beforeAll(async () => {
    db = await createTestDatabase('policy', new URL('../prisma/migrations', import.meta.url).pathname);
    [one, two] = await Promise.all([startReplica(db), startReplica(db)]);
    recorder = await startAuditRecorder({ nc: one.nc, subjectPrefix: testRunId, name: `policy_test_${testRunId}` });
    // The tenant's first owner: the only grant without an actor.
    await one.client.assignRole({ tenantId: tenantA, userId: owner, role: Role.OWNER });
  });

  afterAll(async () => {
    await recorder.stop();
    for (const replica of [one, two]) await replica.close();
    await db.drop();
  });

  it('denies by default and allows after a role is assigned by the owner', async () => {
    const ask = () => one.client.check({ principal: principal(alice), tenantId: tenantA, object: 'tools', action: 'invoke' });
    expect((await ask()).allowed).toBe(false);
    await one.client.assignRole({ tenantId: tenantA, userId: alice, role: Role.ADMIN, ...byOwner });
    expect(await ask()).toMatchObject({ allowed: true, reason: expect.stringContaining('role:admin') });
  });

  it('records assistant roles and permissions in the tenant’s trail once each, and no tenant-wide role', async () => {
    const erin = randomUUID();
    await one.client.assignRole({ tenantId: tenantA, userId: erin, role: Role.USER, ...byOwner });
    await one.client.assignRole({ tenantId: tenantA, userId: erin, role: Role.ADMIN, assistantId: assistant2, ...byOwner });
    await two.client.grantPermission({ tenantId: tenantA, userId: erin, object: 'audit', action: 'read', ...byOwner });
    await two.client.grantPermission({ tenantId: tenantA, userId: erin, object: 'audit', action: 'read', ...byOwner });
    await one.client.revokePermission({ tenantId: tenantA, userId: erin, object: 'audit', action: 'read', ...byOwner });
    await one.client.revokeRole({ tenantId: tenantA, userId: erin, role: Role.ADMIN, assistantId: assistant2, ...byOwner });

    const expected = ['policy.role_assigned', 'policy.permission_granted', 'policy.permission_revoked', 'policy.role_revoked'];
    const events = await pollUntil(
      () => {
        const about = recorder.events.filter((event) => event.tenantId === tenantA && event.attributes['user_id'] === erin);
        return about.length >= expected.length ? about : undefined;
      },
      { timeoutMs: 10_000, what: "erin's grant events" },
    );
    expect(events.map((event) => event.kind).sort()).toEqual([...expected].sort());
    expect(events.find((event) => event.kind === 'policy.role_assigned')).toMatchObject({
      principal: { kind: PrincipalKind.USER, id: owner, tenantId: tenantA },
      assistantId: assistant2,
      object: 'members',
      action: 'assign_role',
      outcome: Outcome.SUCCESS,
      attributes: { role: 'admin', assistant_id: assistant2 },
    });
    expect(events.find((event) => event.kind === 'policy.permission_granted')?.attributes).toEqual({
      user_id: erin,
      capability: 'audit:read',
    });
  });

  it('never lets a principal act in another tenant', async () => {
    await one.client.assignRole({ tenantId: tenantB, userId: bob, role: Role.OWNER });
    const crossed = await one.client.check({ principal: principal(bob, tenantB), tenantId: tenantA, object: 'tenant', action: 'read' });
    expect(crossed).toMatchObject({ allowed: false, reason: 'principal belongs to another tenant' });
    const spoofed = await one.client.check({ principal: principal(bob), tenantId: tenantA, object: 'tenant', action: 'read' });
    expect(spoofed.allowed).toBe(false);
    expect((await one.client.listCapabilities({ principal: principal(bob, tenantB), tenantId: tenantA })).capabilities).toEqual([]);
  });

  it('propagates a role change made on one replica to the other', async () => {
    const carol = randomUUID();
    await two.client.assignRole({ tenantId: tenantA, userId: carol, role: Role.ADMIN, ...byOwner });
    const ask = () => two.client.check({ principal: principal(carol), tenantId: tenantA, object: 'audit', action: 'read' });
    expect((await ask()).allowed).toBe(true);
    await one.client.revokeRole({ tenantId: tenantA, userId: carol, role: Role.ADMIN, ...byOwner });
    await pollUntil(async () => ((await ask()).allowed ? undefined : true), {
      timeoutMs: 2_000,
      what: 'replica two to see the revocation',
    });
  });

  it('holds per-assistant roles and permissions on their assistant, and propagates them and plan changes', async () => {
    const dana = randomUUID();
    const ask = (replica: Replica, object: string, action: string, assistantId = assistant1) =>
      replica.client.check({ principal: principal(dana), tenantId: tenantA, assistantId, object, action });
    // Load replica two's rules before the changes, so it must learn of them through NATS.
    expect((await ask(two, 'tools', 'read')).allowed).toBe(false);
    await one.client.assignRole({ tenantId: tenantA, userId: dana, role: Role.USER, assistantId: assistant1, ...byOwner });
    await one.client.grantPermission({
      tenantId: tenantA,
      userId: dana,
      assistantId: assistant1,
      object: 'mcp',
      action: 'invoke',
      ...byOwner,
    });
    await pollUntil(async () => ((await ask(two, 'tools', 'read')).allowed ? true : undefined), {
      timeoutMs: 2_000,
      what: 'the assistant role',
    });
    expect((await ask(two, 'tools', 'read', assistant2)).allowed).toBe(false);
    expect((await ask(two, 'tenant', 'read')).allowed).toBe(false);
    // The default plan (free) excludes MCP; a pro plan allows the permission.
    expect(await ask(two, 'mcp', 'invoke')).toMatchObject({ allowed: false, reason: 'plan free excludes mcp:invoke' });
    await one.client.setTenantPlan({ tenantId: tenantA, plan: 'pro' });
    const allowed = await pollUntil(
      async () => {
        const decision = await ask(two, 'mcp', 'invoke');
        return decision.allowed ? decision : undefined;
      },
      { timeoutMs: 2_000, what: 'replica two to see the plan' },
    );
    expect(allowed.reason).toBe(`granted by a permission on assistant ${assistant1} (mcp:invoke)`);
    const explained = await two.client.explain({
      check: { principal: principal(dana), tenantId: tenantA, assistantId: assistant1, object: 'mcp', action: 'invoke' },
    });
    expect(explained.matched).toMatchObject({ kind: 'permission', name: 'mcp:invoke', assistantId: assistant1 });
    expect(explained.held.map((grant) => `${grant.kind}:${grant.name}`)).toEqual(['role:role:user', 'permission:mcp:invoke']);
    await one.client.setTenantPlan({ tenantId: tenantA, plan: 'free' });
  });

  it('decides who may grant from the stored roles: admins grant only users, users nothing', async () => {
    const admin = randomUUID();
    const user = randomUUID();
    const target = randomUUID();
    await one.client.assignRole({ tenantId: tenantA, userId: admin, role: Role.ADMIN, ...byOwner });
    await one.client.assignRole({ tenantId: tenantA, userId: user, role: Role.USER, ...byOwner });
    await expect(
      one.client.assignRole({ tenantId: tenantA, userId: target, role: Role.ADMIN, actor: principal(admin) }),
    ).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
    });
    await expect(
      one.client.revokeRole({ tenantId: tenantA, userId: owner, role: Role.OWNER, actor: principal(admin) }),
    ).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
    });
    await expect(
      one.client.assignRole({ tenantId: tenantA, userId: target, role: Role.USER, actor: { ...principal(user), role: Role.OWNER } }),
    ).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(one.client.assignRole({ tenantId: tenantA, userId: target, role: Role.USER })).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
    });
    await one.client.assignRole({ tenantId: tenantA, userId: target, role: Role.USER, actor: principal(admin) });
    await one.client.grantPermission({ tenantId: tenantA, userId: target, object: 'tools', action: 'invoke', actor: principal(admin) });
    await expect(
      one.client.grantPermission({ tenantId: tenantA, userId: target, object: 'billing', action: 'manage', actor: principal(admin) }),
    ).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    // Removal revokes twice: the second is a no-op, not an error.
    await one.client.revokeRole({ tenantId: tenantA, userId: target, role: Role.USER, actor: principal(admin) });
    await one.client.revokeRole({ tenantId: tenantA, userId: target, role: Role.USER, actor: principal(admin) });
    // The permission went with the last role.
    const left = await withPg(
      db.ownerUrl,
      async (c) => (await c.query('SELECT 1 FROM permissions WHERE subject = $1', [`user:${target}`])).rowCount,
    );
    expect(left).toBe(0);
    await expect(one.client.revokeRole({ tenantId: tenantA, userId: owner, role: Role.OWNER, ...byOwner })).rejects.toMatchObject({
      code: 'FAILED_PRECONDITION',
    });
  });

  it('gives a tenant exactly one first owner when replicas race', async () => {
    const tenant = randomUUID();
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, index) =>
        (index % 2 ? one : two).client.assignRole({ tenantId: tenant, userId: randomUUID(), role: Role.OWNER }),
      ),
    );
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    const owners = await withPg(
      db.ownerUrl,
      async (c) => (await c.query("SELECT 1 FROM role_assignments WHERE tenant_id = $1 AND role = 'role:owner'", [tenant])).rowCount,
    );
    expect(owners).toBe(1);
  });

  it("caps a robot by the robot template and its creator's current role, on every replica", async () => {
    const creator = randomUUID();
    const robot = { kind: PrincipalKind.ROBOT, id: randomUUID(), tenantId: tenantA, actingUserId: creator };
    const ask = (replica: Replica, object: string, action: string) =>
      replica.client.check({ principal: robot, tenantId: tenantA, object, action });
    await one.client.assignRole({ tenantId: tenantA, userId: creator, role: Role.ADMIN, ...byOwner });
    expect(await ask(two, 'tools', 'invoke')).toMatchObject({ allowed: true, reason: expect.stringContaining('role:robot') });
    expect(await ask(two, 'members', 'manage')).toMatchObject({ allowed: false, reason: 'robots may not members:manage' });

    await one.client.assignRole({ tenantId: tenantA, userId: creator, role: Role.USER, ...byOwner });
    await one.client.revokeRole({ tenantId: tenantA, userId: creator, role: Role.ADMIN, ...byOwner });
    const denied = await pollUntil(
      async () => {
        const decision = await ask(two, 'tools', 'invoke');
        return decision.allowed ? undefined : decision;
      },
      { timeoutMs: 2_000, what: "replica two to cap the robot by its creator's new role" },
    );
    expect(denied.reason).toBe(`creator user:${creator} lacks tools:invoke`);
    await expect(
      one.client.check({ principal: { ...robot, actingUserId: '' }, tenantId: tenantA, object: 'tools', action: 'read' }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const robotRows = await withPg(
      db.ownerUrl,
      async (c) => (await c.query("SELECT 1 FROM role_assignments WHERE subject LIKE 'robot:%'")).rowCount,
    );
    expect(robotRows).toBe(0);
  });

  it('rejects malformed input with INVALID_ARGUMENT', async () => {
    await expect(one.client.assignRole({ tenantId: 'not-a-uuid', userId: alice, role: Role.USER, ...byOwner })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(one.client.assignRole({ tenantId: tenantA, userId: alice, role: Role.UNSPECIFIED, ...byOwner })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(one.client.setTenantPlan({ tenantId: tenantA, plan: 'platinum' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(
      one.client.batchCheck({
        principal: principal(owner),
        tenantId: tenantA,
        queries: Array.from({ length: 101 }, () => ({ object: 'tenant', action: 'read' })),
      }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('stores a grant once per scope: tenant-wide and on an assistant are two rows, repeats are none', async () => {
    const erin = randomUUID();
    for (let i = 0; i < 2; i += 1) {
      await one.client.assignRole({ tenantId: tenantA, userId: erin, role: Role.USER, ...byOwner });
      await one.client.assignRole({ tenantId: tenantA, userId: erin, role: Role.USER, assistantId: assistant1, ...byOwner });
      await one.client.grantPermission({ tenantId: tenantA, userId: erin, object: 'tools', action: 'invoke', ...byOwner });
    }
    const counts = await withPg(db.ownerUrl, async (c) => ({
      roles: (await c.query('SELECT 1 FROM role_assignments WHERE subject = $1', [`user:${erin}`])).rowCount,
      permissions: (await c.query('SELECT 1 FROM permissions WHERE subject = $1', [`user:${erin}`])).rowCount,
    }));
    expect(counts).toEqual({ roles: 2, permissions: 1 });
  });

  describe('row-level security', () => {
    const tables = ['role_assignments', 'permissions', 'tenant_plans'];

    beforeAll(async () => {
      await one.client.setTenantPlan({ tenantId: tenantA, plan: 'free' });
      await one.client.setTenantPlan({ tenantId: tenantB, plan: 'pro' });
      await one.client.grantPermission({
        tenantId: tenantB,
        userId: bob,
        object: 'tools',
        action: 'invoke',
        actor: principal(bob, tenantB),
      });
    });

    it.each(tables)('%s returns zero rows when no tenant is set', async (table) => {
      const rows = await withPg(db.appUrl, async (c) => (await c.query<{ tenant_id: string }>(`SELECT tenant_id FROM ${table}`)).rows);
      expect(rows).toHaveLength(0);
      const all = await withPg(db.ownerUrl, async (c) => (await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]);
      expect(all?.n).toBeGreaterThanOrEqual(1);
    });

    it.each([
      ['role_assignments', "INSERT INTO role_assignments (tenant_id, subject, role) VALUES ($1, 'user:x', 'role:owner')"],
      ['permissions', "INSERT INTO permissions (tenant_id, subject, object, action) VALUES ($1, 'user:x', 'billing', 'manage')"],
      ['tenant_plans', "INSERT INTO tenant_plans (tenant_id, plan) VALUES ($1, 'enterprise')"],
    ])("%s with tenant A set never returns tenant B's rows, nor writes into B", async (table, insert) => {
      const rows = await withPg(db.appUrl, async (c) => {
        await c.query('BEGIN');
        await c.query("SELECT set_config('app.tenant_id', $1, true)", [tenantA]);
        const result = await c.query<{ tenant_id: string }>(`SELECT tenant_id FROM ${table}`);
        await expect(c.query(insert, [tenantB])).rejects.toThrow(/row-level security/);
        await c.query('ROLLBACK');
        return result.rows;
      });
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.every((row) => row.tenant_id === tenantA)).toBe(true);
    });
  });
});
