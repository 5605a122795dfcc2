import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { Metadata } from '@grpc/grpc-js';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { admits, type Caller, type CallerRule, type ServiceHandlers } from '@portcullis/kit';
import { PrincipalKind, type PrincipalSchema, Role } from '@portcullis/proto/common';
import {
  AssignRoleRequestSchema,
  BatchCheckRequestSchema,
  CheckRequestSchema,
  ExplainRequestSchema,
  GrantPermissionRequestSchema,
  ListCapabilitiesRequestSchema,
  type PolicyService,
  RevokeRoleRequestSchema,
  SetTenantPlanRequestSchema,
} from '@portcullis/proto/policy';
import { createDecisionLibrary } from '../libraries/decisions.js';
import { createGrantLibrary } from '../libraries/grants.js';
import { readPolicyFiles, type PolicyFiles } from '../libraries/policy-files.js';
import { createMemoryRuleStore } from '../test-support/memory-rule-store.js';
import { createPolicyService } from './policy-service.js';

let files: PolicyFiles;
beforeAll(async () => {
  files = await readPolicyFiles(new URL('../../../../policies/', import.meta.url));
});

const tenantA = '00000000-0000-4000-8000-00000000000a';
const tenantB = '00000000-0000-4000-8000-00000000000b';
const assistant1 = '00000000-0000-4000-8000-0000000000a1';
const owner = '00000000-0000-4000-8000-0000000000c1';
const plain = '00000000-0000-4000-8000-0000000000c2';
const robotId = '00000000-0000-4000-8000-0000000000d1';

type PrincipalInit = MessageInitShape<typeof PrincipalSchema>;
const person = (id: string, tenantId = tenantA): PrincipalInit => ({ kind: PrincipalKind.USER, id, tenantId });
const robot = (actingUserId: string): PrincipalInit => ({ kind: PrincipalKind.ROBOT, id: robotId, tenantId: tenantA, actingUserId });

/** The service over the real libraries and an in-memory store; owner and plain user set up through the API. */
async function setup() {
  const store = createMemoryRuleStore();
  const decisions = createDecisionLibrary({ ...files, rules: store, defaultPlan: 'free', maxCachedTenants: 10, maxAgeMs: 60_000 });
  const announced: string[] = [];
  const grants = createGrantLibrary({
    store,
    catalogue: files.catalogue,
    announceChange(tenantId) {
      decisions.invalidate(tenantId);
      announced.push(tenantId);
    },
    // What is recorded is tested with the library (grants.test.ts).
    audit: { publish: () => Promise.resolve('event-id') },
  });
  // The registration is typed for any service; these are PolicyService's handlers.
  const registration = createPolicyService({ decisions, grants });
  const handlers = registration.handlers as ServiceHandlers<typeof PolicyService>;
  const access = registration.access as Record<string, CallerRule>;
  const call = {
    metadata: new Metadata(),
    requestId: 'test',
    deadline: undefined,
    caller: { kind: 'platform', service: 'tenant-registry' } as Caller,
  };
  await handlers.assignRole(create(AssignRoleRequestSchema, { tenantId: tenantA, userId: owner, role: Role.OWNER }), call);
  await handlers.assignRole(
    create(AssignRoleRequestSchema, { tenantId: tenantA, userId: plain, role: Role.USER, actor: person(owner) }),
    call,
  );
  announced.length = 0;
  const check = (principal: PrincipalInit, capability: string, assistantId = '', tenantId = tenantA) => {
    const [object = '', action = ''] = capability.split(':');
    return handlers.check(create(CheckRequestSchema, { principal, tenantId, assistantId, object, action }), call);
  };
  return { handlers, access, call, check, announced };
}

