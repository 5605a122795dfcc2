import { AppError, isUuid, requireUuid, type AuditPublisher } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind, type Principal, type Role } from '@portcullis/proto/common';
import type { Catalogue } from './catalogue.js';
import { roleSubject, type AssignableRole } from './role-templates.js';

/** A role of one subject as stored: tenant-wide (assistantId null) or on one assistant. */
export interface HeldRole {
  role: string;
  assistantId: string | null;
}

/**
 * Reads and writes of one tenant's rules inside one transaction, which no other change of the
 * same tenant interleaves with (so "who may grant" is decided on what is stored right then).
 * Writes answer whether anything changed.
 */
export interface RuleChanges {
  rolesOf(subject: string): Promise<HeldRole[]>;
  countTenantWide(role: AssignableRole): Promise<number>;
  assignRole(subject: string, role: AssignableRole, assistantId: string | null): Promise<boolean>;
  revokeRole(subject: string, role: AssignableRole, assistantId: string | null): Promise<boolean>;
  /** Deletes every permission of the subject. */
  revokeAllPermissions(subject: string): Promise<boolean>;
  grantPermission(subject: string, object: string, action: string, assistantId: string | null): Promise<boolean>;
  revokePermission(subject: string, object: string, action: string, assistantId: string | null): Promise<boolean>;
  setPlan(plan: string): Promise<boolean>;
}

export interface RuleStore {
  change<R>(tenantId: string, apply: (changes: RuleChanges) => Promise<R>): Promise<R>;
}

export interface GrantLibraryDeps {
  store: RuleStore;
  catalogue: Catalogue;
  /** Drops the tenant's rules on every replica; called after a change is stored. */
  announceChange(tenantId: string): void;
  /**
   * Where the changes only this service knows of are recorded once stored: roles held on one
   * assistant (`policy.role_assigned`, `policy.role_revoked`) and per-user permissions
   * (`policy.permission_granted`, `policy.permission_revoked`). A tenant-wide role is a
   * membership: tenant-registry, which relays it here, records it (`member.*`), so it is never
   * recorded twice.
   */
  audit: Pick<AuditPublisher, 'publish'>;
}

export interface RoleChange {
  tenantId: string;
  userId: string;
  role: Role;
  /** Empty: tenant-wide. */
  assistantId: string;
  /** The verified person making the change; absent only for a tenant's first owner. */
  actor?: Principal | undefined;
}

export interface PermissionChange {
  tenantId: string;
  userId: string;
  /** Empty: tenant-wide. */
  assistantId: string;
  object: string;
  action: string;
  actor?: Principal | undefined;
}

type Authority = 'owner' | 'admin';

function assistantOf(assistantId: string): string | null {
  if (assistantId.length === 0) return null;
  if (!isUuid(assistantId)) {
    throw new AppError('INVALID_ARGUMENT', 'assistant_id must be empty or a UUID', { details: { field: 'assistant_id' } });
  }
  return assistantId.toLowerCase();
}

/** The actor's subject, once it is a person of this tenant. */
function actorSubject(actor: Principal, tenantId: string): string {
  if (actor.kind !== PrincipalKind.USER) throw new AppError('PERMISSION_DENIED', 'only a person may change roles and permissions');
  if (actor.tenantId.toLowerCase() !== tenantId) throw new AppError('CROSS_TENANT', 'the actor belongs to another tenant');
  return `user:${requireUuid(actor.id, 'actor.id')}`;
}

/** Owner or admin by the actor's stored tenant-wide roles (never by a role claimed in a token). */
async function authorityOf(changes: RuleChanges, subject: string): Promise<Authority> {
  const roles = (await changes.rolesOf(subject)).filter((held) => held.assistantId === null).map((held) => held.role);
  if (roles.includes('role:owner')) return 'owner';
  if (roles.includes('role:admin')) return 'admin';
  throw new AppError('PERMISSION_DENIED', 'only owners and admins may change roles and permissions');
}

/** An admin never changes what an owner or an admin holds, nor their own grants. */
async function assertAdminMayTouch(changes: RuleChanges, target: string): Promise<void> {
  const roles = await changes.rolesOf(target);
  if (roles.some((held) => held.assistantId === null && (held.role === 'role:owner' || held.role === 'role:admin'))) {
    throw new AppError('PERMISSION_DENIED', "admins may not change an owner's or an admin's roles or permissions");
  }
}

/**
 * Role assignment, per-user permissions and the tenant's plan. Who may change what is decided
 * here, from the actor's own stored roles, whatever service relays the request:
 *
 * - owners (tenant-wide) assign and revoke any role and grant and revoke any permission;
 * - admins (tenant-wide) assign and revoke only the user role, grant and revoke only
 *   capabilities of the admin template, and never touch an owner or an admin;
 * - nobody else changes anything. The only change without an actor is a tenant's first owner.
 */
