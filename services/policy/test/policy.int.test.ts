import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PrismaPg } from '@prisma/adapter-pg';
import {
  connectNats,
  createGrpcClient,
  createGrpcServer,
  createLogger,
  createTenantScope,
  type GrpcClient,
  type GrpcServer,
  type NatsConnection,
} from '@portcullis/kit';
import { PrincipalKind, Role } from '@portcullis/proto/common';
import { PolicyService } from '@portcullis/proto/policy';
import { createTestDatabase, infra, pollUntil, testRunId, withPg, type TestDatabase } from '@portcullis/test';
import { createPolicyChangeChannel } from '../src/events/policy-changes.js';
import { PrismaClient } from '../src/generated/prisma/client.js';
import { createPolicyService } from '../src/grpc/policy-service.js';
import { createDecisionLibrary } from '../src/libraries/decisions.js';
import { parseRoleTemplates } from '../src/libraries/role-templates.js';
import { createRoleAssignmentQueries } from '../src/queries/role-assignments.js';

const policies = new URL('../../../policies/', import.meta.url);
const modelText = readFileSync(new URL('model.conf', policies), 'utf8');
const templates = parseRoleTemplates(readFileSync(new URL('roles.csv', policies), 'utf8'));
const logger = createLogger({ name: 'policy-test', level: 'silent' });

interface Replica {
  server: GrpcServer;
  client: GrpcClient<typeof PolicyService>;
  prisma: PrismaClient;
  nc: NatsConnection;
}

async function startReplica(db: TestDatabase): Promise<Replica> {
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.appUrl }) });
  const nc = await connectNats({ servers: infra.natsUrl, name: 'policy-test', logger });
  const assignments = createRoleAssignmentQueries(createTenantScope(prisma));
  const decisions = createDecisionLibrary({ modelText, templates, assignments, maxCachedTenants: 100, maxAgeMs: 60_000 });
  const changes = createPolicyChangeChannel({ nc, subjectPrefix: testRunId, logger });
  changes.subscribe((tenantId) => decisions.invalidate(tenantId));
  await nc.flush();
  const server = createGrpcServer({ logger, services: [createPolicyService({ decisions, assignments, announceChange: changes.publish })] });
  const port = await server.listen('127.0.0.1', 0);
  server.setServing(true);
  return { server, prisma, nc, client: createGrpcClient(PolicyService, { address: `127.0.0.1:${port}`, deadlineMs: 3_000 }) };
}

