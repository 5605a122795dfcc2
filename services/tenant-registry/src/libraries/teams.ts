import { AppError, requireUuid, type AuditPublisher } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind } from '@portcullis/proto/common';
import { requireOwnerOrAdmin, type RoleLookup } from './managers.js';
import type { AnnounceChange, TeamRecord } from './records.js';

/**
 * Team memberships inside one tenant's RLS scope. The writes check, in the same transaction,
 * that the team is the tenant's and that the user is a member of the tenant.
 */
export interface TeamStore {
  /**
   * Puts a member of the tenant into one of its teams; true when added, false when already
   * there. NOT_FOUND when the team is not the tenant's; FAILED_PRECONDITION when the user is
   * not a member of the tenant.
   */
  insertTeamMember(tenantId: string, teamId: string, userId: string): Promise<boolean>;
  /** True when the user was in the team and is no longer. */
  deleteTeamMember(tenantId: string, teamId: string, userId: string): Promise<boolean>;
  /** The tenant's teams, by name. */
  listTeams(tenantId: string): Promise<TeamRecord[]>;
  /** The tenant's teams the user is in, by name. */
  listTeamsOfUser(tenantId: string, userId: string): Promise<TeamRecord[]>;
}

export interface TeamLibraryDeps {
  store: TeamStore;
  /** Where the actor's stored role is read. */
  members: RoleLookup;
  announce: AnnounceChange;
  /** Where team membership changes are recorded (`team.member_added`, `team.member_removed`) once stored. */
  audit: Pick<AuditPublisher, 'publish'>;
}

interface TeamMemberChange {
  tenantId: string;
  teamId: string;
  userId: string;
  /** The person making the change; their stored role must be owner or admin. */
  actorUserId: string;
}

/** Who is in which team of a tenant. Teams themselves are created by the tenant library. */
export function createTeamLibrary({ store, members, announce, audit }: TeamLibraryDeps) {
  /** Records a stored change of a team's members; the actor is a person (an owner or admin by their stored role). */
  const record = (
    change: { kind: 'team.member_added'; action: 'add_member' } | { kind: 'team.member_removed'; action: 'remove_member' },
    { tenantId, teamId, userId, actorUserId }: TeamMemberChange,
  ) =>
    audit.publish({
      tenantId,
      kind: change.kind,
      principal: { kind: PrincipalKind.USER, id: actorUserId, tenantId },
      object: 'teams',
      action: change.action,
      outcome: Outcome.SUCCESS,
      attributes: { team_id: teamId, user_id: userId },
    });

  /** Validated ids of a change whose actor is, by their stored role, an owner or admin of the tenant. */
  async function authorizedChange(input: TeamMemberChange) {
    const tenantId = requireUuid(input.tenantId, 'tenant_id');
    const teamId = requireUuid(input.teamId, 'team_id');
    const userId = requireUuid(input.userId, 'user_id');
    const actorUserId = requireUuid(input.actorUserId, 'actor.id');
    await requireOwnerOrAdmin(members, tenantId, actorUserId, 'change team members');
    return { tenantId, teamId, userId, actorUserId };
  }

  return {
    /** Idempotent: adding someone already in the team succeeds and changes nothing. */
    async addTeamMember(input: TeamMemberChange): Promise<void> {
      const change = await authorizedChange(input);
      const added = await store.insertTeamMember(change.tenantId, change.teamId, change.userId);
      if (!added) return;
      announce(change.tenantId, 'team.members.changed');
      await record({ kind: 'team.member_added', action: 'add_member' }, change);
    },

    async removeTeamMember(input: TeamMemberChange): Promise<void> {
      const change = await authorizedChange(input);
      const removed = await store.deleteTeamMember(change.tenantId, change.teamId, change.userId);
      if (!removed) throw new AppError('NOT_FOUND', 'the user is not a member of this team');
      announce(change.tenantId, 'team.members.changed');
      await record({ kind: 'team.member_removed', action: 'remove_member' }, change);
    },

    async listTeams(input: { tenantId: string }): Promise<TeamRecord[]> {
      return store.listTeams(requireUuid(input.tenantId, 'tenant_id'));
    },

    async listUserTeams(input: { tenantId: string; userId: string }): Promise<TeamRecord[]> {
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      const userId = requireUuid(input.userId, 'user_id');
      return store.listTeamsOfUser(tenantId, userId);
    },
  };
}

export type TeamLibrary = ReturnType<typeof createTeamLibrary>;
