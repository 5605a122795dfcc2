import type { TenantScope } from '@portcullis/kit';
import type { Prisma } from '../generated/prisma/client.js';
import type { TenantRules } from '../libraries/decisions.js';
import type { RuleChanges } from '../libraries/grants.js';

export type Tx = Prisma.TransactionClient;

function changesIn(tx: Tx, tenantId: string): RuleChanges {
  return {
    rolesOf: (subject) => tx.roleAssignment.findMany({ where: { subject }, select: { role: true, assistantId: true } }),
    countTenantWide: (role) => tx.roleAssignment.count({ where: { role, assistantId: null } }),
    async assignRole(subject, role, assistantId) {
      const { count } = await tx.roleAssignment.createMany({ data: [{ tenantId, subject, role, assistantId }], skipDuplicates: true });
      return count > 0;
    },
    async revokeRole(subject, role, assistantId) {
      return (await tx.roleAssignment.deleteMany({ where: { subject, role, assistantId } })).count > 0;
    },
    async revokeAllPermissions(subject) {
      return (await tx.permission.deleteMany({ where: { subject } })).count > 0;
    },
    async grantPermission(subject, object, action, assistantId) {
      const { count } = await tx.permission.createMany({
        data: [{ tenantId, subject, object, action, assistantId }],
        skipDuplicates: true,
      });
      return count > 0;
    },
    async revokePermission(subject, object, action, assistantId) {
      return (await tx.permission.deleteMany({ where: { subject, object, action, assistantId } })).count > 0;
    },
    async setPlan(plan) {
      const current = await tx.tenantPlan.findUnique({ where: { tenantId }, select: { plan: true } });
      if (current?.plan === plan) return false;
      await tx.tenantPlan.upsert({ where: { tenantId }, create: { tenantId, plan }, update: { plan, updatedAt: new Date() } });
      return true;
    },
  };
}

/**
 * One tenant's roles, permissions and plan, always inside that tenant's row-level-security
 * scope. Changes of one tenant are serialised by a transaction-level advisory lock, so the
 * rules a grant is authorised by cannot change before it is stored.
 */
export function createTenantRuleQueries(scope: TenantScope<Tx>) {
  return {
    loadTenant(tenantId: string): Promise<TenantRules> {
      return scope.run(tenantId, async (tx) => {
        const roles = await tx.roleAssignment.findMany({ select: { subject: true, role: true, assistantId: true } });
        const permissions = await tx.permission.findMany({ select: { subject: true, object: true, action: true, assistantId: true } });
        const plan = await tx.tenantPlan.findUnique({ where: { tenantId }, select: { plan: true } });
        return { roles, permissions, plan: plan?.plan ?? null };
      });
    },
    change<R>(tenantId: string, apply: (changes: RuleChanges) => Promise<R>): Promise<R> {
      return scope.run(tenantId, async (tx) => {
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`policy:${tenantId}`}, 0))`;
        return apply(changesIn(tx, tenantId));
      });
    },
  };
}

export type TenantRuleQueries = ReturnType<typeof createTenantRuleQueries>;
