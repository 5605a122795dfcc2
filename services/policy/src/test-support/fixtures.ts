import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { create } from '@bufbuild/protobuf';
import { z } from '@portcullis/kit';
import { PrincipalKind, PrincipalSchema, Role, type Principal } from '@portcullis/proto/common';
import { parse } from 'yaml';

/**
 * Decision fixtures: `policies/fixtures/*.yaml`. Each file sets up tenants (plan, assistants),
 * users (roles, permissions) and robots by alias, then lists cases: a principal, a tenant, an
 * assistant (optional) and a capability with the expected effect. Aliases become fresh UUIDs
 * each time a file is loaded, so runs never share ids.
 */

const alias = z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*$/);
const roleName = z.enum(['owner', 'admin', 'user']);
/** `owner`, `user@A` (the role on assistant A). */
const roleGrant = z.string().regex(/^(owner|admin|user)(@[A-Za-z][A-Za-z0-9_-]*)?$/);
/** `tools:invoke`, `tools:invoke@A`. */
const permissionGrant = z.string().regex(/^[a-z][a-z0-9_-]*:[a-z][a-z0-9_-]*(@[A-Za-z][A-Za-z0-9_-]*)?$/);
const kinds = {
  user: PrincipalKind.USER,
  robot: PrincipalKind.ROBOT,
  apikey: PrincipalKind.API_KEY,
  device: PrincipalKind.DEVICE,
  service: PrincipalKind.SERVICE,
};

const fileSchema = z.strictObject({
  description: z.string(),
  tenants: z.record(alias, z.strictObject({ plan: z.string().optional(), assistants: z.array(alias).default([]) })),
  users: z
    .record(
      alias,
      z.strictObject({ tenant: alias, roles: z.array(roleGrant).default([]), permissions: z.array(permissionGrant).default([]) }),
    )
    .default({}),
  robots: z.record(alias, z.strictObject({ tenant: alias, creator: alias })).default({}),
  cases: z
    .array(
      z.strictObject({
        principal: z.strictObject({
          kind: z.enum(['user', 'robot', 'apikey', 'device', 'service']),
          id: alias,
          /** The tenant the principal claims; defaults to the tenant of its alias. */
          tenant: alias.optional(),
          /** A role claimed (as a token would); the policy decides by stored roles only. */
          role: roleName.optional(),
        }),
        tenant: alias,
        assistant: alias.optional(),
        object: z.string(),
        action: z.string(),
        expect: z.enum(['allow', 'deny']),
        /** A part of the expected reason. */
        reason: z.string().optional(),
      }),
    )
    .min(1),
});

export type SetupStep =
  | { kind: 'plan'; tenantId: string; plan: string }
  | { kind: 'role'; tenantId: string; userId: string; role: Role; assistantId: string; actor: Principal | undefined }
  | { kind: 'permission'; tenantId: string; userId: string; assistantId: string; object: string; action: string; actor: Principal };

export interface FixtureCase {
  name: string;
  principal: Principal;
  tenantId: string;
  assistantId: string;
  object: string;
  action: string;
  allowed: boolean;
  reason: string | undefined;
  /** The principal asks in a tenant it does not belong to, or claims one it does not belong to. */
  crossTenant: boolean;
}

/** A principal of the setup, with the tenant it belongs to. */
export interface FixturePrincipal {
  alias: string;
  principal: Principal;
  homeTenantId: string;
}

export interface FixtureSuite {
  file: string;
  description: string;
  tenants: { alias: string; id: string; assistantIds: string[] }[];
  /** In order: plans, each tenant's first owner (without an actor), then every other grant by that owner. */
  setup: SetupStep[];
  principals: FixturePrincipal[];
  cases: FixtureCase[];
}

