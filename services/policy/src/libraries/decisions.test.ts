import { create } from '@bufbuild/protobuf';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { PrincipalKind, PrincipalSchema, Role } from '@portcullis/proto/common';
import { createDecisionLibrary, type DecisionLibraryDeps, type TenantRules } from './decisions.js';
import { readPolicyFiles, type PolicyFiles } from './policy-files.js';

const policies = new URL('../../../../policies/', import.meta.url);
let files: PolicyFiles;
beforeAll(async () => {
  files = await readPolicyFiles(policies);
});

const tenantA = '00000000-0000-4000-8000-00000000000a';
const tenantB = '00000000-0000-4000-8000-00000000000b';
const assistant1 = '00000000-0000-4000-8000-0000000000a1';
const assistant2 = '00000000-0000-4000-8000-0000000000a2';
const id = (n: number) => `00000000-0000-4000-8000-${n.toString().padStart(12, '0')}`;
const [owner, admin, plain, scoped, other, creator] = [1, 2, 3, 4, 5, 6].map(id) as [string, string, string, string, string, string];

const user = (userId: string, tenantId = tenantA, role = Role.UNSPECIFIED) =>
  create(PrincipalSchema, { kind: PrincipalKind.USER, id: userId, tenantId, role });
const robot = (actingUserId: string, tenantId = tenantA) =>
  create(PrincipalSchema, { kind: PrincipalKind.ROBOT, id: id(99), tenantId, actingUserId });
const ask = (capability: string, assistantId = '') => {
  const [object = '', action = ''] = capability.split(':');
  return { object, action, assistantId };
};

function fakeRules(rules: Record<string, Partial<TenantRules>>) {
  const loads: string[] = [];
  return {
    loads,
    source: {
      async loadTenant(tenantId: string): Promise<TenantRules> {
        loads.push(tenantId);
        const stored = rules[tenantId] ?? {};
        return { roles: [...(stored.roles ?? [])], permissions: [...(stored.permissions ?? [])], plan: stored.plan ?? null };
      },
    },
  };
}

function library(rules: Record<string, Partial<TenantRules>>, overrides: Partial<DecisionLibraryDeps> = {}) {
  const fake = fakeRules(rules);
  const decisions = createDecisionLibrary({
    ...files,
    rules: fake.source,
    defaultPlan: 'free',
    maxCachedTenants: 10,
    maxAgeMs: 60_000,
    ...overrides,
  });
  return { decisions, loads: fake.loads };
}

const role = (userId: string, name: string, assistantId: string | null = null) => ({ subject: `user:${userId}`, role: name, assistantId });
const permission = (userId: string, capability: string, assistantId: string | null = null) => {
  const [object = '', action = ''] = capability.split(':');
  return { subject: `user:${userId}`, object, action, assistantId };
};

const standard = {
  [tenantA]: {
    plan: 'enterprise',
    roles: [
      role(owner, 'role:owner'),
      role(admin, 'role:admin'),
      role(plain, 'role:user'),
      role(scoped, 'role:admin', assistant1),
      role(scoped, 'role:user', assistant2),
    ],
    permissions: [permission(plain, 'tools:invoke', assistant1)],
  },
  [tenantB]: { roles: [role(other, 'role:owner')] },
};

