import { create } from '@bufbuild/protobuf';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { AppError, type AuditEventInit } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind, PrincipalSchema, Role } from '@portcullis/proto/common';
import { createMemoryRuleStore } from '../test-support/memory-rule-store.js';
import { createGrantLibrary } from './grants.js';
import { readPolicyFiles, type PolicyFiles } from './policy-files.js';

let files: PolicyFiles;
beforeAll(async () => {
  files = await readPolicyFiles(new URL('../../../../policies/', import.meta.url));
});

const tenantA = '00000000-0000-4000-8000-00000000000a';
const tenantB = '00000000-0000-4000-8000-00000000000b';
const assistant1 = '00000000-0000-4000-8000-0000000000a1';
const id = (n: number) => `00000000-0000-4000-8000-${n.toString().padStart(12, '0')}`;
const [owner, admin, plain, scopedAdmin, newcomer, secondOwner] = [1, 2, 3, 4, 5, 6].map(id) as [
  string,
  string,
  string,
  string,
  string,
  string,
];

const actor = (userId: string, extra: Partial<{ kind: PrincipalKind; tenantId: string; role: Role }> = {}) =>
  create(PrincipalSchema, { kind: PrincipalKind.USER, id: userId, tenantId: tenantA, ...extra });

/** A tenant with an owner, an admin, a user and an admin on assistant 1, set up through the library. */
async function setup() {
  const store = createMemoryRuleStore();
  const announced: string[] = [];
  const events: AuditEventInit[] = [];
  const audit = { failing: false };
  const grants = createGrantLibrary({
    store,
    catalogue: files.catalogue,
    announceChange: (tenantId) => announced.push(tenantId),
    audit: {
      async publish(event) {
        if (audit.failing)
          throw new AppError('DEPENDENCY_UNAVAILABLE', 'the change was made, but the audit trail did not store its record');
        events.push(event);
        return 'event-id';
      },
    },
  });
  await grants.assignRole({ tenantId: tenantA, userId: owner, role: Role.OWNER, assistantId: '' });
  const by = actor(owner);
  await grants.assignRole({ tenantId: tenantA, userId: admin, role: Role.ADMIN, assistantId: '', actor: by });
  await grants.assignRole({ tenantId: tenantA, userId: plain, role: Role.USER, assistantId: '', actor: by });
  await grants.assignRole({ tenantId: tenantA, userId: scopedAdmin, role: Role.ADMIN, assistantId: assistant1, actor: by });
  announced.length = 0;
  events.length = 0;
  const roles = (userId: string) =>
    store
      .rulesOf(tenantA)
      .roles.filter((row) => row.subject === `user:${userId}`)
      .map((row) => (row.assistantId ? `${row.role}@${row.assistantId}` : row.role));
  const permissions = (userId: string) =>
    store
      .rulesOf(tenantA)
      .permissions.filter((row) => row.subject === `user:${userId}`)
      .map((row) => `${row.object}:${row.action}${row.assistantId ? `@${row.assistantId}` : ''}`);
  const role = (userId: string, wanted: Role, by: string | undefined, assistantId = '') => ({
    tenantId: tenantA,
    userId,
    role: wanted,
    assistantId,
    ...(by === undefined ? {} : { actor: actor(by) }),
  });
  const permission = (userId: string, capability: string, by: string, assistantId = '') => {
    const [object = '', action = ''] = capability.split(':');
    return { tenantId: tenantA, userId, object, action, assistantId, actor: actor(by) };
  };
  return { grants, store, announced, roles, permissions, role, permission, events, audit };
}

/** An event of a change the owner made, as the library records it. */
const byOwner = (kind: string, action: string, assistantId: string, attributes: Record<string, string>) => ({
  tenantId: tenantA,
  kind,
  principal: actor(owner),
  assistantId,
  object: 'members',
  action,
  outcome: Outcome.SUCCESS,
  attributes,
});

