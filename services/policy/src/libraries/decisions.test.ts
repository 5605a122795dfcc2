import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { createDecisionLibrary, type Assignment } from './decisions.js';
import { parseRoleTemplates } from './role-templates.js';

const policies = new URL('../../../../policies/', import.meta.url);
const modelText = readFileSync(new URL('model.conf', policies), 'utf8');
const templates = parseRoleTemplates(readFileSync(new URL('roles.csv', policies), 'utf8'));

const tenantA = '00000000-0000-4000-8000-00000000000a';
const tenantB = '00000000-0000-4000-8000-00000000000b';

function fakeAssignments(rows: Record<string, Assignment[]>) {
  const loads: string[] = [];
  return {
    loads,
    source: {
      async listForTenant(tenantId: string) {
        loads.push(tenantId);
        return rows[tenantId] ?? [];
      },
    },
  };
}

describe('decision library', () => {
  const fake = fakeAssignments({
    [tenantA]: [
      { subject: 'user:owner', role: 'role:owner' },
      { subject: 'user:plain', role: 'role:user' },
    ],
    [tenantB]: [{ subject: 'user:other', role: 'role:admin' }],
  });
  const decisions = createDecisionLibrary({ modelText, templates, assignments: fake.source, maxCachedTenants: 10, maxAgeMs: 60_000 });

  it('allows what the role template grants, naming the role', async () => {
    const decision = await decisions.check({ subject: 'user:owner', tenantId: tenantA, object: 'tools', action: 'invoke' });
    expect(decision).toEqual({ allowed: true, reason: expect.stringContaining('role:owner') });
  });

  it('denies a capability the role lacks', async () => {
    const decision = await decisions.check({ subject: 'user:plain', tenantId: tenantA, object: 'tools', action: 'invoke' });
    expect(decision.allowed).toBe(false);
  });

  it('denies unknown capabilities even to the owner', async () => {
    const decision = await decisions.check({ subject: 'user:owner', tenantId: tenantA, object: 'tools', action: 'delete-everything' });
    expect(decision).toEqual({ allowed: false, reason: 'unknown capability tools:delete-everything' });
  });

  it("never applies one tenant's roles in another tenant", async () => {
    const decision = await decisions.check({ subject: 'user:other', tenantId: tenantA, object: 'tools', action: 'invoke' });
    expect(decision.allowed).toBe(false);
    const owner = await decisions.check({ subject: 'user:owner', tenantId: tenantB, object: 'tenant', action: 'read' });
    expect(owner.allowed).toBe(false);
  });

  it('loads each tenant once and reloads after invalidation', async () => {
    const local = fakeAssignments({ [tenantA]: [{ subject: 'user:x', role: 'role:admin' }] });
    const library = createDecisionLibrary({ modelText, templates, assignments: local.source, maxCachedTenants: 10, maxAgeMs: 60_000 });
    await library.check({ subject: 'user:x', tenantId: tenantA, object: 'tools', action: 'read' });
    await library.check({ subject: 'user:x', tenantId: tenantA, object: 'tools', action: 'invoke' });
    expect(local.loads).toEqual([tenantA]);
    library.invalidate(tenantA);
    await library.check({ subject: 'user:x', tenantId: tenantA, object: 'tools', action: 'read' });
    expect(local.loads).toEqual([tenantA, tenantA]);
  });

  it('reloads a tenant whose rules are older than maxAgeMs, even without a change notice', async () => {
    const local = fakeAssignments({ [tenantA]: [{ subject: 'user:x', role: 'role:admin' }] });
    let clock = 0;
    const library = createDecisionLibrary({
      modelText,
      templates,
      assignments: local.source,
      maxCachedTenants: 10,
      maxAgeMs: 1_000,
      now: () => clock,
    });
    await library.check({ subject: 'user:x', tenantId: tenantA, object: 'tools', action: 'read' });
    clock = 999;
    await library.check({ subject: 'user:x', tenantId: tenantA, object: 'tools', action: 'read' });
    expect(local.loads).toEqual([tenantA]);
    clock = 1_000;
    await library.check({ subject: 'user:x', tenantId: tenantA, object: 'tools', action: 'read' });
    expect(local.loads).toEqual([tenantA, tenantA]);
  });

  it('keeps at most maxCachedTenants enforcers', async () => {
    const local = fakeAssignments({});
    const library = createDecisionLibrary({ modelText, templates, assignments: local.source, maxCachedTenants: 1, maxAgeMs: 60_000 });
    await library.check({ subject: 'user:x', tenantId: tenantA, object: 'tools', action: 'read' });
    await library.check({ subject: 'user:x', tenantId: tenantB, object: 'tools', action: 'read' });
    await library.check({ subject: 'user:x', tenantId: tenantA, object: 'tools', action: 'read' });
    expect(local.loads).toEqual([tenantA, tenantB, tenantA]);
  });
});