describe('decisions for people', () => {
  it('allows what a tenant-wide role grants, naming the role', async () => {
    const { decisions } = library(standard);
    expect(await decisions.check({ principal: user(owner), tenantId: tenantA, ...ask('tools:invoke') })).toEqual({
      allowed: true,
      reason: 'granted by role:owner (tools:invoke)',
    });
  });

  it('denies a capability no role or permission grants, saying where it was asked', async () => {
    const { decisions } = library(standard);
    expect(await decisions.check({ principal: user(plain), tenantId: tenantA, ...ask('tools:invoke', assistant2) })).toEqual({
      allowed: false,
      reason: `no role or permission of user:${plain} grants tools:invoke on assistant ${assistant2}`,
    });
  });

  it('decides per-assistant objects on the assistant: an assistant role holds them there only', async () => {
    const { decisions } = library(standard);
    const check = (capability: string, assistantId = '') =>
      decisions.check({ principal: user(scoped), tenantId: tenantA, ...ask(capability, assistantId) });
    expect(await check('tools:manage', assistant1)).toEqual({
      allowed: true,
      reason: `granted by role:admin on assistant ${assistant1} (tools:manage)`,
    });
    expect((await check('tools:manage', assistant2)).allowed).toBe(false);
    expect((await check('tools:read', assistant2)).allowed).toBe(true);
    expect((await check('tools:read')).allowed).toBe(false);
  });

  it('never lets an assistant grant hold a tenant-wide capability, whatever assistant is named', async () => {
    const { decisions } = library(standard);
    for (const capability of ['members:manage', 'teams:manage', 'audit:read', 'apikeys:manage', 'tenant:read']) {
      const decision = await decisions.check({ principal: user(scoped), tenantId: tenantA, ...ask(capability, assistant1) });
      expect(decision).toEqual({ allowed: false, reason: `no role or permission of user:${scoped} grants ${capability}` });
    }
    expect((await decisions.check({ principal: user(admin), tenantId: tenantA, ...ask('members:manage', assistant1) })).allowed).toBe(true);
  });

  it('allows a per-user permission on its assistant only, naming it', async () => {
    const { decisions } = library(standard);
    const check = (assistantId: string) =>
      decisions.check({ principal: user(plain), tenantId: tenantA, ...ask('tools:invoke', assistantId) });
    expect(await check(assistant1)).toEqual({ allowed: true, reason: `granted by a permission on assistant ${assistant1} (tools:invoke)` });
    expect((await check(assistant2)).allowed).toBe(false);
    expect((await check('')).allowed).toBe(false);
  });

  it('ignores the role a principal claims', async () => {
    const { decisions } = library(standard);
    const decision = await decisions.check({ principal: user(plain, tenantA, Role.OWNER), tenantId: tenantA, ...ask('billing:manage') });
    expect(decision.allowed).toBe(false);
  });

  it('denies unknown capabilities even to the owner, before loading any rules', async () => {
    const { decisions, loads } = library(standard);
    expect(await decisions.check({ principal: user(owner), tenantId: tenantA, ...ask('tools:delete-everything') })).toEqual({
      allowed: false,
      reason: 'unknown capability tools:delete-everything',
    });
    expect(loads).toEqual([]);
  });

  it("never applies one tenant's rules in another, and never loads the other tenant's rules for it", async () => {
    const { decisions, loads } = library(standard);
    expect(await decisions.check({ principal: user(other, tenantB), tenantId: tenantA, ...ask('tenant:read') })).toEqual({
      allowed: false,
      reason: 'principal belongs to another tenant',
    });
    expect(loads).toEqual([]);
    // Claiming tenant A does not bring B's owner role along.
    expect((await decisions.check({ principal: user(other, tenantA), tenantId: tenantA, ...ask('tenant:read') })).allowed).toBe(false);
    expect((await decisions.check({ principal: user(owner, tenantB), tenantId: tenantB, ...ask('tenant:read') })).allowed).toBe(false);
  });

  it('denies without a principal and rejects malformed requests as INVALID_ARGUMENT', async () => {
    const { decisions } = library(standard);
    expect(await decisions.check({ principal: undefined, tenantId: tenantA, ...ask('tenant:read') })).toEqual({
      allowed: false,
      reason: 'no principal',
    });
    await expect(decisions.check({ principal: user(owner), tenantId: 'acme', ...ask('tenant:read') })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'tenant_id' },
    });
    await expect(decisions.check({ principal: user(owner), tenantId: tenantA, ...ask('tools:read', 'assistant-1') })).rejects.toMatchObject(
      {
        code: 'INVALID_ARGUMENT',
        details: { field: 'assistant_id' },
      },
    );
    await expect(decisions.check({ principal: user(''), tenantId: tenantA, ...ask('tenant:read') })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });

  it('ignores stored rows that would widen anyone: robot and role subjects, role:robot, an assistant owner, stray permissions', async () => {
    const { decisions } = library({
      [tenantA]: {
        roles: [
          { subject: 'robot:rogue', role: 'role:owner', assistantId: null },
          { subject: 'role:robot', role: 'role:owner', assistantId: null },
          role(plain, 'role:robot'),
          role(plain, 'role:user'),
          role(scoped, 'role:owner', assistant1),
        ],
        permissions: [
          // No role at all: a permission is held on top of one.
          permission(other, 'tools:invoke'),
          // Tenant-wide objects are never held on an assistant.
          permission(plain, 'members:manage', assistant1),
          // Not a capability of the catalogue.
          permission(plain, 'secrets:read'),
        ],
      },
    });
    const check = (principal: ReturnType<typeof user>, capability: string, assistantId = '') =>
      decisions.check({ principal, tenantId: tenantA, ...ask(capability, assistantId) });
    expect(
      (
        await check(
          create(PrincipalSchema, { kind: PrincipalKind.ROBOT, id: 'rogue', tenantId: tenantA, actingUserId: owner }),
          'tools:read',
        )
      ).allowed,
    ).toBe(false);
    expect((await check(user(plain), 'tools:invoke')).allowed).toBe(false);
    expect((await check(user(scoped), 'tools:invoke', assistant1)).allowed).toBe(false);
    expect((await check(user(other), 'tools:invoke')).allowed).toBe(false);
    expect((await check(user(plain), 'members:manage', assistant1)).allowed).toBe(false);
    expect((await decisions.explain({ principal: user(plain), tenantId: tenantA, ...ask('tools:read') })).held).toEqual([
      { kind: 'role', name: 'role:user', assistantId: '' },
    ]);
  });
});