export function createGrantLibrary({ store, catalogue, announceChange, audit }: GrantLibraryDeps) {
  /** Records a stored change made by `actor` (always a person of the tenant here). */
  const record = (
    event: { tenantId: string; assistantId: string | null; kind: string; action: string },
    actor: Principal,
    attributes: Record<string, string>,
  ) =>
    audit.publish({
      tenantId: event.tenantId,
      kind: event.kind,
      principal: actor,
      assistantId: event.assistantId ?? '',
      object: 'members',
      action: event.action,
      outcome: Outcome.SUCCESS,
      attributes: { ...attributes, ...(event.assistantId === null ? {} : { assistant_id: event.assistantId }) },
    });

  async function changeRole(change: 'assign' | 'revoke', input: RoleChange): Promise<void> {
    const tenantId = requireUuid(input.tenantId, 'tenant_id');
    const subject = `user:${requireUuid(input.userId, 'user_id')}`;
    const role = roleSubject(input.role);
    const assistantId = assistantOf(input.assistantId);
    if (role === 'role:owner' && assistantId !== null) {
      throw new AppError('INVALID_ARGUMENT', 'the owner role is tenant-wide; it cannot be held on one assistant', {
        details: { field: 'assistant_id' },
      });
    }
    const actor = input.actor === undefined ? undefined : actorSubject(input.actor, tenantId);
    /** Whether revoking the user's last role took their permissions along. */
    const cascade = { permissions: false };

    const changed = await store.change(tenantId, async (changes) => {
      if (actor === undefined) {
        const bootstrap = change === 'assign' && role === 'role:owner' && (await changes.countTenantWide('role:owner')) === 0;
        if (!bootstrap) {
          throw new AppError('PERMISSION_DENIED', "an actor is required: only a tenant's first owner is assigned without one");
        }
      } else if ((await authorityOf(changes, actor)) === 'admin') {
        if (role !== 'role:user') throw new AppError('PERMISSION_DENIED', 'admins may only assign and revoke the user role');
        await assertAdminMayTouch(changes, subject);
      }
      if (change === 'assign') return changes.assignRole(subject, role, assistantId);

      // Revoking a role not held succeeds: removals are retried and repeated.
      const revoked = await changes.revokeRole(subject, role, assistantId);
      if (revoked && role === 'role:owner' && (await changes.countTenantWide('role:owner')) === 0) {
        throw new AppError('FAILED_PRECONDITION', 'a tenant must keep at least one owner');
      }
      // Permissions are held on top of a role: they go with the last one.
      if (revoked && (await changes.rolesOf(subject)).length === 0) cascade.permissions = await changes.revokeAllPermissions(subject);
      return revoked;
    });
    if (!changed) return;
    announceChange(tenantId);
    // Tenant-wide roles are memberships, recorded by tenant-registry; an actor is always there on an assistant.
    if (assistantId === null || input.actor === undefined) return;
    await record(
      change === 'assign'
        ? { tenantId, assistantId, kind: 'policy.role_assigned', action: 'assign_role' }
        : { tenantId, assistantId, kind: 'policy.role_revoked', action: 'revoke_role' },
      input.actor,
      {
        user_id: subject.slice('user:'.length),
        role: role.slice('role:'.length),
        ...(cascade.permissions ? { permissions_revoked: 'all' } : {}),
      },
    );
  }

  async function changePermission(change: 'grant' | 'revoke', input: PermissionChange): Promise<void> {
    const tenantId = requireUuid(input.tenantId, 'tenant_id');
    const subject = `user:${requireUuid(input.userId, 'user_id')}`;
    const assistantId = assistantOf(input.assistantId);
    const { object, action } = input;
    const capability = `${object}:${action}`;
    if (!catalogue.isKnown(capability)) {
      throw new AppError('INVALID_ARGUMENT', `unknown capability ${capability}`, { details: { field: 'object' } });
    }
    if (assistantId !== null && !catalogue.isPerAssistant(object)) {
      throw new AppError('INVALID_ARGUMENT', `${object} is tenant-wide; grant ${capability} without an assistant`, {
        details: { field: 'assistant_id' },
      });
    }
    if (input.actor === undefined) throw new AppError('PERMISSION_DENIED', 'an actor is required to change permissions');
    const actor = actorSubject(input.actor, tenantId);

    const changed = await store.change(tenantId, async (changes) => {
      if ((await authorityOf(changes, actor)) === 'admin') {
        if (!catalogue.templateGrants('role:admin', capability)) {
          throw new AppError('PERMISSION_DENIED', `admins may only grant what the admin role holds, not ${capability}`);
        }
        await assertAdminMayTouch(changes, subject);
      }
      if (change === 'revoke') return changes.revokePermission(subject, object, action, assistantId);
      if ((await changes.rolesOf(subject)).length === 0) {
        throw new AppError('FAILED_PRECONDITION', 'the user holds no role in this tenant; a permission is held on top of a role');
      }
      return changes.grantPermission(subject, object, action, assistantId);
    });
    if (!changed) return;
    announceChange(tenantId);
    await record(
      change === 'grant'
        ? { tenantId, assistantId, kind: 'policy.permission_granted', action: 'grant_permission' }
        : { tenantId, assistantId, kind: 'policy.permission_revoked', action: 'revoke_permission' },
      input.actor,
      { user_id: subject.slice('user:'.length), capability },
    );
  }

  return {
    assignRole: (input: RoleChange) => changeRole('assign', input),
    /** Idempotent: revoking a role not held succeeds. The last tenant-wide owner is never revoked. */
    revokeRole: (input: RoleChange) => changeRole('revoke', input),
    /** Only catalogue capabilities; on an assistant only for per-assistant objects; only to a user holding a role. */
    grantPermission: (input: PermissionChange) => changePermission('grant', input),
    /** Idempotent, like revokeRole. */
    revokePermission: (input: PermissionChange) => changePermission('revoke', input),
    /** Stores the tenant's plan; a plan not in plans.csv is INVALID_ARGUMENT. */
    async setTenantPlan(input: { tenantId: string; plan: string }): Promise<void> {
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      if (!catalogue.isPlan(input.plan)) {
        throw new AppError('INVALID_ARGUMENT', `unknown plan; one of ${catalogue.planNames.join(', ')}`, { details: { field: 'plan' } });
      }
      if (await store.change(tenantId, (changes) => changes.setPlan(input.plan))) announceChange(tenantId);
    },
  };
}

export type GrantLibrary = ReturnType<typeof createGrantLibrary>;