describe('policy service against Postgres and NATS', () => {
  let db: TestDatabase;
  let one: Replica;
  let two: Replica;
  const tenantA = randomUUID();
  const tenantB = randomUUID();
  const alice = randomUUID();
  const bob = randomUUID();
  const principal = (id: string, tenantId: string) => ({ kind: PrincipalKind.USER, id, tenantId });

  beforeAll(async () => {
    db = await createTestDatabase('policy', new URL('../prisma/migrations', import.meta.url).pathname);
    [one, two] = await Promise.all([startReplica(db), startReplica(db)]);
  });

  afterAll(async () => {
    for (const replica of [one, two]) {
      replica.client.close();
      await replica.server.drain(1_000);
      await replica.nc.drain();
      await replica.prisma.$disconnect();
    }
    await db.drop();
  });

  it('denies by default and allows after a role is assigned', async () => {
    const before = await one.client.check({ principal: principal(alice, tenantA), tenantId: tenantA, object: 'tools', action: 'invoke' });
    expect(before.allowed).toBe(false);
    await one.client.assignRole({ tenantId: tenantA, userId: alice, role: Role.ADMIN });
    const after = await one.client.check({ principal: principal(alice, tenantA), tenantId: tenantA, object: 'tools', action: 'invoke' });
    expect(after).toMatchObject({ allowed: true, reason: expect.stringContaining('role:admin') });
  });

  it('never lets a principal act in another tenant', async () => {
    await one.client.assignRole({ tenantId: tenantB, userId: bob, role: Role.OWNER });
    const crossed = await one.client.check({ principal: principal(bob, tenantB), tenantId: tenantA, object: 'tenant', action: 'read' });
    expect(crossed.allowed).toBe(false);
    const spoofed = await one.client.check({ principal: principal(bob, tenantA), tenantId: tenantA, object: 'tenant', action: 'read' });
    expect(spoofed.allowed).toBe(false);
  });

  it('propagates a role change made on one replica to the other', async () => {
    const carol = randomUUID();
    await two.client.assignRole({ tenantId: tenantA, userId: carol, role: Role.ADMIN });
    const ask = () => two.client.check({ principal: principal(carol, tenantA), tenantId: tenantA, object: 'audit', action: 'read' });
    expect((await ask()).allowed).toBe(true);
    await one.client.revokeRole({ tenantId: tenantA, userId: carol, role: Role.ADMIN });
    await pollUntil(async () => ((await ask()).allowed ? undefined : true), {
      timeoutMs: 1_000,
      what: 'replica two to see the revocation',
    });
  });

  it("caps a robot by the robot template and its creator's current role, on every replica", async () => {
    const creator = randomUUID();
    const robot = { kind: PrincipalKind.ROBOT, id: randomUUID(), tenantId: tenantA, actingUserId: creator };
    const ask = (replica: Replica, object: string, action: string) =>
      replica.client.check({ principal: robot, tenantId: tenantA, object, action });
    await one.client.assignRole({ tenantId: tenantA, userId: creator, role: Role.ADMIN });
    expect(await ask(two, 'tools', 'invoke')).toMatchObject({ allowed: true, reason: expect.stringContaining('role:robot') });
    expect(await ask(two, 'members', 'manage')).toMatchObject({ allowed: false, reason: 'robots may not members:manage' });

    await one.client.revokeRole({ tenantId: tenantA, userId: creator, role: Role.ADMIN });
    await one.client.assignRole({ tenantId: tenantA, userId: creator, role: Role.USER });
    const denied = await pollUntil(
      async () => {
        const decision = await ask(two, 'tools', 'invoke');
        return decision.allowed ? undefined : decision;
      },
      { timeoutMs: 1_000, what: "replica two to cap the robot by its creator's new role" },
    );
    expect(denied.reason).toBe(`creator user:${creator} lacks tools:invoke`);
    await expect(
      one.client.check({ principal: { ...robot, actingUserId: '' }, tenantId: tenantA, object: 'tools', action: 'read' }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    // The robot itself was never given a role row.
    const robotRows = await withPg(
      db.ownerUrl,
      async (c) => (await c.query("SELECT 1 FROM role_assignments WHERE subject LIKE 'robot:%'")).rowCount,
    );
    expect(robotRows).toBe(0);
  });

  it('rejects malformed input with INVALID_ARGUMENT', async () => {
    await expect(one.client.assignRole({ tenantId: 'not-a-uuid', userId: alice, role: Role.USER })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(one.client.assignRole({ tenantId: tenantA, userId: alice, role: Role.UNSPECIFIED })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });

  describe('row-level security', () => {
    it('returns zero rows when no tenant is set', async () => {
      const rows = await withPg(
        db.appUrl,
        async (c) => (await c.query<{ tenant_id: string }>('SELECT tenant_id FROM role_assignments')).rows,
      );
      expect(rows).toHaveLength(0);
      const all = await withPg(
        db.ownerUrl,
        async (c) => (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM role_assignments')).rows[0],
      );
      expect(all?.n).toBeGreaterThanOrEqual(2);
    });

    it("with tenant A set never returns tenant B's rows, nor writes into B", async () => {
      const rows = await withPg(db.appUrl, async (c) => {
        await c.query('BEGIN');
        await c.query("SELECT set_config('app.tenant_id', $1, true)", [tenantA]);
        const result = await c.query<{ tenant_id: string }>('SELECT tenant_id FROM role_assignments');
        await expect(
          c.query("INSERT INTO role_assignments (tenant_id, subject, role) VALUES ($1, 'user:x', 'role:owner')", [tenantB]),
        ).rejects.toThrow(/row-level security/);
        await c.query('ROLLBACK');
        return result.rows;
      });
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.every((row) => row.tenant_id === tenantA)).toBe(true);
    });
  });
});
