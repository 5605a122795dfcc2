import { AppError, requireUuid } from '@portcullis/kit';
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
  announce: AnnounceChange;
}

/** Who is in which team of a tenant. Teams themselves are created by the tenant library. */
export function createTeamLibrary({ store, announce }: TeamLibraryDeps) {
  return {
    /** Idempotent: adding someone already in the team succeeds and changes nothing. */
    async addTeamMember(input: { tenantId: string; teamId: string; userId: string }): Promise<void> {
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      const teamId = requireUuid(input.teamId, 'team_id');
      const userId = requireUuid(input.userId, 'user_id');
      const added = await store.insertTeamMember(tenantId, teamId, userId);
      if (added) announce(tenantId, 'team.members.changed');
    },

    async removeTeamMember(input: { tenantId: string; teamId: string; userId: string }): Promise<void> {
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      const teamId = requireUuid(input.teamId, 'team_id');
      const userId = requireUuid(input.userId, 'user_id');
      const removed = await store.deleteTeamMember(tenantId, teamId, userId);
      if (!removed) throw new AppError('NOT_FOUND', 'the user is not a member of this team');
      announce(tenantId, 'team.members.changed');
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