describe('PolicyService', () => {
  it('Check decides with the decision library, robots included', async () => {
    const { check } = await setup();
    expect(await check(person(owner), 'tools:invoke')).toEqual({ allowed: true, reason: 'granted by role:owner (tools:invoke)' });
    expect(await check(robot(owner), 'members:manage')).toEqual({ allowed: false, reason: 'robots may not members:manage' });
    expect(await check(robot(plain), 'tools:invoke')).toEqual({ allowed: false, reason: `creator user:${plain} lacks tools:invoke` });
    expect(await check(person(owner, tenantB), 'tenant:read')).toEqual({ allowed: false, reason: 'principal belongs to another tenant' });
    await expect(check(robot(''), 'tenant:read')).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'principal.acting_user_id' },
    });
  });

  it('BatchCheck answers in order and refuses more than 100 queries', async () => {
    const { handlers, call } = await setup();
    const batch = (queries: { object: string; action: string; assistantId?: string }[]) =>
      handlers.batchCheck(create(BatchCheckRequestSchema, { principal: person(plain), tenantId: tenantA, queries }), call);
    const { decisions } = await batch([
      { object: 'tenant', action: 'read' },
      { object: 'tools', action: 'invoke', assistantId: assistant1 },
      { object: 'nope', action: 'read' },
    ]);
    expect(decisions?.map((decision) => decision.allowed)).toEqual([true, false, false]);
    await expect(batch(Array.from({ length: 101 }, () => ({ object: 'tenant', action: 'read' })))).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });

  it('GrantPermission with an actor takes effect at once; Explain names the matched permission and the steps', async () => {
    const { handlers, call, check, announced } = await setup();
    expect((await check(person(plain), 'tools:invoke', assistant1)).allowed).toBe(false);
    await handlers.grantPermission(
      create(GrantPermissionRequestSchema, {
        tenantId: tenantA,
        userId: plain,
        assistantId: assistant1,
        object: 'tools',
        action: 'invoke',
        actor: person(owner),
      }),
      call,
    );
    expect(announced).toEqual([tenantA]);
    const explained = await handlers.explain(
      create(ExplainRequestSchema, {
        check: { principal: person(plain), tenantId: tenantA, assistantId: assistant1, object: 'tools', action: 'invoke' },
      }),
      call,
    );
    expect(explained).toMatchObject({
      allowed: true,
      matched: { kind: 'permission', name: 'tools:invoke', assistantId: assistant1 },
      held: [
        { kind: 'role', name: 'role:user', assistantId: '' },
        { kind: 'permission', name: 'tools:invoke', assistantId: assistant1 },
      ],
    });
    expect(explained.steps).toContain('plan free: allows tools:invoke');
    const { capabilities } = await handlers.listCapabilities(
      create(ListCapabilitiesRequestSchema, { principal: person(plain), tenantId: tenantA, assistantId: assistant1 }),
      call,
    );
    expect(capabilities).toContain('tools:invoke');
    expect(capabilities).not.toContain('tools:manage');
  });

  it("refuses role changes by someone who is not an owner or admin, and the plain user's own promotion", async () => {
    const { handlers, call, check } = await setup();
    await expect(
      handlers.assignRole(
        create(AssignRoleRequestSchema, { tenantId: tenantA, userId: plain, role: Role.ADMIN, actor: person(plain) }),
        call,
      ),
    ).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(
      handlers.assignRole(create(AssignRoleRequestSchema, { tenantId: tenantA, userId: plain, role: Role.ADMIN }), call),
    ).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
    });
    expect((await check(person(plain), 'members:manage')).allowed).toBe(false);
  });

  it("denies a robot once its creator's role is revoked (revoking twice is fine)", async () => {
    const { handlers, call, check } = await setup();
    await handlers.assignRole(
      create(AssignRoleRequestSchema, { tenantId: tenantA, userId: plain, role: Role.ADMIN, actor: person(owner) }),
      call,
    );
    expect((await check(robot(plain), 'tools:invoke')).allowed).toBe(true);
    const revoke = create(RevokeRoleRequestSchema, { tenantId: tenantA, userId: plain, role: Role.ADMIN, actor: person(owner) });
    await handlers.revokeRole(revoke, call);
    await handlers.revokeRole(revoke, call);
    expect(await check(robot(plain), 'tools:invoke')).toEqual({ allowed: false, reason: `creator user:${plain} lacks tools:invoke` });
  });

  it('SetTenantPlan changes what the plan allows, and refuses unknown plans', async () => {
    const { handlers, call, check } = await setup();
    expect(await check(person(owner), 'mcp:invoke', assistant1)).toEqual({ allowed: false, reason: 'plan free excludes mcp:invoke' });
    await handlers.setTenantPlan(create(SetTenantPlanRequestSchema, { tenantId: tenantA, plan: 'pro' }), call);
    expect((await check(person(owner), 'mcp:invoke', assistant1)).allowed).toBe(true);
    await expect(
      handlers.setTenantPlan(create(SetTenantPlanRequestSchema, { tenantId: tenantA, plan: 'platinum' }), call),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });

  describe('callers', () => {
    const tenantCaller = (tenantId: string) => ({ ...call0(), caller: { kind: 'tenant', tenantId, subject: 'apikey:k1' } as Caller });
    const call0 = () => ({ metadata: new Metadata(), requestId: 'test', deadline: undefined });
    const allowedFor = (rule: CallerRule | undefined, caller: Caller) => rule !== undefined && admits(rule, caller);

    it("lets a tenant's backend ask about its own tenant, and refuses any other tenant as CROSS_TENANT", async () => {
      const { handlers } = await setup();
      const ask = (tenantId: string, asked: string) =>
        handlers.check(
          create(CheckRequestSchema, { principal: person(owner, asked), tenantId: asked, object: 'tenant', action: 'read' }),
          tenantCaller(tenantId),
        );
      expect((await ask(tenantA, tenantA)).allowed).toBe(true);
      await expect(ask(tenantB, tenantA)).rejects.toMatchObject({ code: 'CROSS_TENANT' });
      const other = tenantCaller(tenantB);
      await expect(
        handlers.batchCheck(
          create(BatchCheckRequestSchema, { principal: person(owner), tenantId: tenantA, queries: [{ object: 'tenant', action: 'read' }] }),
          other,
        ),
      ).rejects.toMatchObject({ code: 'CROSS_TENANT' });
      await expect(
        handlers.explain(
          create(ExplainRequestSchema, { check: { principal: person(owner), tenantId: tenantA, object: 'tenant', action: 'read' } }),
          other,
        ),
      ).rejects.toMatchObject({ code: 'CROSS_TENANT' });
      await expect(handlers.explain(create(ExplainRequestSchema, {}), other)).rejects.toMatchObject({ code: 'CROSS_TENANT' });
      await expect(
        handlers.listCapabilities(create(ListCapabilitiesRequestSchema, { principal: person(owner), tenantId: tenantA }), other),
      ).rejects.toMatchObject({ code: 'CROSS_TENANT' });
    });

    it('admits tenant callers only to the decision methods, grants only from tenant-registry, the gateway and operators, plans only from tenant-registry', async () => {
      const { access } = await setup();
      const tenant: Caller = { kind: 'tenant', tenantId: tenantA, subject: 'apikey:k1' };
      const platform = (service: string): Caller => ({ kind: 'platform', service });
      for (const method of ['check', 'batchCheck', 'explain', 'listCapabilities']) {
        expect([method, allowedFor(access[method], tenant), allowedFor(access[method], platform('tool-gateway'))]).toEqual([
          method,
          true,
          true,
        ]);
      }
      for (const method of ['assignRole', 'revokeRole', 'grantPermission', 'revokePermission']) {
        expect([method, allowedFor(access[method], tenant), allowedFor(access[method], platform('tool-gateway'))]).toEqual([
          method,
          false,
          false,
        ]);
        expect(allowedFor(access[method], platform('tenant-registry')) && allowedFor(access[method], platform('api-gateway'))).toBe(true);
      }
      expect(allowedFor(access['setTenantPlan'], platform('tenant-registry'))).toBe(true);
      expect(allowedFor(access['setTenantPlan'], platform('platform-ops'))).toBe(false);
      expect(allowedFor(access['setTenantPlan'], tenant)).toBe(false);
      expect(allowedFor(access['default'], platform('tenant-registry'))).toBe(false);
    });
  });
});
