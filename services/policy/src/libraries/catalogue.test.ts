import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { createCatalogue, parseAssistantObjects, parsePlans } from './catalogue.js';
import { parseRoleTemplates } from './role-templates.js';

const policies = new URL('../../../../policies/', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, policies), 'utf8');
const templates = parseRoleTemplates(read('roles.csv'));
const plans = parsePlans(read('plans.csv'));
const assistantObjects = parseAssistantObjects(read('scopes.csv'));
const catalogue = createCatalogue({ templates, plans, assistantObjects });
const rowsOf = (role: string) => templates.filter(([name]) => name === role).map(([, object, action]) => `${object}:${action}`);

/** Every capability the platform uses today: gateway routes, API key scopes, e2e tests and the seed. */
const usedByThePlatform = [
  'tenant:read',
  'tenant:manage',
  'billing:manage',
  'members:read',
  'members:manage',
  'teams:manage',
  'robots:manage',
  'robots:own',
  'assistants:read',
  'assistants:manage',
  'tools:read',
  'tools:manage',
  'tools:invoke',
  'devices:read',
  'devices:bind',
  'devices:manage',
  'audit:read',
  'apikeys:manage',
  'apikeys:own',
  'decisions:query',
  'conversations:record',
];

describe('capability catalogue (policies/roles.csv)', () => {
  it("is exactly the owner's rows: what the platform uses plus knowledge, MCP and settings", () => {
    expect(catalogue.capabilities).toEqual(
      [
        ...usedByThePlatform,
        'knowledge:read',
        'knowledge:manage',
        'mcp:read',
        'mcp:manage',
        'mcp:invoke',
        'settings:read',
        'settings:manage',
      ].sort(),
    );
    expect(catalogue.isKnown('robot:read')).toBe(false);
  });

  it('keeps the meaning the platform relies on: what users, admins and robots hold', () => {
    // Admins: everything but the tenant itself and billing.
    expect(rowsOf('role:admin').sort()).toEqual(catalogue.capabilities.filter((c) => c !== 'tenant:manage' && c !== 'billing:manage'));
    expect(rowsOf('role:user').sort()).toEqual(
      [
        'tenant:read',
        'assistants:read',
        'tools:read',
        'devices:read',
        'devices:bind',
        'apikeys:own',
        'robots:own',
        'knowledge:read',
        'mcp:read',
        'settings:read',
      ].sort(),
    );
    expect(rowsOf('role:robot')).toEqual(['tenant:read', 'assistants:read', 'tools:read', 'tools:invoke', 'devices:read']);
    for (const capability of rowsOf('role:robot')) expect(catalogue.isKnown(capability)).toBe(true);
  });

  it('knows which objects can be held per assistant (devices, knowledge, tools, MCP, settings, conversations); the rest are tenant-wide', () => {
    expect([...assistantObjects].sort()).toEqual(['conversations', 'devices', 'knowledge', 'mcp', 'settings', 'tools']);
    expect(catalogue.isPerAssistant('members')).toBe(false);
    expect(catalogue.isPerAssistant('tools')).toBe(true);
  });

  it('refuses templates that grant a capability outside the catalogue (robot rows never extend it)', () => {
    const widened = [...templates, ['role:robot', 'secrets', 'read'] as const];
    expect(() => createCatalogue({ templates: widened, plans, assistantObjects })).toThrow(/role:robot grants secrets:read/);
    expect(() =>
      createCatalogue({ templates: [...templates, ['role:guest', 'tenant', 'read'] as const], plans, assistantObjects }),
    ).toThrow(/unknown role role:guest/);
  });

  it('refuses plans and scopes that name what the catalogue lacks', () => {
    expect(() => createCatalogue({ templates, plans: parsePlans('plan, free, secrets, read'), assistantObjects })).toThrow(/secrets:read/);
    expect(() => createCatalogue({ templates, plans, assistantObjects: new Set(['secrets']) })).toThrow(/secrets/);
  });

  it('rejects malformed lines in every file', () => {
    expect(() => parseRoleTemplates('p, role:owner, tools')).toThrow(/not "p, role, object, action"/);
    expect(() => parsePlans('plan, free, tools')).toThrow(/plans.csv line/);
    expect(() => parsePlans('includes, pro, free')).toThrow(/not defined before/);
    expect(() => parsePlans('plan, Free!, tools, read')).toThrow(/bad plan name/);
    expect(() => parseAssistantObjects('tenant, tools')).toThrow(/scopes.csv line/);
  });
});

describe('plans (policies/plans.csv)', () => {
  it('free allows everything the platform uses today, and no premium capability', () => {
    for (const capability of usedByThePlatform) expect(catalogue.planAllows('free', capability)).toBe(true);
    for (const capability of ['knowledge:manage', 'mcp:manage', 'mcp:invoke']) expect(catalogue.planAllows('free', capability)).toBe(false);
  });

  it('pro includes free and adds the premium capabilities; enterprise includes pro, so the whole catalogue', () => {
    for (const capability of catalogue.capabilities) {
      expect(catalogue.planAllows('pro', capability)).toBe(true);
      expect(catalogue.planAllows('enterprise', capability)).toBe(true);
    }
    expect(catalogue.planNames).toEqual(['free', 'pro', 'enterprise']);
    expect(catalogue.planAllows('gold', 'tenant:read')).toBe(false);
  });
});