describe('the first owner', () => {
  it('is the only grant without an actor, and only while the tenant has no owner', async () => {
    const { grants, role, roles, announced } = await setup();
    expect(roles(owner)).toEqual(['role:owner']);
    await expect(grants.assignRole(role(newcomer, Role.OWNER, undefined))).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(grants.assignRole(role(newcomer, Role.USER, undefined))).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(grants.revokeRole(role(admin, Role.ADMIN, undefined))).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(roles(newcomer)).toEqual([]);
    expect(roles(admin)).toEqual(['role:admin']);
    expect(announced).toEqual([]);
  });

  it('is given once when two tenant creations race for the same tenant', async () => {
    const { grants } = await setup();
    const results = await Promise.allSettled(
      [id(20), id(21)].map((userId) => grants.assignRole({ tenantId: tenantB, userId, role: Role.OWNER, assistantId: '' })),
    );
    expect(results.map((result) => result.status).sort()).toEqual(['fulfilled', 'rejected']);
  });

  it('is tenant-wide: the owner role is never held on one assistant', async () => {
    const { grants, role } = await setup();
    await expect(grants.assignRole(role(plain, Role.OWNER, owner, assistant1))).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'assistant_id' },
    });
  });
});

describe('owners', () => {
  it('assign and revoke any role, tenant-wide or on an assistant, announcing each change for that tenant', async () => {
    const { grants, role, roles, announced } = await setup();
    await grants.assignRole(role(newcomer, Role.ADMIN, owner));
    await grants.assignRole(role(newcomer, Role.OWNER, owner));
    await grants.assignRole(role(newcomer, Role.ADMIN, owner, assistant1));
    expect(roles(newcomer)).toEqual(['role:admin', 'role:owner', `role:admin@${assistant1}`]);
    await grants.revokeRole(role(newcomer, Role.OWNER, owner));
    await grants.revokeRole(role(admin, Role.ADMIN, owner));
    expect(roles(newcomer)).toEqual(['role:admin', `role:admin@${assistant1}`]);
    expect(roles(admin)).toEqual([]);
    expect(announced).toEqual([tenantA, tenantA, tenantA, tenantA, tenantA]);
  });

  it('demote an owner when another owner remains, never the last one', async () => {
    const { grants, role, roles } = await setup();
    await expect(grants.revokeRole(role(owner, Role.OWNER, owner))).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
    expect(roles(owner)).toEqual(['role:owner']);
    await grants.assignRole(role(secondOwner, Role.OWNER, owner));
    // What tenant-registry does when an owner becomes an admin: the new role first, then the old one goes.
    await grants.assignRole(role(owner, Role.ADMIN, owner));
    await grants.revokeRole(role(owner, Role.OWNER, owner));
    expect(roles(owner)).toEqual(['role:admin']);
  });

  it('grant and revoke any catalogue capability', async () => {
    const { grants, permission, permissions, announced } = await setup();
    await grants.grantPermission(permission(plain, 'billing:manage', owner));
    await grants.grantPermission(permission(plain, 'mcp:invoke', owner, assistant1));
    expect(permissions(plain)).toEqual(['billing:manage', `mcp:invoke@${assistant1}`]);
    await grants.revokePermission(permission(plain, 'billing:manage', owner));
    expect(permissions(plain)).toEqual([`mcp:invoke@${assistant1}`]);
    expect(announced).toEqual([tenantA, tenantA, tenantA]);
  });
});

describe('admins', () => {
  it('assign and revoke the user role, tenant-wide and on an assistant', async () => {
    const { grants, role, roles } = await setup();
    await grants.assignRole(role(newcomer, Role.USER, admin));
    await grants.assignRole(role(newcomer, Role.USER, admin, assistant1));
    expect(roles(newcomer)).toEqual(['role:user', `role:user@${assistant1}`]);
    // What tenant-registry does when an admin removes a user: revoke, then revoke again.
    await grants.revokeRole(role(newcomer, Role.USER, admin));
    await grants.revokeRole(role(newcomer, Role.USER, admin));
    expect(roles(newcomer)).toEqual([`role:user@${assistant1}`]);
  });

  it('never grant admin or owner, tenant-wide or on an assistant', async () => {
    const { grants, role, roles } = await setup();
    for (const [wanted, assistantId] of [
      [Role.ADMIN, ''],
      [Role.ADMIN, assistant1],
      [Role.OWNER, ''],
    ] as const) {
      await expect(grants.assignRole(role(newcomer, wanted, admin, assistantId))).rejects.toMatchObject({
        code: 'PERMISSION_DENIED',
        message: 'admins may only assign and revoke the user role',
      });
    }
    expect(roles(newcomer)).toEqual([]);
  });

  it("never revoke an owner's or an admin's role, nor touch their grants", async () => {
    const { grants, role, roles, permission } = await setup();
    await grants.assignRole(role(newcomer, Role.ADMIN, owner));
    await expect(grants.revokeRole(role(newcomer, Role.ADMIN, admin))).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(grants.revokeRole(role(owner, Role.OWNER, admin))).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(grants.assignRole(role(newcomer, Role.USER, admin))).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(grants.assignRole(role(admin, Role.USER, admin, assistant1))).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(grants.grantPermission(permission(newcomer, 'tools:invoke', admin))).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(roles(newcomer)).toEqual(['role:admin']);
    expect(roles(owner)).toEqual(['role:owner']);
  });

  it('grant only capabilities the admin role holds', async () => {
    const { grants, permission, permissions } = await setup();
    await grants.grantPermission(permission(plain, 'tools:invoke', admin, assistant1));
    await grants.grantPermission(permission(plain, 'audit:read', admin));
    for (const capability of ['billing:manage', 'tenant:manage']) {
      await expect(grants.grantPermission(permission(plain, capability, admin))).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
      await expect(grants.revokePermission(permission(plain, capability, admin))).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    }
    expect(permissions(plain)).toEqual([`tools:invoke@${assistant1}`, 'audit:read']);
  });
});