describe('robot decisions', () => {
  const rows: Record<string, Assignment[]> = {
    [tenantA]: [
      { subject: 'user:owner', role: 'role:owner' },
      { subject: 'user:admin', role: 'role:admin' },
      { subject: 'user:plain', role: 'role:user' },
      // Rows that must never give a robot anything, however they got stored.
      { subject: 'robot:rogue', role: 'role:owner' },
      { subject: 'role:robot', role: 'role:owner' },
      { subject: 'user:plain', role: 'role:robot' },
    ],
    [tenantB]: [{ subject: 'user:other', role: 'role:owner' }],
  };
  const library = () =>
    createDecisionLibrary({ modelText, templates, assignments: fakeAssignments(rows).source, maxCachedTenants: 10, maxAgeMs: 60_000 });
  const robot = (actingUserId: string, capability: string, tenantId = tenantA) => {
    const [object = '', action = ''] = capability.split(':');
    return library().checkRobot({ actingUserId, tenantId, object, action });
  };

  it('allows when the robot template and the creator both grant the capability, naming both', async () => {
    expect(await robot('owner', 'tools:invoke')).toEqual({
      allowed: true,
      reason: 'granted by role:robot and creator user:owner via role:owner (tools:invoke)',
    });
    expect(await robot('plain', 'tools:read')).toMatchObject({ allowed: true, reason: expect.stringContaining('via role:user') });
  });

  it('denies what the template lacks, even when the creator is an owner', async () => {
    for (const capability of ['members:manage', 'robots:manage', 'apikeys:manage', 'audit:read', 'tools:manage']) {
      expect(await robot('owner', capability)).toEqual({ allowed: false, reason: `robots may not ${capability}` });
    }
  });

  it('denies what the creator lacks, even when the template grants it', async () => {
    expect(await robot('plain', 'tools:invoke')).toEqual({ allowed: false, reason: 'creator user:plain lacks tools:invoke' });
    expect(await robot('nobody', 'tenant:read')).toEqual({ allowed: false, reason: 'creator user:nobody lacks tenant:read' });
  });

  it("never uses a creator's roles of another tenant", async () => {
    expect(await robot('other', 'tools:invoke')).toMatchObject({ allowed: false, reason: 'creator user:other lacks tools:invoke' });
    expect(await robot('owner', 'tools:invoke', tenantB)).toMatchObject({ allowed: false });
  });

  it('denies once the creator loses their role', async () => {
    const tenantRows: Assignment[] = [{ subject: 'user:creator', role: 'role:admin' }];
    const decisions = createDecisionLibrary({
      modelText,
      templates,
      assignments: fakeAssignments({ [tenantA]: tenantRows }).source,
      maxCachedTenants: 10,
      maxAgeMs: 60_000,
    });
    const ask = () => decisions.checkRobot({ actingUserId: 'creator', tenantId: tenantA, object: 'tools', action: 'invoke' });
    expect((await ask()).allowed).toBe(true);
    tenantRows.pop();
    decisions.invalidate(tenantA);
    expect(await ask()).toEqual({ allowed: false, reason: 'creator user:creator lacks tools:invoke' });
  });

  it('gives a robot no grouping of its own, and the template inherits nothing', async () => {
    const decisions = library();
    // A stored robot:<id> → role:owner row is ignored: the robot subject holds no role.
    expect((await decisions.check({ subject: 'robot:rogue', tenantId: tenantA, object: 'tools', action: 'read' })).allowed).toBe(false);
    // A stored role:robot → role:owner row does not widen the template.
    expect(await robot('owner', 'members:manage')).toMatchObject({ allowed: false, reason: 'robots may not members:manage' });
    // Nobody is assigned the robot template: a user holding "role:robot" gains nothing beyond role:user.
    expect((await decisions.check({ subject: 'user:plain', tenantId: tenantA, object: 'tools', action: 'invoke' })).allowed).toBe(false);
  });

  it('denies unknown capabilities before asking anything', async () => {
    expect(await robot('owner', 'tools:delete-everything')).toEqual({
      allowed: false,
      reason: 'unknown capability tools:delete-everything',
    });
  });
});

describe('capability catalogue', () => {
  const ownerRows = templates.filter(([role]) => role === 'role:owner');
  const robotRows = templates.filter(([role]) => role === 'role:robot');
  const decisions = createDecisionLibrary({
    modelText,
    templates,
    assignments: fakeAssignments({}).source,
    maxCachedTenants: 10,
    maxAgeMs: 60_000,
  });

  it("is exactly the owner's rows; the robot template is a part of it", () => {
    expect(ownerRows).toHaveLength(19);
    expect(robotRows.map(([, object, action]) => `${object}:${action}`)).toEqual([
      'tenant:read',
      'assistants:read',
      'tools:read',
      'tools:invoke',
      'devices:read',
    ]);
    for (const [, object, action] of [...ownerRows, ...robotRows]) expect(decisions.isKnownCapability(object, action)).toBe(true);
    expect(decisions.isKnownCapability('robot', 'read')).toBe(false);
  });

  it('refuses templates that grant a capability outside the catalogue (robot rows never extend it)', () => {
    const widened = [...templates, ['role:robot', 'secrets', 'read'] as const];
    expect(() =>
      createDecisionLibrary({ modelText, templates: widened, assignments: fakeAssignments({}).source, maxCachedTenants: 1, maxAgeMs: 1 }),
    ).toThrow(/role:robot grants secrets:read/);
  });
});

describe('role templates', () => {
  it('rejects malformed lines', () => {
    expect(() => parseRoleTemplates('p, role:owner, tools')).toThrow(/not "p, role, object, action"/);
  });
});
