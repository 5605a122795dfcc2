import { AppError, requireUuid, type AuditPublisher } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import type { Principal, Role } from '@portcullis/proto/common';
import type { AnnounceChange, MembershipRecord, TenantRecord } from './records.js';
import { memberRoleOf, roleOf, type MemberRole, type PolicyRoles } from './roles.js';

/** Reads and writes of memberships inside one tenant's RLS scope. */
export interface MembershipStore {
  /** The tenant, the user's current role in it (if any) and how many owners it has, read together. */
  describe(tenantId: string, userId: string): Promise<{ tenant: TenantRecord | undefined; role: MemberRole | undefined; owners: number }>;
  find(tenantId: string, userId: string): Promise<MembershipRecord | undefined>;
  upsert(tenantId: string, userId: string, role: MemberRole): Promise<MembershipRecord>;
  /**
   * Deletes the membership if the user still holds `role` (their team memberships go with it);
   * true when deleted, false when the membership is gone or its role changed meanwhile.
   */
  remove(tenantId: string, userId: string, role: MemberRole): Promise<boolean>;
}

/** The one lookup across tenants memberships need: every tenant a user belongs to. */
export interface UserTenantLookup {
  tenantsOfUser(userId: string): Promise<MembershipRecord[]>;
}

export interface MembershipLibraryDeps {
  store: MembershipStore;
  lookups: UserTenantLookup;
  policy: PolicyRoles;
  announce: AnnounceChange;
  /** Where membership changes are recorded (`member.*`) once stored; the one owner of these facts. */
  audit: Pick<AuditPublisher, 'publish'>;
}

/**
 * Who may set whose role: an owner may grant any role; an admin may only add users and
 * change the role of someone who is a user into user (never grant or take away admin or
 * owner); anyone else may not change memberships at all.
 */
export function assertMayGrant(actorRole: MemberRole | undefined, targetRole: MemberRole | undefined, newRole: MemberRole): void {
  if (actorRole === 'owner') return;
  if (actorRole === 'admin' && newRole === 'user' && (targetRole === undefined || targetRole === 'user')) return;
  throw new AppError(
    'PERMISSION_DENIED',
    actorRole === 'admin'
      ? 'admins may only add users; granting or changing admin and owner roles needs an owner'
      : 'only owners and admins may change memberships',
  );
}

/** Only owners and admins remove members at all; checked before revealing whether a membership exists. */
function assertMayRemoveAnyone(actorRole: MemberRole | undefined): void {
  if (actorRole !== 'owner' && actorRole !== 'admin') {
    throw new AppError('PERMISSION_DENIED', 'only owners and admins may remove members');
  }
}

/**
 * Who may remove whom: an owner may remove admins and users, an admin only users, anyone else
 * nobody. An owner is never removed this way (demote them first; the last owner never can be).
 */
export function assertMayRemove(actorRole: MemberRole | undefined, targetRole: MemberRole): void {
  assertMayRemoveAnyone(actorRole);
  if (actorRole === 'admin' && targetRole !== 'user') {
    throw new AppError('PERMISSION_DENIED', 'admins may only remove users; removing an admin or owner needs an owner');
  }
  if (targetRole === 'owner') {
    throw new AppError('FAILED_PRECONDITION', 'an owner cannot be removed; change their role first');
  }
}