describe('plans', () => {
  it('denies what the stored plan excludes, to owners too', async () => {
    const { decisions } = library({ [tenantA]: { plan: 'free', roles: [role(owner, 'role:owner')] } });
    expect(await decisions.check({ principal: user(owner), tenantId: tenantA, ...ask('mcp:invoke', assistant1) })).toEqual({
      allowed: false,
      reason: 'plan free excludes mcp:invoke',
    });
    expect((await decisions.check({ principal: user(owner), tenantId: tenantA, ...ask('billing:manage') })).allowed).toBe(true);
  });

  it('puts a tenant without a stored plan on the default plan', async () => {
    const rules = { [tenantA]: { roles: [role(owner, 'role:owner')] } };
    const free = library(rules).decisions;
    const pro = library(rules, { defaultPlan: 'pro' }).decisions;
    const check = (decisions: typeof free) => decisions.check({ principal: user(owner), tenantId: tenantA, ...ask('knowledge:manage') });
    expect(await check(free)).toMatchObject({ allowed: false, reason: 'plan free excludes knowledge:manage' });
    expect(await check(pro)).toMatchObject({ allowed: true });
  });

  it('denies everything in a tenant whose stored plan no longer exists', async () => {
    const { decisions } = library({ [tenantA]: { plan: 'gold', roles: [role(owner, 'role:owner')] } });
    expect(await decisions.check({ principal: user(owner), tenantId: tenantA, ...ask('tenant:read') })).toEqual({
      allowed: false,
      reason: 'plan gold is unknown',
    });
  });

  it('refuses a default plan that plans.csv lacks', () => {
    expect(() => library({}, { defaultPlan: 'gold' })).toThrow(/default plan gold/);
  });
});