/** Where the setup is applied: the grant library, or the gRPC client. */
export interface SetupTarget {
  assignRole(request: { tenantId: string; userId: string; role: Role; assistantId: string; actor?: Principal }): Promise<unknown>;
  grantPermission(request: {
    tenantId: string;
    userId: string;
    assistantId: string;
    object: string;
    action: string;
    actor: Principal;
  }): Promise<unknown>;
  setTenantPlan(request: { tenantId: string; plan: string }): Promise<unknown>;
}

const roleOfName = { owner: Role.OWNER, admin: Role.ADMIN, user: Role.USER } as const;

export function parseFixtureSuite(file: string, text: string): FixtureSuite {
  const parsed = fileSchema.safeParse(parse(text));
  if (!parsed.success) throw new Error(`${file}: ${parsed.error.message}`);
  const doc = parsed.data;
  const ids = new Map<string, string>();
  const idOf = (name: string) => {
    const existing = ids.get(name);
    if (existing) return existing;
    const id = randomUUID();
    ids.set(name, id);
    return id;
  };
  const fail = (message: string): never => {
    throw new Error(`${file}: ${message}`);
  };
  const tenantIdOf = (name: string) => (doc.tenants[name] ? idOf(`tenant:${name}`) : fail(`unknown tenant ${name}`));
  const assistantOwner = new Map<string, string>();
  for (const [tenant, { assistants }] of Object.entries(doc.tenants)) for (const a of assistants) assistantOwner.set(a, tenant);
  /** An assistant of the tenant, by alias (an assistant of another tenant is a mistake in the file). */
  const assistantIdOf = (tenant: string, name: string | undefined) => {
    if (name === undefined) return '';
    if (assistantOwner.get(name) !== tenant) fail(`assistant ${name} is not an assistant of ${tenant}`);
    return idOf(`assistant:${name}`);
  };
  const splitScope = (grant: string) => {
    const [what = '', on] = grant.split('@');
    return { what, on };
  };

  const person = (tenant: string, userAlias: string) =>
    create(PrincipalSchema, { kind: PrincipalKind.USER, id: idOf(`user:${userAlias}`), tenantId: tenantIdOf(tenant) });
  const setup: SetupStep[] = [];
  for (const [tenant, { plan }] of Object.entries(doc.tenants)) {
    if (plan !== undefined) setup.push({ kind: 'plan', tenantId: tenantIdOf(tenant), plan });
  }
  const firstOwner = new Map<string, string>();
  for (const [userAlias, user] of Object.entries(doc.users)) {
    if (!firstOwner.has(user.tenant) && user.roles.includes('owner')) {
      firstOwner.set(user.tenant, userAlias);
      setup.push({
        kind: 'role',
        tenantId: tenantIdOf(user.tenant),
        userId: idOf(`user:${userAlias}`),
        role: Role.OWNER,
        assistantId: '',
        actor: undefined,
      });
    }
  }
  for (const [userAlias, user] of Object.entries(doc.users)) {
    const tenantId = tenantIdOf(user.tenant);
    const owner = firstOwner.get(user.tenant);
    const actor = owner === undefined ? undefined : person(user.tenant, owner);
    const grants = user.roles.length + user.permissions.length - (owner === userAlias ? 1 : 0);
    if (grants > 0 && actor === undefined) fail(`tenant ${user.tenant} has grants but no owner to make them`);
    for (const grant of user.roles) {
      if (owner === userAlias && grant === 'owner') continue;
      const { what, on } = splitScope(grant);
      const role = roleOfName[what as keyof typeof roleOfName];
      setup.push({ kind: 'role', tenantId, userId: idOf(`user:${userAlias}`), role, assistantId: assistantIdOf(user.tenant, on), actor });
    }
    for (const grant of user.permissions) {
      const { what, on } = splitScope(grant);
      const [object = '', action = ''] = what.split(':');
      setup.push({
        kind: 'permission',
        tenantId,
        userId: idOf(`user:${userAlias}`),
        assistantId: assistantIdOf(user.tenant, on),
        object,
        action,
        actor: actor ?? fail('unreachable'),
      });
    }
  }

  const principals: FixturePrincipal[] = [];
  for (const [userAlias, user] of Object.entries(doc.users)) {
    principals.push({ alias: userAlias, principal: person(user.tenant, userAlias), homeTenantId: tenantIdOf(user.tenant) });
  }
  for (const [robotAlias, robot] of Object.entries(doc.robots)) {
    if (!doc.users[robot.creator]) fail(`robot ${robotAlias}: unknown creator ${robot.creator}`);
    principals.push({
      alias: robotAlias,
      principal: create(PrincipalSchema, {
        kind: PrincipalKind.ROBOT,
        id: idOf(`robot:${robotAlias}`),
        tenantId: tenantIdOf(robot.tenant),
        actingUserId: idOf(`user:${robot.creator}`),
      }),
      homeTenantId: tenantIdOf(robot.tenant),
    });
  }

  const cases = doc.cases.map((entry, index): FixtureCase => {
    const { principal: p } = entry;
    const home = p.kind === 'robot' ? doc.robots[p.id]?.tenant : p.kind === 'user' && doc.users[p.id] ? doc.users[p.id]?.tenant : undefined;
    if (p.kind === 'robot' && home === undefined) fail(`case ${index + 1}: unknown robot ${p.id}`);
    const claimed = p.tenant ?? home ?? fail(`case ${index + 1}: principal ${p.id} needs a tenant`);
    const creator = p.kind === 'robot' ? doc.robots[p.id]?.creator : undefined;
    const principal = create(PrincipalSchema, {
      kind: kinds[p.kind],
      id: idOf(`${p.kind}:${p.id}`),
      tenantId: tenantIdOf(claimed),
      role: p.role === undefined ? Role.UNSPECIFIED : roleOfName[p.role],
      actingUserId: creator === undefined ? '' : idOf(`user:${creator}`),
    });
    const at = entry.assistant === undefined ? '' : `/${entry.assistant}`;
    const claim = p.tenant === undefined ? '' : ` claiming ${p.tenant}`;
    return {
      name: `${p.kind} ${p.id}${claim} ${entry.object}:${entry.action} in ${entry.tenant}${at} → ${entry.expect}`,
      principal,
      tenantId: tenantIdOf(entry.tenant),
      assistantId: assistantIdOf(entry.tenant, entry.assistant),
      object: entry.object,
      action: entry.action,
      allowed: entry.expect === 'allow',
      reason: entry.reason,
      crossTenant: claimed !== entry.tenant || (home !== undefined && home !== entry.tenant),
    };
  });

  return {
    file,
    description: doc.description,
    tenants: Object.entries(doc.tenants).map(([name, { assistants }]) => ({
      alias: name,
      id: tenantIdOf(name),
      assistantIds: assistants.map((a) => idOf(`assistant:${a}`)),
    })),
    setup,
    principals,
    cases,
  };
}

/** Every `*.yaml` of the folder, by file name. */
export async function loadFixtureSuites(dir: URL): Promise<FixtureSuite[]> {
  const files = (await readdir(dir)).filter((name) => name.endsWith('.yaml')).sort();
  return Promise.all(files.map(async (file) => parseFixtureSuite(file, await readFile(new URL(file, dir), 'utf8'))));
}

/** Applies a suite's setup in order (plans, first owners, then grants made by them). */
export async function applySetup(suite: FixtureSuite, target: SetupTarget): Promise<void> {
  for (const step of suite.setup) {
    if (step.kind === 'plan') {
      await target.setTenantPlan({ tenantId: step.tenantId, plan: step.plan });
    } else if (step.kind === 'role') {
      const request = { tenantId: step.tenantId, userId: step.userId, role: step.role, assistantId: step.assistantId };
      await target.assignRole(step.actor === undefined ? request : { ...request, actor: step.actor });
    } else {
      const { tenantId, userId, assistantId, object, action, actor } = step;
      await target.grantPermission({ tenantId, userId, assistantId, object, action, actor });
    }
  }
}