describe('anyone else', () => {
  it('changes nothing: users, assistant-only admins, robots, actors of other tenants', async () => {
    const { grants, role, roles, permission, announced } = await setup();
    const denied = [
      () => grants.assignRole(role(newcomer, Role.USER, plain)),
      () => grants.assignRole(role(newcomer, Role.USER, scopedAdmin, assistant1)),
      () => grants.assignRole(role(newcomer, Role.USER, newcomer)),
      () => grants.grantPermission(permission(plain, 'tools:invoke', plain)),
      () => grants.assignRole({ ...role(newcomer, Role.USER, undefined), actor: actor(owner, { kind: PrincipalKind.ROBOT }) }),
      () => grants.assignRole({ ...role(newcomer, Role.USER, undefined), actor: actor(owner, { kind: PrincipalKind.SERVICE }) }),
      // A role claimed in a token counts for nothing: the stored roles decide.
      () => grants.assignRole({ ...role(newcomer, Role.USER, undefined), actor: actor(plain, { role: Role.OWNER }) }),
    ];
    for (const attempt of denied) await expect(attempt()).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(
      grants.assignRole({ ...role(newcomer, Role.USER, undefined), actor: actor(owner, { tenantId: tenantB }) }),
    ).rejects.toMatchObject({
      code: 'CROSS_TENANT',
    });
    // The owner of tenant A is nobody in tenant B.
    await grants.assignRole({ tenantId: tenantB, userId: id(30), role: Role.OWNER, assistantId: '' });
    await expect(
      grants.assignRole({
        tenantId: tenantB,
        userId: newcomer,
        role: Role.USER,
        assistantId: '',
        actor: actor(owner, { tenantId: tenantB }),
      }),
    ).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(roles(newcomer)).toEqual([]);
    expect(announced).toEqual([tenantB]);
  });

  it('rejects malformed requests as INVALID_ARGUMENT', async () => {
    const { grants, role, permission } = await setup();
    await expect(grants.assignRole({ ...role(newcomer, Role.USER, owner), tenantId: 'acme' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(grants.assignRole(role('bob', Role.USER, owner))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(grants.assignRole(role(newcomer, Role.UNSPECIFIED, owner))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(grants.assignRole(role(newcomer, Role.USER, owner, 'assistant-1'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(grants.assignRole({ ...role(newcomer, Role.USER, undefined), actor: actor('not-a-uuid') })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(grants.grantPermission(permission(plain, 'tools:delete-everything', owner))).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: 'unknown capability tools:delete-everything',
    });
    await expect(grants.grantPermission(permission(plain, 'members:manage', owner, assistant1))).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'assistant_id' },
    });
  });
});

describe('permissions are held on top of a role', () => {
  it('need an actor, and a user holding a role', async () => {
    const { grants, permission } = await setup();
    const withoutActor = { tenantId: tenantA, userId: plain, object: 'tools', action: 'invoke', assistantId: '' };
    await expect(grants.grantPermission(withoutActor)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(grants.grantPermission(permission(newcomer, 'tools:invoke', owner))).rejects.toMatchObject({
      code: 'FAILED_PRECONDITION',
    });
  });

  it("go with the user's last role", async () => {
    const { grants, role, permission, permissions } = await setup();
    await grants.assignRole(role(plain, Role.USER, owner, assistant1));
    await grants.grantPermission(permission(plain, 'tools:invoke', owner, assistant1));
    await grants.revokeRole(role(plain, Role.USER, owner));
    expect(permissions(plain)).toEqual([`tools:invoke@${assistant1}`]);
    await grants.revokeRole(role(plain, Role.USER, owner, assistant1));
    expect(permissions(plain)).toEqual([]);
  });
});

describe('audit events', () => {
  it('records roles held on one assistant, and leaves tenant-wide roles (memberships) to tenant-registry', async () => {
    const { grants, role, events } = await setup();
    await grants.assignRole(role(newcomer, Role.ADMIN, owner));
    await grants.assignRole(role(newcomer, Role.USER, owner, assistant1));
    await grants.revokeRole(role(newcomer, Role.USER, owner, assistant1));
    await grants.revokeRole(role(newcomer, Role.ADMIN, owner));
    expect(events).toEqual([
      byOwner('policy.role_assigned', 'assign_role', assistant1, { user_id: newcomer, role: 'user', assistant_id: assistant1 }),
      byOwner('policy.role_revoked', 'revoke_role', assistant1, { user_id: newcomer, role: 'user', assistant_id: assistant1 }),
    ]);
  });

  it('records granted and revoked permissions, tenant-wide or on one assistant, and the permissions a last role took along', async () => {
    const { grants, role, permission, events } = await setup();
    await grants.grantPermission(permission(plain, 'audit:read', owner));
    await grants.grantPermission(permission(plain, 'tools:invoke', owner, assistant1));
    await grants.revokePermission(permission(plain, 'audit:read', owner));
    await grants.assignRole(role(newcomer, Role.USER, owner, assistant1));
    await grants.grantPermission(permission(newcomer, 'tools:invoke', owner, assistant1));
    events.length = 0;
    await grants.revokeRole(role(newcomer, Role.USER, owner, assistant1));
    expect(events).toEqual([
      byOwner('policy.role_revoked', 'revoke_role', assistant1, {
        user_id: newcomer,
        role: 'user',
        assistant_id: assistant1,
        permissions_revoked: 'all',
      }),
    ]);
  });

  it('records permission changes with the capability, and nothing for a change that changed nothing', async () => {
    const { grants, permission, events } = await setup();
    await grants.grantPermission(permission(plain, 'audit:read', owner));
    await grants.grantPermission(permission(plain, 'audit:read', owner));
    await grants.grantPermission(permission(plain, 'tools:invoke', owner, assistant1));
    await grants.revokePermission(permission(plain, 'audit:read', owner));
    await grants.revokePermission(permission(plain, 'audit:read', owner));
    expect(events).toEqual([
      byOwner('policy.permission_granted', 'grant_permission', '', { user_id: plain, capability: 'audit:read' }),
      byOwner('policy.permission_granted', 'grant_permission', assistant1, {
        user_id: plain,
        capability: 'tools:invoke',
        assistant_id: assistant1,
      }),
      byOwner('policy.permission_revoked', 'revoke_permission', '', { user_id: plain, capability: 'audit:read' }),
    ]);
  });

  it('keeps a stored change whose record was not stored, and says so (DEPENDENCY_UNAVAILABLE)', async () => {
    const { grants, permission, permissions, audit, announced } = await setup();
    audit.failing = true;
    await expect(grants.grantPermission(permission(plain, 'audit:read', owner))).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(permissions(plain)).toEqual(['audit:read']);
    expect(announced).toEqual([tenantA]);
  });
});

describe('idempotent changes', () => {
  it('succeed without announcing anything when nothing changes', async () => {
    const { grants, role, permission, announced } = await setup();
    await grants.revokeRole(role(newcomer, Role.USER, owner));
    await grants.assignRole(role(plain, Role.USER, owner));
    await grants.revokePermission(permission(plain, 'tools:invoke', owner));
    expect(announced).toEqual([]);
  });
});

describe('plans', () => {
  it('stores a plan of plans.csv and announces it once; refuses others', async () => {
    const { grants, store, announced } = await setup();
    await grants.setTenantPlan({ tenantId: tenantA, plan: 'pro' });
    await grants.setTenantPlan({ tenantId: tenantA, plan: 'pro' });
    expect(store.rulesOf(tenantA).plan).toBe('pro');
    expect(announced).toEqual([tenantA]);
    await expect(grants.setTenantPlan({ tenantId: tenantA, plan: 'gold' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'plan' },
    });
    await expect(grants.setTenantPlan({ tenantId: 'acme', plan: 'pro' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(store.rulesOf(tenantA).plan).toBe('pro');
  });
});