describe('robot decisions', () => {
  const rules = {
    [tenantA]: {
      plan: 'enterprise',
      roles: [role(owner, 'role:owner'), role(admin, 'role:admin'), role(plain, 'role:user'), role(scoped, 'role:admin', assistant1)],
      permissions: [permission(plain, 'tools:invoke', assistant1)],
    },
    [tenantB]: { roles: [role(other, 'role:owner')] },
  };
  const check = (actingUserId: string, capability: string, { tenantId = tenantA, assistantId = '' } = {}) =>
    library(rules).decisions.check({ principal: robot(actingUserId, tenantId), tenantId, ...ask(capability, assistantId) });

  it('allows when the robot template and the creator both grant the capability, naming both', async () => {
    expect(await check(owner, 'tools:invoke')).toEqual({
      allowed: true,
      reason: `granted by role:robot and creator user:${owner} via role:owner (tools:invoke)`,
    });
    expect(await check(plain, 'tools:read')).toMatchObject({ allowed: true, reason: expect.stringContaining('via role:user') });
    expect(await check(plain, 'tools:invoke', { assistantId: assistant1 })).toMatchObject({
      allowed: true,
      reason: `granted by role:robot and creator user:${plain} via a permission on assistant ${assistant1} (tools:invoke)`,
    });
    expect((await check(scoped, 'tools:invoke', { assistantId: assistant1 })).allowed).toBe(true);
  });

  it('denies what the template lacks, even when the creator is an owner', async () => {
    for (const capability of ['members:manage', 'robots:manage', 'apikeys:manage', 'audit:read', 'tools:manage', 'mcp:invoke']) {
      expect(await check(owner, capability)).toEqual({ allowed: false, reason: `robots may not ${capability}` });
    }
  });

  it('denies what the creator lacks, even when the template grants it', async () => {
    expect(await check(plain, 'tools:invoke')).toEqual({ allowed: false, reason: `creator user:${plain} lacks tools:invoke` });
    expect(await check(plain, 'tools:invoke', { assistantId: assistant2 })).toEqual({
      allowed: false,
      reason: `creator user:${plain} lacks tools:invoke on assistant ${assistant2}`,
    });
    expect(await check(id(77), 'tenant:read')).toEqual({ allowed: false, reason: `creator user:${id(77)} lacks tenant:read` });
  });

  it("never uses a creator's roles of another tenant", async () => {
    expect(await check(other, 'tools:invoke')).toEqual({ allowed: false, reason: `creator user:${other} lacks tools:invoke` });
    expect(await check(owner, 'tools:invoke', { tenantId: tenantB })).toMatchObject({ allowed: false });
  });

  it('denies once the creator loses their role', async () => {
    const stored = { [tenantA]: { roles: [role(creator, 'role:admin')] } };
    const { decisions } = library(stored);
    const decide = () => decisions.check({ principal: robot(creator), tenantId: tenantA, ...ask('tools:invoke') });
    expect((await decide()).allowed).toBe(true);
    stored[tenantA].roles.pop();
    decisions.invalidate(tenantA);
    expect(await decide()).toEqual({ allowed: false, reason: `creator user:${creator} lacks tools:invoke` });
  });

  it('rejects a robot without its creator, or with a malformed one, as INVALID_ARGUMENT', async () => {
    await expect(check('', 'tenant:read')).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'principal.acting_user_id' },
    });
    await expect(check('user:someone', 'tenant:read')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('keeps deciding people by their own grants: acting_user_id does not change a user decision', async () => {
    const { decisions } = library(rules);
    const principal = create(PrincipalSchema, { kind: PrincipalKind.USER, id: plain, tenantId: tenantA, actingUserId: owner });
    expect((await decisions.check({ principal, tenantId: tenantA, ...ask('tools:invoke') })).allowed).toBe(false);
  });
});

