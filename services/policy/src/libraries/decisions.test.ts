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

describe('role templates', () => {
  it('rejects malformed lines', () => {
    expect(() => parseRoleTemplates('p, role:owner, tools')).toThrow(/not "p, role, object, action"/);
  });
});
