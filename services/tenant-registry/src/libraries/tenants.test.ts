import { randomUUID } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { AppError, type AuditEventInit } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind, Role } from '@portcullis/proto/common';
import { createDomainOwnership } from './domain-ownership.js';
import type { DomainRecord, TenantChange, TenantRecord } from './records.js';
import { createTenantLibrary, type TenantStore } from './tenants.js';

const owner = '11111111-1111-4111-8111-111111111111';
const tenantId = '22222222-2222-4222-8222-222222222222';
const assistantId = '33333333-3333-4333-8333-333333333333';
const domainId = '44444444-4444-4444-8444-444444444444';
const otherTenantId = '55555555-5555-4555-8555-555555555555';

type Grant = { tenantId: string; userId: string; role: Role; actor?: unknown };

function setup({
  policyDown = false,
  storeFails = false,
  unknownPlans = [] as string[],
  assignFails = false,
  dnsDown = false,
}: {
  policyDown?: boolean;
  /** Only the owner's role assignment fails (the plan was accepted). */
  assignFails?: boolean;
  storeFails?: boolean;
  /** Plans the fake policy service answers INVALID_ARGUMENT for. */
  unknownPlans?: string[];
  /** The fake DNS answers every query with SERVFAIL. */
  dnsDown?: boolean;
} = {}) {
  const steps: string[] = [];
  const grants: Grant[] = [];
  const revoked: Grant[] = [];
  const announced: [string, TenantChange][] = [];
  const stored: TenantRecord = { id: tenantId, name: 'Acme', status: 'active', plan: 'free' };
  /** The stored domains by id; each test's first is `domainId`. */
  const domains = new Map<string, DomainRecord>();
  /** TXT records of the fake DNS by name, and every name it was asked for. */
  const txt = new Map<string, string[][]>();
  const queried: string[] = [];
  const ownedDomain = (tid: string, did: string) => {
    const domain = domains.get(did);
    if (domain?.tenantId !== tid) throw new AppError('NOT_FOUND', 'domain not found');
    return domain;
  };
  const store: TenantStore = {
    async insertTenantWithOwner(tenant, ownerUserId) {
      steps.push(`insert tenant ${tenant.id} owned by ${ownerUserId}`);
      if (storeFails) throw new AppError('INTERNAL', 'database down');
      return { ...tenant, status: 'active', plan: 'free' };
    },
    async moveDomain(tid, did, aid) {
      steps.push(`move domain ${did} to ${aid}`);
      if (aid !== assistantId) throw new AppError('NOT_FOUND', 'assistant not found');
      return {
        id: did,
        tenantId: tid,
        assistantId: aid,
        host: 'chat.acme.example',
        verificationToken: 'x'.repeat(32),
        verifiedAt: new Date(),
      };
    },
    async setStatus(tid, status) {
      steps.push(`status ${status}`);
      if (tid !== tenantId) throw new AppError('NOT_FOUND', 'tenant not found');
      stored.status = status;
      return { ...stored };
    },
    async setPlan(tid, plan, confirm) {
      if (tid !== tenantId) throw new AppError('NOT_FOUND', 'tenant not found');
      steps.push('lock tenant');
      await confirm({ ...stored });
      if (storeFails) throw new AppError('INTERNAL', 'database down');
      steps.push(`store plan ${plan}`);
      stored.plan = plan;
      return { ...stored };
    },
    async insertAssistant(tid, name) {
      return { id: assistantId, tenantId: tid, name };
    },
    async insertDomain({ tenantId: tid, assistantId: aid, host, verificationToken, verified }) {
      steps.push(`insert domain ${host}${verified ? ' verified' : ''}`);
      const domain: DomainRecord = {
        id: domains.size === 0 ? domainId : randomUUID(),
        tenantId: tid,
        assistantId: aid,
        host,
        verificationToken,
        verifiedAt: verified ? new Date() : null,
      };
      domains.set(domain.id, domain);
      return { ...domain };
    },
    async findDomain(tid, did) {
      steps.push(`find domain ${did}`);
      return { ...ownedDomain(tid, did) };
    },
    async markDomainVerified(tid, did) {
      steps.push(`mark domain ${did} verified`);
      const domain = ownedDomain(tid, did);
      domain.verifiedAt ??= new Date();
      return { ...domain };
    },
    async insertTeam(tid, name) {
      return { id: 't', tenantId: tid, name };
    },
  };
  const policy = {
    async assignRole(grant: Grant) {
      steps.push(`assign ${grant.tenantId}`);
      if (policyDown || assignFails) throw new AppError('DEPENDENCY_UNAVAILABLE', 'portcullis.policy.v1.PolicyService is unavailable');
      grants.push(grant);
    },
    async revokeRole(grant: Grant) {
      revoked.push(grant);
    },
    async setTenantPlan({ tenantId: tid, plan }: { tenantId: string; plan: string }) {
      steps.push(`policy plan ${tid} ${plan}`);
      if (policyDown) throw new AppError('DEPENDENCY_UNAVAILABLE', 'portcullis.policy.v1.PolicyService is unavailable');
      if (unknownPlans.includes(plan)) throw new AppError('INVALID_ARGUMENT', `unknown plan ${plan}`);
    },
  };
  const ownership = createDomainOwnership({
    async resolveTxt(name) {
      queried.push(name);
      if (dnsDown) throw Object.assign(new Error(`queryTxt ESERVFAIL ${name}`), { code: 'ESERVFAIL' });
      const records = txt.get(name);
      if (!records) throw Object.assign(new Error(`queryTxt ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
      return records;
    },
    exemptSuffixes: ['.localhost'],
  });
  /** Publishes the TXT record that proves the domain's ownership. */
  const publish = (domain: DomainRecord) => {
    txt.set(`_portcullis-challenge.${domain.host}`, [[`portcullis-domain-verification=${domain.verificationToken}`]]);
  };
  const events: AuditEventInit[] = [];
  const library = createTenantLibrary({
    store,
    ownership,
    policy,
    announce: (id, change) => announced.push([id, change]),
    audit: {
      async publish(event) {
        events.push(event);
        return 'event-id';
      },
    },
    newId: () => tenantId,
  });
  return { library, steps, grants, revoked, announced, stored, domains, queried, publish, events };
}

describe('tenant library', () => {
  it('tells policy the free plan and assigns the owner role before the tenant is stored, then announces it', async () => {
    const { library, steps, grants, announced } = setup();
    const tenant = await library.createTenant({ name: '  Acme  ', ownerUserId: owner });
    expect(tenant).toEqual({ id: tenantId, name: 'Acme', status: 'active', plan: 'free' });
    // The first owner is the one grant made without an actor.
    expect(grants).toEqual([{ tenantId, userId: owner, role: Role.OWNER }]);
    expect(grants[0]).not.toHaveProperty('actor');
    expect(steps).toEqual([`policy plan ${tenantId} free`, `assign ${tenantId}`, `insert tenant ${tenantId} owned by ${owner}`]);
    expect(announced).toEqual([[tenantId, 'tenant.created']]);
  });

  it("records the creator's first membership, as owner, in the new tenant's trail once it is stored", async () => {
    const { library, events } = setup();
    await library.createTenant({ name: 'Acme', ownerUserId: owner });
    expect(events).toEqual([
      {
        tenantId,
        kind: 'member.added',
        principal: { kind: PrincipalKind.USER, id: owner, tenantId, role: Role.OWNER },
        object: 'members',
        action: 'add',
        outcome: Outcome.SUCCESS,
        reason: 'created the tenant',
        attributes: { user_id: owner, role: 'owner' },
      },
    ]);
    const failed = setup({ storeFails: true });
    await expect(failed.library.createTenant({ name: 'Acme', ownerUserId: owner })).rejects.toMatchObject({ code: 'INTERNAL' });
    expect(failed.events).toEqual([]);
  });

  it('creates nothing when the policy service is down', async () => {
    const { library, steps, announced } = setup({ policyDown: true });
    await expect(library.createTenant({ name: 'Acme', ownerUserId: owner })).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(steps).toEqual([`policy plan ${tenantId} free`]);
    expect(announced).toEqual([]);
  });

  it('stores nothing when the owner cannot be assigned after the plan was accepted', async () => {
    const { library, steps, announced } = setup({ assignFails: true });
    await expect(library.createTenant({ name: 'Acme', ownerUserId: owner })).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(steps).toEqual([`policy plan ${tenantId} free`, `assign ${tenantId}`]);
    expect(announced).toEqual([]);
  });

  it('withdraws the pre-assigned role when storing the tenant fails', async () => {
    const { library, revoked, announced } = setup({ storeFails: true });
    await expect(library.createTenant({ name: 'Acme', ownerUserId: owner })).rejects.toMatchObject({ code: 'INTERNAL' });
    expect(revoked).toEqual([{ tenantId, userId: owner, role: Role.OWNER }]);
    expect(announced).toEqual([]);
  });

  it.each([
    [{ name: '', ownerUserId: owner }, 'name'],
    [{ name: 'x'.repeat(101), ownerUserId: owner }, 'name'],
    [{ name: 'Acme', ownerUserId: 'user-1' }, 'owner_user_id'],
  ])('rejects %j before calling anything', async (input, field) => {
    const { library, steps } = setup();
    await expect(library.createTenant(input)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field } });
    expect(steps).toEqual([]);
  });

  it('accepts a name of exactly 100 characters', async () => {
    const { library } = setup();
    await expect(library.createTenant({ name: 'x'.repeat(100), ownerUserId: owner })).resolves.toMatchObject({ name: 'x'.repeat(100) });
  });

  it('stores a domain lowercase without port, unverified with a fresh token, and announces nothing yet', async () => {
    const { library, steps, announced, domains } = setup();
    const domain = await library.addDomain({ tenantId, assistantId, host: 'Chat.Acme.Example:8443' });
    expect(domain).toMatchObject({ tenantId, assistantId, host: 'chat.acme.example', verifiedAt: null });
    expect(domain.verificationToken).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(domains.get(domain.id)).toMatchObject({ verificationToken: domain.verificationToken, verifiedAt: null });
    expect(steps).toEqual(['insert domain chat.acme.example']);
    // An unverified domain routes nothing, so no cache has anything to forget.
    expect(announced).toEqual([]);
  });

  it('gives every claim its own token', async () => {
    const { library } = setup();
    const first = await library.addDomain({ tenantId, assistantId, host: 'a.acme.example' });
    const second = await library.addDomain({ tenantId, assistantId, host: 'b.acme.example' });
    expect(first.verificationToken).not.toBe(second.verificationToken);
  });

  it('verifies a host under an exempt suffix at once, without DNS, and announces it', async () => {
    const { library, steps, announced, queried } = setup();
    const domain = await library.addDomain({ tenantId, assistantId, host: 'App.Localhost' });
    expect(domain).toMatchObject({ host: 'app.localhost', verifiedAt: expect.any(Date) });
    expect(steps).toEqual(['insert domain app.localhost verified']);
    expect(queried).toEqual([]);
    expect(announced).toEqual([[tenantId, 'domain.added']]);
  });

  it('does not exempt a host that merely ends in the suffix text', async () => {
    const { library, steps, announced } = setup();
    await expect(library.addDomain({ tenantId, assistantId, host: 'evil-localhost' })).resolves.toMatchObject({ verifiedAt: null });
    expect(steps).toEqual(['insert domain evil-localhost']);
    expect(announced).toEqual([]);
  });

  it('validates ids, names and hosts of tenant-owned things', async () => {
    const { library, announced } = setup();
    await expect(library.addDomain({ tenantId, assistantId, host: 'bad host' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(library.addDomain({ tenantId, assistantId: 'nope', host: 'a.example' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'assistant_id' },
    });
    await expect(library.createAssistant({ tenantId: 'nope', name: 'Bot' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(library.createTeam({ tenantId, name: ' ' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(announced).toEqual([]);
  });
});

describe('verifying a domain', () => {
  it('proves ownership through the challenge record, then marks the domain verified and announces it', async () => {
    const { library, steps, announced, domains, queried, publish } = setup();
    const added = await library.addDomain({ tenantId, assistantId, host: 'chat.acme.example' });
    publish(added);
    const verified = await library.verifyDomain({ tenantId, domainId: added.id });
    expect(verified).toMatchObject({ id: added.id, host: 'chat.acme.example', verificationToken: added.verificationToken });
    expect(verified.verifiedAt).toBeInstanceOf(Date);
    expect(domains.get(added.id)?.verifiedAt).toBeInstanceOf(Date);
    expect(queried).toEqual(['_portcullis-challenge.chat.acme.example']);
    expect(steps).toEqual(['insert domain chat.acme.example', `find domain ${added.id}`, `mark domain ${added.id} verified`]);
    expect(announced).toEqual([[tenantId, 'domain.verified']]);
  });

  it('returns a verified domain as it is, without asking DNS or announcing anything', async () => {
    const { library, steps, announced, queried, publish } = setup();
    const added = await library.addDomain({ tenantId, assistantId, host: 'chat.acme.example' });
    publish(added);
    const first = await library.verifyDomain({ tenantId, domainId: added.id });
    const again = await library.verifyDomain({ tenantId, domainId: added.id });
    expect(again).toEqual(first);
    expect(queried).toHaveLength(1);
    expect(steps.filter((step) => step.startsWith('mark'))).toHaveLength(1);
    expect(announced).toEqual([[tenantId, 'domain.verified']]);

    // A domain verified when added (exempt) needs no lookup at all.
    const exempt = await library.addDomain({ tenantId, assistantId, host: 'app.localhost' });
    await expect(library.verifyDomain({ tenantId, domainId: exempt.id })).resolves.toMatchObject({ verifiedAt: exempt.verifiedAt });
    expect(queried).toHaveLength(1);
  });

  it('marks and announces nothing when the record is missing or carries another token', async () => {
    const { library, steps, announced, domains, publish } = setup();
    const added = await library.addDomain({ tenantId, assistantId, host: 'chat.acme.example' });
    await expect(library.verifyDomain({ tenantId, domainId: added.id })).rejects.toMatchObject({
      code: 'FAILED_PRECONDITION',
      details: {
        recordName: '_portcullis-challenge.chat.acme.example',
        recordValue: `portcullis-domain-verification=${added.verificationToken}`,
      },
    });
    publish({ ...added, verificationToken: 'someone-elses-token-0123456789abc' });
    await expect(library.verifyDomain({ tenantId, domainId: added.id })).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
    expect(domains.get(added.id)?.verifiedAt).toBeNull();
    expect(steps.filter((step) => step.startsWith('mark'))).toEqual([]);
    expect(announced).toEqual([]);
  });

  it('marks and announces nothing when DNS cannot answer', async () => {
    const { library, steps, announced, domains, publish } = setup({ dnsDown: true });
    const added = await library.addDomain({ tenantId, assistantId, host: 'chat.acme.example' });
    publish(added);
    await expect(library.verifyDomain({ tenantId, domainId: added.id })).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(domains.get(added.id)?.verifiedAt).toBeNull();
    expect(steps.filter((step) => step.startsWith('mark'))).toEqual([]);
    expect(announced).toEqual([]);
  });

  it("answers NOT_FOUND for another tenant's or an unknown domain, asking DNS nothing", async () => {
    const { library, announced, queried, publish } = setup();
    const added = await library.addDomain({ tenantId, assistantId, host: 'chat.acme.example' });
    publish(added);
    await expect(library.verifyDomain({ tenantId: otherTenantId, domainId: added.id })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(library.verifyDomain({ tenantId, domainId: otherTenantId })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(queried).toEqual([]);
    expect(announced).toEqual([]);
  });

  it.each([
    [{ tenantId: 'acme', domainId }, 'tenant_id'],
    [{ tenantId, domainId: 'chat.acme.example' }, 'domain_id'],
    [{ tenantId, domainId: '' }, 'domain_id'],
  ])('rejects %j before calling anything', async (input, field) => {
    const { library, steps, queried, announced } = setup();
    await expect(library.verifyDomain(input)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field } });
    expect(steps).toEqual([]);
    expect(queried).toEqual([]);
    expect(announced).toEqual([]);
  });
});

describe('platform operations on a tenant', () => {
  it('suspends and reactivates a tenant, announcing each change', async () => {
    const { library, announced } = setup();
    await expect(library.setTenantStatus({ tenantId, status: 'suspended' })).resolves.toMatchObject({ status: 'suspended' });
    await expect(library.setTenantStatus({ tenantId, status: 'active' })).resolves.toMatchObject({ status: 'active' });
    expect(announced).toEqual([
      [tenantId, 'tenant.status.changed'],
      [tenantId, 'tenant.status.changed'],
    ]);
  });

  it('announces nothing for a status change of a missing or malformed tenant', async () => {
    const { library, announced } = setup();
    await expect(library.setTenantStatus({ tenantId: owner, status: 'suspended' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(library.setTenantStatus({ tenantId: 'acme', status: 'suspended' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'tenant_id' },
    });
    expect(announced).toEqual([]);
  });

  it('tells the policy service the plan inside the lock, stores it only after, then announces it', async () => {
    const { library, steps, announced, stored } = setup();
    await expect(library.setTenantPlan({ tenantId, plan: ' pro ' })).resolves.toMatchObject({ plan: 'pro' });
    expect(steps).toEqual(['lock tenant', `policy plan ${tenantId} pro`, 'store plan pro']);
    expect(stored.plan).toBe('pro');
    expect(announced).toEqual([[tenantId, 'tenant.plan.changed']]);
  });

  it('stores nothing when the policy service refuses the plan or is down', async () => {
    for (const options of [{ unknownPlans: ['platinum'] }, { policyDown: true }]) {
      const { library, steps, announced, stored } = setup(options);
      await expect(library.setTenantPlan({ tenantId, plan: 'platinum' })).rejects.toMatchObject({
        code: options.policyDown ? 'DEPENDENCY_UNAVAILABLE' : 'INVALID_ARGUMENT',
      });
      expect(stored.plan).toBe('free');
      // No compensation either: the policy service never accepted anything.
      expect(steps).toEqual(['lock tenant', `policy plan ${tenantId} platinum`]);
      expect(announced).toEqual([]);
    }
  });

  it('gives the policy service the previous plan back when storing fails after it accepted', async () => {
    const { library, steps, announced } = setup({ storeFails: true });
    await expect(library.setTenantPlan({ tenantId, plan: 'pro' })).rejects.toMatchObject({ code: 'INTERNAL' });
    expect(steps).toEqual(['lock tenant', `policy plan ${tenantId} pro`, `policy plan ${tenantId} free`]);
    expect(announced).toEqual([]);
  });

  it.each(['', '   ', 'Pro', 'pro plan', '1pro', 'p'.repeat(33), 'pro;drop'])(
    'rejects the plan name %j before calling anything',
    async (plan) => {
      const { library, steps } = setup();
      await expect(library.setTenantPlan({ tenantId, plan })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        details: { field: 'plan' },
      });
      expect(steps).toEqual([]);
    },
  );

  it('moves a domain to another assistant of the tenant and announces it', async () => {
    const { library, steps, announced } = setup();
    await expect(library.moveDomain({ tenantId, domainId, assistantId })).resolves.toMatchObject({ id: domainId, assistantId });
    expect(steps).toEqual([`move domain ${domainId} to ${assistantId}`]);
    expect(announced).toEqual([[tenantId, 'domain.moved']]);
  });

  it('announces no move the store refused, and validates every id', async () => {
    const { library, announced } = setup();
    await expect(library.moveDomain({ tenantId, domainId, assistantId: owner })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    for (const [input, field] of [
      [{ tenantId: 'x', domainId, assistantId }, 'tenant_id'],
      [{ tenantId, domainId: 'chat.acme.example', assistantId }, 'domain_id'],
      [{ tenantId, domainId, assistantId: '' }, 'assistant_id'],
    ] as const) {
      await expect(library.moveDomain(input)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field } });
    }
    expect(announced).toEqual([]);
  });
});