describe('BatchCheck, Explain and ListCapabilities', () => {
  it('answers a batch in order, loading the tenant once', async () => {
    const { decisions, loads } = library(standard);
    const answers = await decisions.checkMany({
      principal: user(plain),
      tenantId: tenantA,
      queries: [ask('tools:invoke', assistant1), ask('tools:invoke'), ask('tenant:read'), ask('no:such'), ask('billing:manage')],
    });
    expect(answers.map((answer) => answer.allowed)).toEqual([true, false, true, false, false]);
    expect(loads).toEqual([tenantA]);
  });

  it('refuses more than 100 queries, and a malformed assistant id naming its query', async () => {
    const { decisions } = library(standard);
    const queries = Array.from({ length: 101 }, () => ask('tenant:read'));
    await expect(decisions.checkMany({ principal: user(owner), tenantId: tenantA, queries })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'queries' },
    });
    expect(await decisions.checkMany({ principal: user(owner), tenantId: tenantA, queries: queries.slice(1) })).toHaveLength(100);
    await expect(
      decisions.checkMany({ principal: user(owner), tenantId: tenantA, queries: [ask('tenant:read'), ask('tools:read', 'nope')] }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'queries[1].assistant_id' } });
  });

  it('explains an allow: each step in order, the grants held in scope and the grant that matched', async () => {
    const { decisions } = library(standard);
    const explanation = await decisions.explain({ principal: user(scoped), tenantId: tenantA, ...ask('tools:manage', assistant1) });
    expect(explanation).toEqual({
      allowed: true,
      reason: `granted by role:admin on assistant ${assistant1} (tools:manage)`,
      matched: { kind: 'role', name: 'role:admin', assistantId: assistant1 },
      // Not the role on assistant 2: only tenant-wide grants and grants on the assistant asked.
      held: [{ kind: 'role', name: 'role:admin', assistantId: assistant1 }],
      steps: [
        'catalogue: tools:manage is known',
        `tenant: the principal belongs to tenant ${tenantA}`,
        `scope: tools is per assistant; tenant-wide grants and grants on assistant ${assistant1} count`,
        'plan enterprise: allows tools:manage',
        'grants: role:admin on assistant 00000000-0000-4000-8000-0000000000a1 grants tools:manage',
      ],
    });
  });

  it('explains a denial by the step that denied, with nothing matched', async () => {
    const { decisions } = library(standard);
    const robotDenied = await decisions.explain({ principal: robot(owner), tenantId: tenantA, ...ask('members:manage') });
    expect(robotDenied).toMatchObject({
      allowed: false,
      reason: 'robots may not members:manage',
      matched: undefined,
      held: [{ kind: 'role', name: 'role:owner', assistantId: '' }],
    });
    expect(robotDenied.steps.at(-1)).toBe('robot: role:robot does not grant members:manage');
    const crossed = await decisions.explain({ principal: user(other, tenantB), tenantId: tenantA, ...ask('tools:read') });
    expect(crossed).toEqual({
      allowed: false,
      reason: 'principal belongs to another tenant',
      matched: undefined,
      held: [],
      steps: ['catalogue: tools:read is known', 'tenant: the principal belongs to another tenant'],
    });
    const permitted = await decisions.explain({ principal: user(plain), tenantId: tenantA, ...ask('tools:invoke', assistant1) });
    expect(permitted.matched).toEqual({ kind: 'permission', name: 'tools:invoke', assistantId: assistant1 });
    expect(permitted.held).toEqual([
      { kind: 'role', name: 'role:user', assistantId: '' },
      { kind: 'permission', name: 'tools:invoke', assistantId: assistant1 },
    ]);
  });

  it('lists exactly the capabilities Check allows, sorted; nothing across tenants', async () => {
    const { decisions } = library(standard);
    const listed = await decisions.listCapabilities({ principal: user(plain), tenantId: tenantA, assistantId: assistant1 });
    expect(listed).toEqual([
      'apikeys:own',
      'assistants:read',
      'devices:bind',
      'devices:read',
      'knowledge:read',
      'mcp:read',
      'robots:own',
      'settings:read',
      'tenant:read',
      'tools:invoke',
      'tools:read',
    ]);
    expect(await decisions.listCapabilities({ principal: user(plain), tenantId: tenantA, assistantId: '' })).not.toContain('tools:invoke');
    expect(await decisions.listCapabilities({ principal: user(other, tenantB), tenantId: tenantA, assistantId: '' })).toEqual([]);
    expect(await decisions.listCapabilities({ principal: user(owner), tenantId: tenantA, assistantId: '' })).toEqual(
      files.catalogue.capabilities,
    );
  });
});

describe('the enforcer cache', () => {
  const rules = { [tenantA]: { roles: [role(admin, 'role:admin')] } };
  const read = (decisions: ReturnType<typeof library>['decisions'], tenantId = tenantA) =>
    decisions.check({ principal: user(admin, tenantId), tenantId, ...ask('tools:read') });

  it('loads each tenant once and reloads after invalidation', async () => {
    const { decisions, loads } = library(rules);
    await read(decisions);
    await decisions.check({ principal: user(admin), tenantId: tenantA, ...ask('tools:invoke') });
    expect(loads).toEqual([tenantA]);
    decisions.invalidate(tenantA);
    await read(decisions);
    expect(loads).toEqual([tenantA, tenantA]);
  });

  it('reloads a tenant whose rules are older than maxAgeMs, even without a change notice', async () => {
    let clock = 0;
    const { decisions, loads } = library(rules, { maxAgeMs: 1_000, now: () => clock });
    await read(decisions);
    clock = 999;
    await read(decisions);
    expect(loads).toEqual([tenantA]);
    clock = 1_000;
    await read(decisions);
    expect(loads).toEqual([tenantA, tenantA]);
  });

  it('keeps at most maxCachedTenants enforcers', async () => {
    const { decisions, loads } = library(rules, { maxCachedTenants: 1 });
    await read(decisions, tenantA);
    await read(decisions, tenantB);
    await read(decisions, tenantA);
    expect(loads).toEqual([tenantA, tenantB, tenantA]);
  });

  it('forgets a failed load, so the next decision tries again', async () => {
    let fail = true;
    const decisions = createDecisionLibrary({
      ...files,
      rules: {
        async loadTenant() {
          if (fail) throw new Error('database down');
          return { roles: [role(admin, 'role:admin')], permissions: [], plan: null };
        },
      },
      defaultPlan: 'free',
      maxCachedTenants: 10,
      maxAgeMs: 60_000,
    });
    await expect(read(decisions)).rejects.toThrow('database down');
    fail = false;
    expect((await read(decisions)).allowed).toBe(true);
  });
});
