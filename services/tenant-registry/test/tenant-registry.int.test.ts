import { timestampDate } from '@bufbuild/protobuf/wkt';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { connectNats, type NatsConnection } from '@portcullis/kit';
import { Outcome, type AuditEvent } from '@portcullis/proto/audit';
import { PrincipalKind, Role, TenantStatus } from '@portcullis/proto/common';
import {
  createTestDatabase,
  infra,
  pollUntil,
  startAuditRecorder,
  testRunId,
  withPg,
  type AuditRecorder,
  type TestDatabase,
} from '@portcullis/test';
import { logger, migrationsDir, startFakePolicy, startRegistry, type FakePolicy, type Registry } from './harness.js';

describe('tenant registry over gRPC against Postgres and NATS', () => {
  let db: TestDatabase;
  let policy: FakePolicy;
  let registry: Registry;
  let nc: NatsConnection;
  /** The audit events of the run, as JetStream delivered them. */
  let recorder: AuditRecorder;
  const host = (label: string) => `${label}.${testRunId}.example`;

  beforeAll(async () => {
    db = await createTestDatabase('tenant-registry', migrationsDir);
    policy = await startFakePolicy();
    registry = await startRegistry(db, policy.address);
    nc = await connectNats({ servers: infra.natsUrl, name: 'tenant-registry-audit-test', logger });
    recorder = await startAuditRecorder({ nc, subjectPrefix: testRunId, name: `tenant_registry_test_${testRunId}` });
  });

  afterAll(async () => {
    await registry.stop();
    await recorder.stop();
    await nc.drain();
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
    // The first owner is the one grant made without an actor.
    expect(policy.calls).toContainEqual({ call: 'assign', tenantId, userId: ownerId, role: Role.OWNER, actorId: '' });
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
    const domain = await registry.addVerifiedDomain({ tenantId: tenant.id, assistantId: assistant.id, host: `Chat.${host('resolve')}` });
    expect(domain.host).toBe(`chat.${host('resolve')}`);
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
    await registry.addVerifiedDomain({ tenantId: first.tenant.id, assistantId: first.assistant.id, host: host('first') });
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
    await registry.addVerifiedDomain({ tenantId: tenant.id, assistantId: assistant.id, host: host('suspended') });
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

  it('never lets another tenant verify a host one tenant has verified, whatever its case or port', async () => {
    const first = await newTenant();
    const second = await newTenant();
    await registry.addVerifiedDomain({ tenantId: first.tenant.id, assistantId: first.assistant.id, host: host('taken') });
    // The claim itself is allowed (it routes nothing); verifying it is not, even with its own record published.
    const { domain: claim } = await registry.client.addDomain({
      tenantId: second.tenant.id,
      assistantId: second.assistant.id,
      host: `${host('TAKEN')}:443`,
    });
    expect(claim?.host).toBe(host('taken'));
    registry.dns.publish(claim!.verification!.recordName, claim!.verification!.recordValue);
    await expect(registry.client.verifyDomain({ tenantId: second.tenant.id, domainId: claim!.id })).rejects.toMatchObject({
      code: 'ALREADY_EXISTS',
    });
    const { context } = await registry.client.resolveContext({ host: host('taken') });
    expect(context).toMatchObject({ tenantId: first.tenant.id, assistantId: first.assistant.id });
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
    expect(policy.calls.slice(calls)).toEqual([{ call: 'assign', tenantId: b.tenant.id, userId, role: Role.USER, actorId: b.ownerId }]);

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
      { call: 'assign', tenantId: tenant.id, userId, role: Role.USER, actorId: created.ownerId },
      { call: 'revoke', tenantId: tenant.id, userId, role: Role.ADMIN, actorId: created.ownerId },
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

  it("records every membership and team change in the tenant's audit trail, by the actor, once", async () => {
    const created = await newTenant();
    const tenantId = created.tenant.id;
    const actor = owner(created);
    const userId = randomUUID();
    await registry.client.addMember({ tenantId, userId, role: Role.ADMIN, actor });
    await registry.client.addMember({ tenantId, userId, role: Role.USER, actor });
    const { team } = await registry.client.createTeam({ tenantId, name: 'Audited' });
    await registry.client.addTeamMember({ tenantId, teamId: team!.id, userId, actor });
    await registry.client.addTeamMember({ tenantId, teamId: team!.id, userId, actor });
    await registry.client.removeTeamMember({ tenantId, teamId: team!.id, userId, actor });
    await registry.client.removeMember({ tenantId, userId, actor });

    const expected = ['member.added', 'member.added', 'member.role_changed', 'team.member_added', 'team.member_removed', 'member.removed'];
    const events = await pollUntil(
      () => {
        const ofTenant = recorder.events.filter((event) => event.tenantId === tenantId);
        return ofTenant.length >= expected.length ? ofTenant : undefined;
      },
      { timeoutMs: 10_000, what: "the tenant's membership events" },
    );
    expect(events.map((event) => event.kind).sort()).toEqual([...expected].sort());
    const ofKind = (kind: string) => events.find((event) => event.kind === kind && event.attributes['user_id'] === userId) as AuditEvent;
    // The first member.added is the creator's own, as owner.
    expect(events.find((event) => event.kind === 'member.added' && event.attributes['user_id'] === created.ownerId)).toMatchObject({
      principal: { id: created.ownerId },
      attributes: { role: 'owner' },
    });
    expect(ofKind('member.role_changed')).toMatchObject({
      principal: { kind: PrincipalKind.USER, id: created.ownerId, tenantId },
      object: 'members',
      action: 'change_role',
      outcome: Outcome.SUCCESS,
      attributes: { role: 'user', previous_role: 'admin' },
    });
    expect(ofKind('team.member_added').attributes).toEqual({ team_id: team!.id, user_id: userId });
    expect(ofKind('member.removed').attributes).toEqual({ user_id: userId, role: 'user' });
    for (const event of events) {
      expect(event.eventId).toMatch(/^[0-9a-f-]{36}$/);
      expect(event.occurredAt).toBeDefined();
    }
  });

  it('announces every change with the tenant id', async () => {
    const { tenant, assistant } = await newTenant();
    // Nothing is exempt from verification here: a domain is announced once it is verified.
    await registry.addVerifiedDomain({ tenantId: tenant.id, assistantId: assistant.id, host: host('announced') });
    await registry.client.createTeam({ tenantId: tenant.id, name: 'Ops' });
    const expected = ['tenant.created', 'assistant.created', 'domain.verified', 'team.created'];
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

  describe('domain ownership', () => {
    /** The domain's row as stored, read past row-level security. */
    const storedDomain = (domainId: string) =>
      withPg(
        db.ownerUrl,
        async (c) =>
          (
            await c.query<{ tenant_id: string; host: string; verified: boolean }>(
              'SELECT tenant_id::text, host, verified_at IS NOT NULL AS verified FROM domains WHERE id = $1',
              [domainId],
            )
          ).rows[0],
      );
    const unresolved = (hostName: string) =>
      expect(registry.client.resolveContext({ host: hostName })).rejects.toMatchObject({ code: 'NOT_FOUND' });

    it('routes nothing until the challenge record is published and VerifyDomain proves it; then announces it', async () => {
      const { tenant, assistant } = await newTenant('Verifying');
      const { domain } = await registry.client.addDomain({ tenantId: tenant.id, assistantId: assistant.id, host: host('verify') });
      expect(domain).toMatchObject({ tenantId: tenant.id, assistantId: assistant.id, host: host('verify') });
      expect(domain?.verifiedAt).toBeUndefined();
      expect(domain?.verification).toMatchObject({
        recordName: `_portcullis-challenge.${host('verify')}`,
        recordValue: expect.stringMatching(/^portcullis-domain-verification=[A-Za-z0-9_-]{32}$/),
      });
      await unresolved(host('verify'));
      // The assistant itself is reachable by id; only the host waits for proof.
      expect((await registry.client.resolveContext({ assistantId: assistant.id })).context?.tenantId).toBe(tenant.id);

      registry.dns.publish(domain!.verification!.recordName, domain!.verification!.recordValue);
      await unresolved(host('verify'));
      const { domain: verified } = await registry.client.verifyDomain({ tenantId: tenant.id, domainId: domain!.id });
      expect(verified).toMatchObject({ id: domain!.id, host: host('verify'), verification: domain!.verification });
      expect(verified?.verifiedAt).toBeDefined();
      expect(registry.dns.queried).toContain(`_portcullis-challenge.${host('verify')}`);
      expect(await storedDomain(domain!.id)).toEqual({ tenant_id: tenant.id, host: host('verify'), verified: true });
      expect((await registry.client.resolveContext({ host: host('verify') })).context).toMatchObject({
        tenantId: tenant.id,
        tenantName: 'Verifying',
        assistantId: assistant.id,
      });
      await pollUntil(() => registry.notices.find((n) => n.tenantId === tenant.id && n.change === 'domain.verified'), {
        timeoutMs: 5_000,
        what: 'domain.verified notice',
      });
      expect(registry.notices.filter((n) => n.tenantId === tenant.id && n.change === 'domain.added')).toEqual([]);

      // Verifying again changes nothing and asks DNS nothing.
      const lookups = registry.dns.queried.length;
      const { domain: again } = await registry.client.verifyDomain({ tenantId: tenant.id, domainId: domain!.id });
      expect(timestampDate(again!.verifiedAt!)).toEqual(timestampDate(verified!.verifiedAt!));
      expect(registry.dns.queried).toHaveLength(lookups);
    });

    it('answers FAILED_PRECONDITION naming the record while it is missing or carries another token, and keeps the host unresolved', async () => {
      const { tenant, assistant } = await newTenant();
      const { domain } = await registry.client.addDomain({ tenantId: tenant.id, assistantId: assistant.id, host: host('unproven') });
      const { recordName, recordValue } = domain!.verification!;
      const error: unknown = await registry.client.verifyDomain({ tenantId: tenant.id, domainId: domain!.id }).then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(error).toMatchObject({ code: 'FAILED_PRECONDITION' });
      expect((error as Error).message).toContain(recordName);
      expect((error as Error).message).toContain(recordValue);

      registry.dns.publish(recordName, 'portcullis-domain-verification=not-this-domains-token-at-all');
      registry.dns.publish(host('unproven'), recordValue);
      await expect(registry.client.verifyDomain({ tenantId: tenant.id, domainId: domain!.id })).rejects.toMatchObject({
        code: 'FAILED_PRECONDITION',
      });
      expect(await storedDomain(domain!.id)).toMatchObject({ verified: false });
      await unresolved(host('unproven'));
      expect(registry.notices.filter((n) => n.tenantId === tenant.id && n.change.startsWith('domain.'))).toEqual([]);
    });

    it('answers DEPENDENCY_UNAVAILABLE when DNS cannot answer, verifying nothing', async () => {
      const { tenant, assistant } = await newTenant();
      const { domain } = await registry.client.addDomain({ tenantId: tenant.id, assistantId: assistant.id, host: host('dns-down') });
      registry.dns.publish(domain!.verification!.recordName, domain!.verification!.recordValue);
      registry.dns.failing = true;
      try {
        await expect(registry.client.verifyDomain({ tenantId: tenant.id, domainId: domain!.id })).rejects.toMatchObject({
          code: 'DEPENDENCY_UNAVAILABLE',
        });
      } finally {
        registry.dns.failing = false;
      }
      expect(await storedDomain(domain!.id)).toMatchObject({ verified: false });
      await unresolved(host('dns-down'));
    });

    it('lets several tenants claim a host; the first to verify holds it, and the others cannot verify it after', async () => {
      const first = await newTenant();
      const second = await newTenant();
      const { domain: firstClaim } = await registry.client.addDomain({
        tenantId: first.tenant.id,
        assistantId: first.assistant.id,
        host: host('contested'),
      });
      const { domain: secondClaim } = await registry.client.addDomain({
        tenantId: second.tenant.id,
        assistantId: second.assistant.id,
        host: `${host('CONTESTED')}:8443`,
      });
      expect(secondClaim?.host).toBe(host('contested'));
      expect(secondClaim?.id).not.toBe(firstClaim?.id);
      // Same record name, a value of each claim's own.
      expect(secondClaim?.verification?.recordName).toBe(firstClaim?.verification?.recordName);
      expect(secondClaim?.verification?.recordValue).not.toBe(firstClaim?.verification?.recordValue);
      await unresolved(host('contested'));

      // The first tenant's record proves nothing for the second's claim.
      registry.dns.publish(firstClaim!.verification!.recordName, firstClaim!.verification!.recordValue);
      await expect(registry.client.verifyDomain({ tenantId: second.tenant.id, domainId: secondClaim!.id })).rejects.toMatchObject({
        code: 'FAILED_PRECONDITION',
      });
      await registry.client.verifyDomain({ tenantId: first.tenant.id, domainId: firstClaim!.id });

      registry.dns.publish(secondClaim!.verification!.recordName, secondClaim!.verification!.recordValue);
      await expect(registry.client.verifyDomain({ tenantId: second.tenant.id, domainId: secondClaim!.id })).rejects.toMatchObject({
        code: 'ALREADY_EXISTS',
      });
      expect(await storedDomain(secondClaim!.id)).toMatchObject({ tenant_id: second.tenant.id, verified: false });
      expect((await registry.client.resolveContext({ host: host('contested') })).context).toMatchObject({
        tenantId: first.tenant.id,
        assistantId: first.assistant.id,
      });
      expect(registry.notices.filter((n) => n.tenantId === second.tenant.id && n.change === 'domain.verified')).toEqual([]);
    });

    it('refuses a tenant claiming a host it has already claimed, verified or not', async () => {
      const { tenant, assistant } = await newTenant();
      const { assistant: other } = await registry.client.createAssistant({ tenantId: tenant.id, name: 'Other' });
      const { domain } = await registry.client.addDomain({ tenantId: tenant.id, assistantId: assistant.id, host: host('twice') });
      await expect(
        registry.client.addDomain({ tenantId: tenant.id, assistantId: other!.id, host: `${host('TWICE')}:443` }),
      ).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
      registry.dns.publish(domain!.verification!.recordName, domain!.verification!.recordValue);
      await registry.client.verifyDomain({ tenantId: tenant.id, domainId: domain!.id });
      await expect(
        registry.client.addDomain({ tenantId: tenant.id, assistantId: assistant.id, host: host('twice') }),
      ).rejects.toMatchObject({
        code: 'ALREADY_EXISTS',
      });
      const rows = await withPg(
        db.ownerUrl,
        async (c) => (await c.query('SELECT 1 FROM domains WHERE tenant_id = $1 AND host = $2', [tenant.id, host('twice')])).rowCount,
      );
      expect(rows).toBe(1);
    });

    it("answers NOT_FOUND for another tenant's domain id, even with its record published, and verifies nothing", async () => {
      const mine = await newTenant();
      const theirs = await newTenant();
      const { domain: foreign } = await registry.client.addDomain({
        tenantId: theirs.tenant.id,
        assistantId: theirs.assistant.id,
        host: host('not-mine'),
      });
      registry.dns.publish(foreign!.verification!.recordName, foreign!.verification!.recordValue);
      await expect(registry.client.verifyDomain({ tenantId: mine.tenant.id, domainId: foreign!.id })).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
      await expect(registry.client.verifyDomain({ tenantId: mine.tenant.id, domainId: randomUUID() })).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
      await expect(registry.client.verifyDomain({ tenantId: mine.tenant.id, domainId: 'not-a-uuid' })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      expect(await storedDomain(foreign!.id)).toMatchObject({ tenant_id: theirs.tenant.id, verified: false });
      await unresolved(host('not-mine'));
      expect(registry.notices.filter((n) => n.tenantId === mine.tenant.id && n.change === 'domain.verified')).toEqual([]);
    });
  });

  describe('platform operations: status, plan, moving a domain', () => {
    const storedTenant = (tenantId: string) =>
      withPg(
        db.ownerUrl,
        async (c) =>
          (await c.query<{ status: string; plan: string }>('SELECT status, plan FROM tenants WHERE id = $1', [tenantId])).rows[0],
      );
    const refusal = (request: { host?: string; assistantId?: string; tenantId?: string }) =>
      registry.client.resolveContext(request).then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
    const noticeOf = (tenantId: string, change: string, count = 1) =>
      pollUntil(() => registry.notices.filter((n) => n.tenantId === tenantId && n.change === change).length >= count || undefined, {
        timeoutMs: 5_000,
        what: `${change} notice`,
      });

    it('suspends a tenant: host, assistant id and tenant id all refuse with TENANT_SUSPENDED; reactivated, all resolve again', async () => {
      const { tenant, assistant } = await newTenant('Paused Corp');
      await registry.addVerifiedDomain({ tenantId: tenant.id, assistantId: assistant.id, host: host('paused') });
      const lookups = [{ host: host('paused') }, { assistantId: assistant.id }, { tenantId: tenant.id }];

      const { tenant: suspended } = await registry.client.setTenantStatus({ tenantId: tenant.id, status: TenantStatus.SUSPENDED });
      expect(suspended).toMatchObject({ id: tenant.id, status: TenantStatus.SUSPENDED, plan: 'free' });
      expect(await storedTenant(tenant.id)).toMatchObject({ status: 'suspended' });
      await noticeOf(tenant.id, 'tenant.status.changed');
      for (const request of lookups) {
        const error = await refusal(request);
        expect(error).toMatchObject({ code: 'TENANT_SUSPENDED' });
        expect((error as Error).message).not.toMatch(/Paused Corp|[0-9a-f]{8}-/);
      }

      await registry.client.setTenantStatus({ tenantId: tenant.id, status: TenantStatus.ACTIVE });
      await noticeOf(tenant.id, 'tenant.status.changed', 2);
      for (const request of lookups) {
        const { context } = await registry.client.resolveContext(request);
        expect(context).toMatchObject({ tenantId: tenant.id, tenantName: 'Paused Corp', tenantStatus: TenantStatus.ACTIVE });
      }
    });

    it('refuses a status change without a status or for an unknown tenant', async () => {
      const { tenant } = await newTenant();
      await expect(registry.client.setTenantStatus({ tenantId: tenant.id })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringMatching(/^status is required/),
      });
      await expect(registry.client.setTenantStatus({ tenantId: randomUUID(), status: TenantStatus.SUSPENDED })).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
      expect(await storedTenant(tenant.id)).toMatchObject({ status: 'active' });
    });

    it('moves a verified domain to another assistant of the tenant; the host then resolves to it, still verified', async () => {
      const { tenant, assistant } = await newTenant();
      const { assistant: second } = await registry.client.createAssistant({ tenantId: tenant.id, name: 'Second' });
      const domain = await registry.addVerifiedDomain({ tenantId: tenant.id, assistantId: assistant.id, host: host('moving') });
      expect((await registry.client.resolveContext({ host: host('moving') })).context?.assistantId).toBe(assistant.id);

      const { domain: moved } = await registry.client.moveDomain({ tenantId: tenant.id, domainId: domain.id, assistantId: second!.id });
      expect(moved).toMatchObject({ id: domain.id, tenantId: tenant.id, assistantId: second!.id, host: host('moving') });
      expect(timestampDate(moved!.verifiedAt!)).toEqual(timestampDate(domain.verifiedAt!));
      expect((await registry.client.resolveContext({ host: host('moving') })).context?.assistantId).toBe(second!.id);
      await noticeOf(tenant.id, 'domain.moved');
    });

    it("never moves a domain to another tenant's assistant, nor another tenant's domain", async () => {
      const mine = await newTenant();
      const theirs = await newTenant();
      const own = await registry.addVerifiedDomain({ tenantId: mine.tenant.id, assistantId: mine.assistant.id, host: host('mine') });
      const foreign = await registry.addVerifiedDomain({
        tenantId: theirs.tenant.id,
        assistantId: theirs.assistant.id,
        host: host('theirs'),
      });
      await expect(
        registry.client.moveDomain({ tenantId: mine.tenant.id, domainId: own.id, assistantId: theirs.assistant.id }),
      ).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(
        registry.client.moveDomain({ tenantId: mine.tenant.id, domainId: foreign.id, assistantId: mine.assistant.id }),
      ).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(
        registry.client.moveDomain({ tenantId: mine.tenant.id, domainId: randomUUID(), assistantId: mine.assistant.id }),
      ).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(registry.client.moveDomain({ tenantId: mine.tenant.id, domainId: own.id, assistantId: 'x' })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      expect((await registry.client.resolveContext({ host: host('mine') })).context?.assistantId).toBe(mine.assistant.id);
      expect((await registry.client.resolveContext({ host: host('theirs') })).context?.assistantId).toBe(theirs.assistant.id);
    });

    it('starts a tenant on the free plan; a new plan is passed to policy, then stored and announced', async () => {
      const { tenant } = await newTenant();
      expect(tenant.plan).toBe('free');
      expect(await storedTenant(tenant.id)).toMatchObject({ plan: 'free' });
      // Told explicitly: the policy service's own default plan is configurable.
      expect(policy.plans.filter((p) => p.tenantId === tenant.id)).toEqual([{ tenantId: tenant.id, plan: 'free' }]);

      await registry.client.setTenantPlan({ tenantId: tenant.id, plan: 'pro' });
      expect(policy.plans).toContainEqual({ tenantId: tenant.id, plan: 'pro' });
      expect(await storedTenant(tenant.id)).toMatchObject({ plan: 'pro' });
      await noticeOf(tenant.id, 'tenant.plan.changed');
    });

    it('keeps the stored plan when the policy service refuses the plan or fails', async () => {
      const { tenant } = await newTenant();
      await expect(registry.client.setTenantPlan({ tenantId: tenant.id, plan: 'platinum' })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      await expect(registry.client.setTenantPlan({ tenantId: tenant.id, plan: 'Not A Plan' })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringMatching(/^plan must be a plan name/),
      });
      policy.failing = true;
      try {
        await expect(registry.client.setTenantPlan({ tenantId: tenant.id, plan: 'pro' })).rejects.toMatchObject({
          code: 'DEPENDENCY_UNAVAILABLE',
        });
      } finally {
        policy.failing = false;
      }
      await expect(registry.client.setTenantPlan({ tenantId: randomUUID(), plan: 'pro' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
      expect(await storedTenant(tenant.id)).toMatchObject({ plan: 'free' });
      // Only the plan given at creation reached the policy service.
      expect(policy.plans.filter((p) => p.tenantId === tenant.id)).toEqual([{ tenantId: tenant.id, plan: 'free' }]);
    });

    it('keeps policy and the stored plan in step when plan changes race', async () => {
      const { tenant } = await newTenant();
      await Promise.all(
        ['pro', 'enterprise', 'free', 'pro', 'enterprise'].map((plan) => registry.client.setTenantPlan({ tenantId: tenant.id, plan })),
      );
      const told = policy.plans.filter((p) => p.tenantId === tenant.id);
      expect(told).toHaveLength(6); // the creation's free, then the five changes
      expect(await storedTenant(tenant.id)).toMatchObject({ plan: told.at(-1)?.plan });
    });
  });

  describe('teams and their members', () => {
    it('lists teams by name and keeps team membership to members of the tenant, idempotently', async () => {
      const created = await newTenant();
      const tenantId = created.tenant.id;
      const { team: zeta } = await registry.client.createTeam({ tenantId, name: 'Zeta' });
      const { team: alpha } = await registry.client.createTeam({ tenantId, name: 'Alpha' });
      expect((await registry.client.listTeams({ tenantId })).teams.map((t) => [t.name, t.id])).toEqual([
        ['Alpha', alpha!.id],
        ['Zeta', zeta!.id],
      ]);

      const userId = randomUUID();
      await registry.client.addMember({ tenantId, userId, role: Role.USER, actor: owner(created) });
      await registry.client.addTeamMember({ tenantId, teamId: zeta!.id, userId, actor: owner(created) });
      await registry.client.addTeamMember({ tenantId, teamId: zeta!.id, userId, actor: owner(created) });
      await registry.client.addTeamMember({ tenantId, teamId: alpha!.id, userId, actor: owner(created) });
      const { teams } = await registry.client.listUserTeams({ tenantId, userId });
      expect(teams.map((t) => ({ id: t.id, tenantId: t.tenantId, name: t.name }))).toEqual([
        { id: alpha!.id, tenantId, name: 'Alpha' },
        { id: zeta!.id, tenantId, name: 'Zeta' },
      ]);
      const rows = await withPg(
        db.ownerUrl,
        async (c) => (await c.query('SELECT 1 FROM team_members WHERE team_id = $1 AND user_id = $2', [zeta!.id, userId])).rowCount,
      );
      expect(rows).toBe(1);
      await pollUntil(() => registry.notices.find((n) => n.tenantId === tenantId && n.change === 'team.members.changed'), {
        timeoutMs: 5_000,
        what: 'team.members.changed notice',
      });

      await registry.client.removeTeamMember({ tenantId, teamId: zeta!.id, userId, actor: owner(created) });
      expect((await registry.client.listUserTeams({ tenantId, userId })).teams.map((t) => t.name)).toEqual(['Alpha']);
      await expect(registry.client.removeTeamMember({ tenantId, teamId: zeta!.id, userId, actor: owner(created) })).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
    });

    it('lets only owners and admins change team members, by their stored role', async () => {
      const created = await newTenant();
      const tenantId = created.tenant.id;
      const { team } = await registry.client.createTeam({ tenantId, name: 'Ops' });
      const userId = randomUUID();
      await registry.client.addMember({ tenantId, userId, role: Role.USER, actor: owner(created) });
      const asUser = { kind: PrincipalKind.USER, id: userId, tenantId, role: Role.OWNER };
      await expect(registry.client.addTeamMember({ tenantId, teamId: team!.id, userId, actor: asUser })).rejects.toMatchObject({
        code: 'PERMISSION_DENIED',
      });
      await expect(registry.client.addTeamMember({ tenantId, teamId: team!.id, userId })).rejects.toMatchObject({
        code: 'PERMISSION_DENIED',
      });
      expect((await registry.client.listUserTeams({ tenantId, userId })).teams).toEqual([]);
    });

    it('refuses a non-member, an unknown team, another tenant’s team and malformed ids', async () => {
      const created = await newTenant();
      const other = await newTenant();
      const tenantId = created.tenant.id;
      const { team } = await registry.client.createTeam({ tenantId, name: 'Ops' });
      const { team: foreign } = await registry.client.createTeam({ tenantId: other.tenant.id, name: 'Theirs' });
      const teamId = team!.id;

      await expect(registry.client.addTeamMember({ tenantId, teamId, userId: randomUUID(), actor: owner(created) })).rejects.toMatchObject({
        code: 'FAILED_PRECONDITION',
      });
      // A member of the other tenant is not a member of this one.
      await expect(registry.client.addTeamMember({ tenantId, teamId, userId: other.ownerId, actor: owner(created) })).rejects.toMatchObject(
        {
          code: 'FAILED_PRECONDITION',
        },
      );
      await expect(
        registry.client.addTeamMember({ tenantId, teamId: randomUUID(), userId: created.ownerId, actor: owner(created) }),
      ).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
      await expect(
        registry.client.addTeamMember({ tenantId, teamId: foreign!.id, userId: created.ownerId, actor: owner(created) }),
      ).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
      await expect(
        registry.client.addTeamMember({ tenantId, teamId: 'ops', userId: created.ownerId, actor: owner(created) }),
      ).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      await expect(registry.client.listTeams({ tenantId: '' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect((await registry.client.listUserTeams({ tenantId, userId: created.ownerId })).teams).toEqual([]);
    });
  });

  describe('chat groups and their members', () => {
    it('creates chat groups per assistant, lists them by name, and keeps membership to members of the tenant', async () => {
      const created = await newTenant();
      const tenantId = created.tenant.id;
      const assistantId = created.assistant.id;
      const actor = owner(created);
      const { chatGroup: zeta } = await registry.client.createChatGroup({ tenantId, assistantId, name: 'Zeta', actor });
      const { chatGroup: alpha } = await registry.client.createChatGroup({ tenantId, assistantId, name: ' Alpha ', actor });
      expect(alpha).toMatchObject({ tenantId, assistantId, name: 'Alpha' });
      await pollUntil(() => registry.notices.find((n) => n.tenantId === tenantId && n.change === 'chat-group.created'), {
        timeoutMs: 5_000,
        what: 'chat-group.created notice',
      });
      // Names are unique per assistant, not per tenant.
      await expect(registry.client.createChatGroup({ tenantId, assistantId, name: 'Zeta', actor })).rejects.toMatchObject({
        code: 'ALREADY_EXISTS',
      });
      const { assistant: second } = await registry.client.createAssistant({ tenantId, name: 'Second' });
      const { chatGroup: zetaTwo } = await registry.client.createChatGroup({ tenantId, assistantId: second!.id, name: 'Zeta', actor });
      expect((await registry.client.listChatGroups({ tenantId, assistantId })).chatGroups.map((g) => [g.name, g.id])).toEqual([
        ['Alpha', alpha!.id],
        ['Zeta', zeta!.id],
      ]);
      expect((await registry.client.listChatGroups({ tenantId, assistantId: second!.id })).chatGroups.map((g) => g.id)).toEqual([
        zetaTwo!.id,
      ]);

      const userId = randomUUID();
      await registry.client.addMember({ tenantId, userId, role: Role.USER, actor });
      await registry.client.addChatGroupMember({ tenantId, chatGroupId: zeta!.id, userId, actor });
      await registry.client.addChatGroupMember({ tenantId, chatGroupId: zeta!.id, userId, actor });
      await registry.client.addChatGroupMember({ tenantId, chatGroupId: zeta!.id, userId: created.ownerId, actor });
      expect((await registry.client.listChatGroupMembers({ tenantId, chatGroupId: zeta!.id })).userIds.sort()).toEqual(
        [userId, created.ownerId].sort(),
      );
      expect((await registry.client.listChatGroupMembers({ tenantId, chatGroupId: alpha!.id })).userIds).toEqual([]);
      await pollUntil(() => registry.notices.find((n) => n.tenantId === tenantId && n.change === 'chat-group.members.changed'), {
        timeoutMs: 5_000,
        what: 'chat-group.members.changed notice',
      });

      await registry.client.removeChatGroupMember({ tenantId, chatGroupId: zeta!.id, userId: created.ownerId, actor });
      expect((await registry.client.listChatGroupMembers({ tenantId, chatGroupId: zeta!.id })).userIds).toEqual([userId]);
      await expect(
        registry.client.removeChatGroupMember({ tenantId, chatGroupId: zeta!.id, userId: created.ownerId, actor }),
      ).rejects.toMatchObject({ code: 'NOT_FOUND' });

      // Removing the person from the tenant takes them out of its chat groups.
      await registry.client.removeMember({ tenantId, userId, actor });
      expect((await registry.client.listChatGroupMembers({ tenantId, chatGroupId: zeta!.id })).userIds).toEqual([]);
    });

    it('lets only owners and admins create groups and change members, by their stored role', async () => {
      const created = await newTenant();
      const tenantId = created.tenant.id;
      const assistantId = created.assistant.id;
      const { chatGroup } = await registry.client.createChatGroup({ tenantId, assistantId, name: 'Ops', actor: owner(created) });
      const userId = randomUUID();
      const adminId = randomUUID();
      await registry.client.addMember({ tenantId, userId, role: Role.USER, actor: owner(created) });
      await registry.client.addMember({ tenantId, userId: adminId, role: Role.ADMIN, actor: owner(created) });
      // A user claiming to be an owner is still a user.
      const asUser = { kind: PrincipalKind.USER, id: userId, tenantId, role: Role.OWNER };
      await expect(registry.client.createChatGroup({ tenantId, assistantId, name: 'Mine', actor: asUser })).rejects.toMatchObject({
        code: 'PERMISSION_DENIED',
      });
      await expect(
        registry.client.addChatGroupMember({ tenantId, chatGroupId: chatGroup!.id, userId, actor: asUser }),
      ).rejects.toMatchObject({
        code: 'PERMISSION_DENIED',
      });
      await expect(registry.client.addChatGroupMember({ tenantId, chatGroupId: chatGroup!.id, userId })).rejects.toMatchObject({
        code: 'PERMISSION_DENIED',
      });
      // An owner of another tenant is no principal of this one.
      const other = await newTenant();
      await expect(registry.client.createChatGroup({ tenantId, assistantId, name: 'Theirs', actor: owner(other) })).rejects.toMatchObject({
        code: 'PERMISSION_DENIED',
      });
      expect((await registry.client.listChatGroups({ tenantId, assistantId })).chatGroups.map((g) => g.name)).toEqual(['Ops']);
      expect((await registry.client.listChatGroupMembers({ tenantId, chatGroupId: chatGroup!.id })).userIds).toEqual([]);

      const asAdmin = { kind: PrincipalKind.USER, id: adminId, tenantId, role: Role.ADMIN };
      await registry.client.addChatGroupMember({ tenantId, chatGroupId: chatGroup!.id, userId, actor: asAdmin });
      expect((await registry.client.listChatGroupMembers({ tenantId, chatGroupId: chatGroup!.id })).userIds).toEqual([userId]);
    });

    it('refuses a non-member, a member of another tenant, unknown or foreign groups and assistants, and malformed input', async () => {
      const created = await newTenant();
      const other = await newTenant();
      const tenantId = created.tenant.id;
      const actor = owner(created);
      const { chatGroup } = await registry.client.createChatGroup({ tenantId, assistantId: created.assistant.id, name: 'Ops', actor });
      const { chatGroup: foreign } = await registry.client.createChatGroup({
        tenantId: other.tenant.id,
        assistantId: other.assistant.id,
        name: 'Theirs',
        actor: owner(other),
      });
      const chatGroupId = chatGroup!.id;

      await expect(registry.client.addChatGroupMember({ tenantId, chatGroupId, userId: randomUUID(), actor })).rejects.toMatchObject({
        code: 'FAILED_PRECONDITION',
      });
      // A member of the other tenant is not a member of this one.
      await expect(registry.client.addChatGroupMember({ tenantId, chatGroupId, userId: other.ownerId, actor })).rejects.toMatchObject({
        code: 'FAILED_PRECONDITION',
      });
      await expect(
        registry.client.addChatGroupMember({ tenantId, chatGroupId: randomUUID(), userId: created.ownerId, actor }),
      ).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(
        registry.client.addChatGroupMember({ tenantId, chatGroupId: foreign!.id, userId: created.ownerId, actor }),
      ).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(
        registry.client.createChatGroup({ tenantId, assistantId: other.assistant.id, name: 'Cross', actor }),
      ).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(registry.client.listChatGroups({ tenantId, assistantId: randomUUID() })).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(registry.client.createChatGroup({ tenantId, assistantId: created.assistant.id, name: '', actor })).rejects.toMatchObject(
        { code: 'INVALID_ARGUMENT' },
      );
      await expect(
        registry.client.addChatGroupMember({ tenantId, chatGroupId: 'ops', userId: created.ownerId, actor }),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(registry.client.listChatGroupMembers({ tenantId: '', chatGroupId })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect((await registry.client.listChatGroupMembers({ tenantId, chatGroupId })).userIds).toEqual([]);
      expect((await registry.client.listChatGroupMembers({ tenantId: other.tenant.id, chatGroupId: foreign!.id })).userIds).toEqual([]);
    });
  });

  describe('removing members', () => {
    /** A tenant with an admin and a user besides its owner; the user is in a team. */
    async function staffedTenant() {
      const created = await newTenant();
      const tenantId = created.tenant.id;
      const adminId = randomUUID();
      const userId = randomUUID();
      await registry.client.addMember({ tenantId, userId: adminId, role: Role.ADMIN, actor: owner(created) });
      await registry.client.addMember({ tenantId, userId, role: Role.USER, actor: owner(created) });
      const { team } = await registry.client.createTeam({ tenantId, name: 'Ops' });
      await registry.client.addTeamMember({ tenantId, teamId: team!.id, userId, actor: owner(created) });
      await registry.client.addTeamMember({ tenantId, teamId: team!.id, userId: adminId, actor: owner(created) });
      const as = (id: string) => ({ kind: PrincipalKind.USER, id, tenantId });
      return { ...created, tenantId, adminId, userId, teamId: team!.id, as };
    }

    const teamRows = (teamId: string, userId: string) =>
      withPg(
        db.ownerUrl,
        async (c) => (await c.query('SELECT 1 FROM team_members WHERE team_id = $1 AND user_id = $2', [teamId, userId])).rowCount,
      );

    it('answers when a membership began; someone removed and added again gets a new start, a role change keeps it', async () => {
      const t = await staffedTenant();
      const sinceOf = async () => {
        const { membership } = await registry.client.getMembership({ tenantId: t.tenantId, userId: t.userId });
        expect(membership?.memberSince).toBeDefined();
        return timestampDate(membership!.memberSince!).getTime();
      };
      const first = await sinceOf();
      const listed = (await registry.client.listUserTenants({ userId: t.userId })).memberships;
      expect(listed.map((m) => timestampDate(m.memberSince!).getTime())).toEqual([first]);
      await registry.client.addMember({ tenantId: t.tenantId, userId: t.userId, role: Role.ADMIN, actor: t.as(t.ownerId) });
      expect(await sinceOf()).toBe(first);

      await registry.client.removeMember({ tenantId: t.tenantId, userId: t.userId, actor: t.as(t.ownerId) });
      await registry.client.addMember({ tenantId: t.tenantId, userId: t.userId, role: Role.USER, actor: t.as(t.ownerId) });
      expect(await sinceOf()).toBeGreaterThan(first);
    });

    it('lets an admin remove a user: role revoked in policy, membership and team memberships gone, change announced', async () => {
      const t = await staffedTenant();
      const calls = policy.calls.length;
      await registry.client.removeMember({ tenantId: t.tenantId, userId: t.userId, actor: t.as(t.adminId) });
      // Revoked before the delete, and once more after it (a concurrent add may have granted it in between).
      // Both carry the admin making the removal as the actor.
      const revoke = { call: 'revoke', tenantId: t.tenantId, userId: t.userId, role: Role.USER, actorId: t.adminId };
      expect(policy.calls.slice(calls)).toEqual([revoke, revoke]);
      await expect(registry.client.getMembership({ tenantId: t.tenantId, userId: t.userId })).rejects.toMatchObject({ code: 'NOT_FOUND' });
      expect(await teamRows(t.teamId, t.userId)).toBe(0);
      expect(await teamRows(t.teamId, t.adminId)).toBe(1);
      expect((await registry.client.listUserTenants({ userId: t.userId })).memberships).toEqual([]);
      await pollUntil(
        () => registry.notices.filter((n) => n.tenantId === t.tenantId && n.change === 'member.changed').length >= 3 || undefined,
        {
          timeoutMs: 5_000,
          what: 'member.changed notice of the removal',
        },
      );

      await expect(registry.client.removeMember({ tenantId: t.tenantId, userId: t.userId, actor: t.as(t.adminId) })).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
      // A second removal finds nothing to remove and changes nothing in policy.
      expect(policy.calls.slice(calls)).toHaveLength(2);
    });

    it('lets an owner remove an admin, but an admin neither an admin nor an owner, and nobody an owner', async () => {
      const t = await staffedTenant();
      const calls = policy.calls.length;
      await expect(registry.client.removeMember({ tenantId: t.tenantId, userId: t.ownerId, actor: t.as(t.adminId) })).rejects.toMatchObject(
        {
          code: 'PERMISSION_DENIED',
        },
      );
      await expect(registry.client.removeMember({ tenantId: t.tenantId, userId: t.ownerId, actor: t.as(t.ownerId) })).rejects.toMatchObject(
        {
          code: 'FAILED_PRECONDITION',
        },
      );
      await expect(registry.client.removeMember({ tenantId: t.tenantId, userId: t.adminId, actor: t.as(t.userId) })).rejects.toMatchObject({
        code: 'PERMISSION_DENIED',
      });
      const second = randomUUID();
      await registry.client.addMember({ tenantId: t.tenantId, userId: second, role: Role.ADMIN, actor: owner(t) });
      await expect(registry.client.removeMember({ tenantId: t.tenantId, userId: second, actor: t.as(t.adminId) })).rejects.toMatchObject({
        code: 'PERMISSION_DENIED',
      });
      expect(policy.calls.slice(calls)).toEqual([
        { call: 'assign', tenantId: t.tenantId, userId: second, role: Role.ADMIN, actorId: t.ownerId },
      ]);

      await registry.client.removeMember({ tenantId: t.tenantId, userId: t.adminId, actor: t.as(t.ownerId) });
      expect(policy.calls.at(-1)).toEqual({
        call: 'revoke',
        tenantId: t.tenantId,
        userId: t.adminId,
        role: Role.ADMIN,
        actorId: t.ownerId,
      });
      expect(await teamRows(t.teamId, t.adminId)).toBe(0);
      expect((await registry.client.getMembership({ tenantId: t.tenantId, userId: t.ownerId })).membership?.role).toBe(Role.OWNER);
    });

    it('keeps the membership when the policy service fails', async () => {
      const t = await staffedTenant();
      policy.failing = true;
      try {
        await expect(
          registry.client.removeMember({ tenantId: t.tenantId, userId: t.userId, actor: t.as(t.ownerId) }),
        ).rejects.toMatchObject({
          code: 'DEPENDENCY_UNAVAILABLE',
        });
      } finally {
        policy.failing = false;
      }
      expect((await registry.client.getMembership({ tenantId: t.tenantId, userId: t.userId })).membership?.role).toBe(Role.USER);
      expect(await teamRows(t.teamId, t.userId)).toBe(1);
    });

    it('needs a person of the tenant as the actor', async () => {
      const t = await staffedTenant();
      const other = await newTenant();
      for (const actor of [
        undefined,
        { kind: PrincipalKind.USER, id: other.ownerId, tenantId: other.tenant.id },
        { kind: PrincipalKind.API_KEY, id: t.ownerId, tenantId: t.tenantId },
        { kind: PrincipalKind.ROBOT, id: randomUUID(), tenantId: t.tenantId, actingUserId: t.ownerId },
      ]) {
        await expect(
          registry.client.removeMember({ tenantId: t.tenantId, userId: t.userId, ...(actor ? { actor } : {}) }),
        ).rejects.toMatchObject({
          code: 'PERMISSION_DENIED',
        });
      }
      // Someone of another tenant who is no member here.
      await expect(
        registry.client.removeMember({ tenantId: t.tenantId, userId: t.userId, actor: t.as(other.ownerId) }),
      ).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
      await expect(registry.client.removeMember({ tenantId: t.tenantId, userId: 'x', actor: t.as(t.ownerId) })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      expect((await registry.client.getMembership({ tenantId: t.tenantId, userId: t.userId })).membership?.role).toBe(Role.USER);
    });
  });
});
