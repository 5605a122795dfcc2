import { AppError, type TenantScope } from '@portcullis/kit';
import type { TeamStore } from '../libraries/teams.js';
import { isForeignKeyViolation, type Tx } from './rows.js';

const teamColumns = { id: true, tenantId: true, name: true } as const;
const byName = [{ name: 'asc' }, { id: 'asc' }] as const;

const notAMember = () => new AppError('FAILED_PRECONDITION', 'the user is not a member of this tenant', { details: { field: 'user_id' } });

/** Team memberships, each read and write inside the tenant's RLS scope. */
export function createTeamQueries(scope: TenantScope<Tx>): TeamStore {
  return {
    async insertTeamMember(tenantId, teamId, userId) {
      try {
        return await scope.run(tenantId, async (tx) => {
          // RLS hides other tenants' teams, so "not ours" and "does not exist" look the same.
          const team = await tx.team.findUnique({ where: { id: teamId }, select: { id: true } });
          if (!team) throw new AppError('NOT_FOUND', 'team not found');
          const member = await tx.membership.findUnique({ where: { tenantId_userId: { tenantId, userId } }, select: { userId: true } });
          if (!member) throw notAMember();
          const { count } = await tx.teamMember.createMany({ data: [{ tenantId, teamId, userId }], skipDuplicates: true });
          return count > 0;
        });
      } catch (error) {
        // The membership (or the team) went away between the check and the insert.
        if (isForeignKeyViolation(error)) throw notAMember();
        throw error;
      }
    },

    deleteTeamMember(tenantId, teamId, userId) {
      return scope.run(tenantId, async (tx) => {
        const { count } = await tx.teamMember.deleteMany({ where: { tenantId, teamId, userId } });
        return count > 0;
      });
    },

    listTeams(tenantId) {
      return scope.run(tenantId, (tx) => tx.team.findMany({ where: { tenantId }, select: teamColumns, orderBy: [...byName] }));
    },

    listTeamsOfUser(tenantId, userId) {
      return scope.run(tenantId, async (tx) => {
        const rows = await tx.teamMember.findMany({ where: { tenantId, userId }, select: { teamId: true } });
        if (rows.length === 0) return [];
        return tx.team.findMany({
          where: { tenantId, id: { in: rows.map((row) => row.teamId) } },
          select: teamColumns,
          orderBy: [...byName],
        });
      });
    },
  };
}

export type TeamQueries = ReturnType<typeof createTeamQueries>;
