import { readFileSync } from 'node:fs';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { Metadata } from '@grpc/grpc-js';
import { describe, expect, it } from '@jest/globals';
import type { ServiceHandlers } from '@portcullis/kit';
import { PrincipalKind, type PrincipalSchema, Role } from '@portcullis/proto/common';
import { CheckRequestSchema, type PolicyService, RevokeRoleRequestSchema } from '@portcullis/proto/policy';
import { createDecisionLibrary, type Assignment } from '../libraries/decisions.js';
import { parseRoleTemplates } from '../libraries/role-templates.js';
import { createPolicyService } from './policy-service.js';

const policies = new URL('../../../../policies/', import.meta.url);
const modelText = readFileSync(new URL('model.conf', policies), 'utf8');
const templates = parseRoleTemplates(readFileSync(new URL('roles.csv', policies), 'utf8'));

const tenantA = '00000000-0000-4000-8000-00000000000a';
const tenantB = '00000000-0000-4000-8000-00000000000b';
const owner = '00000000-0000-4000-8000-0000000000c1';
const plain = '00000000-0000-4000-8000-0000000000c2';
const robotId = '00000000-0000-4000-8000-0000000000d1';

type PrincipalInit = MessageInitShape<typeof PrincipalSchema>;

/** The service over the real decision library and an in-memory assignment store. */
function setup() {
  const rows = new Map<string, Assignment[]>([
    [
      tenantA,
      [
        { subject: `user:${owner}`, role: 'role:owner' },
        { subject: `user:${plain}`, role: 'role:user' },
      ],
    ],
  ]);
  const rowsOf = (tenantId: string) => rows.get(tenantId) ?? [];
  const decisions = createDecisionLibrary({
    modelText,
    templates,
    assignments: { listForTenant: async (tenantId) => [...rowsOf(tenantId)] },
    maxCachedTenants: 10,
    maxAgeMs: 60_000,
  });
  const announced: string[] = [];
  const registration = createPolicyService({
    decisions,
    assignments: {
      async assign(tenantId, subject, role) {
        rows.set(tenantId, [...rowsOf(tenantId), { subject, role }]);
      },
      async revoke(tenantId, subject, role) {
        rows.set(
          tenantId,
          rowsOf(tenantId).filter((row) => row.subject !== subject || row.role !== role),
        );
      },
    },
    announceChange: (tenantId) => announced.push(tenantId),
  });
  // The registration is typed for any service; these are PolicyService's handlers.
  const handlers = registration.handlers as ServiceHandlers<typeof PolicyService>;
  const call = { metadata: new Metadata(), requestId: 'test', deadline: undefined };
  const check = (principal: PrincipalInit, capability: string, tenantId = tenantA) => {
    const [object = '', action = ''] = capability.split(':');
    return handlers.check(create(CheckRequestSchema, { principal, tenantId, object, action }), call);
  };
  const robot = (actingUserId: string, extra: PrincipalInit = {}): PrincipalInit => ({
    kind: PrincipalKind.ROBOT,
    id: robotId,
    tenantId: tenantA,
    actingUserId,
    ...extra,
  });
  const revoke = (userId: string, role: Role) =>
    handlers.revokeRole(create(RevokeRoleRequestSchema, { tenantId: tenantA, userId, role }), call);
  return { check, robot, revoke, announced };
}

describe('PolicyService.Check for robots', () => {
  it('allows a robot when the robot template and its creator both grant the capability', async () => {
    const { check, robot } = setup();
    expect(await check(robot(owner), 'tools:invoke')).toEqual({
      allowed: true,
      reason: `granted by role:robot and creator user:${owner} via role:owner (tools:invoke)`,
    });
    expect(await check(robot(plain), 'tenant:read')).toMatchObject({ allowed: true });
  });

  it('denies what the robot template lacks even for an owner creator', async () => {
    const { check, robot } = setup();
    expect(await check(robot(owner), 'members:manage')).toEqual({ allowed: false, reason: 'robots may not members:manage' });
  });

  it('denies what the creator lacks', async () => {
    const { check, robot } = setup();
    expect(await check(robot(plain), 'tools:invoke')).toEqual({ allowed: false, reason: `creator user:${plain} lacks tools:invoke` });
  });

  it("denies once the creator's role is revoked", async () => {
    const { check, robot, revoke, announced } = setup();
    expect((await check(robot(owner), 'tools:invoke')).allowed).toBe(true);
    await revoke(owner, Role.OWNER);
    expect(announced).toEqual([tenantA]);
    expect(await check(robot(owner), 'tools:invoke')).toEqual({ allowed: false, reason: `creator user:${owner} lacks tools:invoke` });
  });

  it('rejects a robot without its creator, or with a malformed one, as INVALID_ARGUMENT', async () => {
    const { check, robot } = setup();
    await expect(check(robot(''), 'tenant:read')).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'principal.acting_user_id' },
    });
    await expect(check(robot('user:someone'), 'tenant:read')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(check(robot(owner, { id: '' }), 'tenant:read')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it("denies a robot of another tenant, and never lets a robot borrow a creator's rights elsewhere", async () => {
    const { check, robot } = setup();
    expect(await check(robot(owner, { tenantId: tenantB }), 'tenant:read')).toEqual({
      allowed: false,
      reason: 'principal belongs to another tenant',
    });
    expect(await check(robot(owner, { tenantId: tenantB }), 'tenant:read', tenantB)).toMatchObject({ allowed: false });
  });

  it('keeps deciding people by their own roles: acting_user_id does not change a user decision', async () => {
    const { check } = setup();
    const user = { kind: PrincipalKind.USER, id: plain, tenantId: tenantA };
    expect((await check({ ...user, actingUserId: owner }, 'tools:invoke')).allowed).toBe(false);
    expect((await check(user, 'tenant:read')).allowed).toBe(true);
  });
});
