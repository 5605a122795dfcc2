import type { TenantScope } from '@portcullis/kit';
import type { MembershipStore } from '../libraries/memberships.js';
import { memberRoleFromRow, tenantRecordOf, type Tx } from './rows.js';

export function createMembershipQueries(scope: TenantScope<Tx>): MembershipStore {
  return {
    describe(tenantId, userId) {
      return scope.run(tenantId, async (tx) => {
        const tenant = await tx.tenant.findUnique({ where: { id: tenantId } });
        const membership = await tx.membership.findUnique({ where: { tenantId_userId: { tenantId, userId } }, select: { role: true } });
        const owners = await tx.membership.count({ where: { tenantId, role: 'owner' } });
        return {
          tenant: tenant ? tenantRecordOf(tenant) : undefined,
          role: membership ? memberRoleFromRow(membership.role) : undefined,
          owners,
        };
      });
    },

    find(tenantId, userId) {
      return scope.run(tenantId, async (tx) => {
        const membership = await tx.membership.findUnique({
          where: { tenantId_userId: { tenantId, userId } },
          select: { role: true, createdAt: true },
        });
        if (!membership) return undefined;
        const tenant = await tx.tenant.findUnique({ where: { id: tenantId }, select: { name: true } });
        if (!tenant) return undefined;
        return { tenantId, tenantName: tenant.name, userId, role: memberRoleFromRow(membership.role), memberSince: membership.createdAt };
      });
    },

    upsert(tenantId, userId, role) {
      return scope.run(tenantId, async (tx) => {
        const membership = await tx.membership.upsert({
          where: { tenantId_userId: { tenantId, userId } },
          create: { tenantId, userId, role },
          update: { role, updatedAt: new Date() },
          select: { role: true, createdAt: true },
        });
        const tenant = await tx.tenant.findUniqueOrThrow({ where: { id: tenantId }, select: { name: true } });
        return { tenantId, tenantName: tenant.name, userId, role: memberRoleFromRow(membership.role), memberSince: membership.createdAt };
      });
    },

    remove(tenantId, userId, role) {
      return scope.run(tenantId, async (tx) => {
        // team_members rows of this membership go with it (ON DELETE CASCADE).
        const { count } = await tx.membership.deleteMany({ where: { tenantId, userId, role } });
        return count > 0;
      });
    },
  };
}

export type MembershipQueries = ReturnType<typeof createMembershipQueries>;