export function createMembershipLibrary({ store, lookups, policy, announce, audit }: MembershipLibraryDeps) {
  /** Records a stored change of a membership, made by `actor`. */
  const record = (
    change:
      | { kind: 'member.added'; action: 'add' }
      | { kind: 'member.role_changed'; action: 'change_role' }
      | { kind: 'member.removed'; action: 'remove' },
    tenantId: string,
    actor: Principal,
    attributes: Record<string, string>,
  ) =>
    audit.publish({
      tenantId,
      kind: change.kind,
      principal: actor,
      object: 'members',
      action: change.action,
      outcome: Outcome.SUCCESS,
      attributes,
    });

  return {
    /**
     * Gives a user a role in a tenant. The role is granted in the policy service first (and a
     * replaced role withdrawn there) before the membership is stored, so a policy outage
     * fails the call instead of leaving a membership the policy service does not know. Every
     * policy call carries the actor, whose own roles the policy service checks again.
     */
    async addMember(input: { tenantId: string; userId: string; role: Role; actor: Principal }): Promise<MembershipRecord> {
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      const userId = requireUuid(input.userId, 'user_id');
      const { actor } = input;
      const actorUserId = requireUuid(actor.id, 'actor.id');
      const role = memberRoleOf(input.role);
      const current = await store.describe(tenantId, userId);
      if (!current.tenant) throw new AppError('NOT_FOUND', 'tenant not found');
      // The actor's role is read from the memberships, not taken from the caller's token.
      const actorRole = (await store.find(tenantId, actorUserId))?.role;
      assertMayGrant(actorRole, current.role, role);
      if (current.role === 'owner' && role !== 'owner' && current.owners <= 1) {
        throw new AppError('FAILED_PRECONDITION', 'a tenant must keep at least one owner');
      }
      await policy.assignRole({ tenantId, userId, role: roleOf(role), actor });
      if (current.role !== undefined && current.role !== role) {
        await policy.revokeRole({ tenantId, userId, role: roleOf(current.role), actor });
      }
      const membership = await store.upsert(tenantId, userId, role);
      announce(tenantId, 'member.changed');
      // Giving someone the role they hold changes nothing and records nothing.
      if (current.role === undefined) {
        await record({ kind: 'member.added', action: 'add' }, tenantId, actor, { user_id: userId, role });
      } else if (current.role !== role) {
        await record({ kind: 'member.role_changed', action: 'change_role' }, tenantId, actor, {
          user_id: userId,
          role,
          previous_role: current.role,
        });
      }
      return membership;
    },

    /**
     * Removes a user from a tenant: their role, and with the membership their team
     * memberships. The role is revoked in the policy service first, so a policy outage fails
     * the call instead of leaving a role behind for someone who is no longer a member; should
     * the membership then fail to be deleted, the role is given back. Every policy call,
     * compensations included, carries the actor.
     */
    async removeMember(input: { tenantId: string; userId: string; actor: Principal }): Promise<void> {
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      const userId = requireUuid(input.userId, 'user_id');
      const { actor } = input;
      const actorUserId = requireUuid(actor.id, 'actor.id');
      const current = await store.describe(tenantId, userId);
      if (!current.tenant) throw new AppError('NOT_FOUND', 'tenant not found');
      // The actor's role is read from the memberships, not taken from the caller's token.
      const actorRole = (await store.find(tenantId, actorUserId))?.role;
      assertMayRemoveAnyone(actorRole);
      if (current.role === undefined) throw new AppError('NOT_FOUND', 'membership not found');
      assertMayRemove(actorRole, current.role);

      const grant = { tenantId, userId, role: roleOf(current.role), actor };
      await policy.revokeRole(grant);
      let removed: boolean;
      try {
        removed = await store.remove(tenantId, userId, current.role);
      } catch (error) {
        // Still a member: give the role back so the stored membership keeps meaning what it says.
        await policy.assignRole(grant).catch(() => undefined);
        throw error;
      }
      if (!removed) {
        // Someone else removed the member, or changed the role (which revoked this one itself).
        const now = await store.find(tenantId, userId);
        if (now) throw new AppError('FAILED_PRECONDITION', 'the membership changed while it was being removed; try again');
        throw new AppError('NOT_FOUND', 'membership not found');
      }
      // A concurrent AddMember with the same role may have granted the role again between the
      // revocation and the delete: revoke once more, then give the role back only to a
      // membership that exists now (added again after the delete) with that same role — a
      // different role was granted by the concurrent AddMember itself and was not touched here.
      // Never a grant without a member, and never one the actor could not make (the role is the
      // one they were allowed to remove).
      await policy.revokeRole(grant);
      const again = await store.find(tenantId, userId);
      if (again?.role === current.role) await policy.assignRole(grant);
      announce(tenantId, 'member.changed');
      await record({ kind: 'member.removed', action: 'remove' }, tenantId, actor, { user_id: userId, role: current.role });
    },

    async getMembership(input: { tenantId: string; userId: string }): Promise<MembershipRecord> {
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      const userId = requireUuid(input.userId, 'user_id');
      const membership = await store.find(tenantId, userId);
      if (!membership) throw new AppError('NOT_FOUND', 'membership not found');
      return membership;
    },

    async listUserTenants(input: { userId: string }): Promise<MembershipRecord[]> {
      return lookups.tenantsOfUser(requireUuid(input.userId, 'user_id'));
    },
  };
}

export type MembershipLibrary = ReturnType<typeof createMembershipLibrary>;
