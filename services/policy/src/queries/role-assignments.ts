import type { TenantScope } from '@portcullis/kit';
import type { Prisma } from '../generated/prisma/client.js';
import type { Assignment } from '../libraries/decisions.js';

export type Tx = Prisma.TransactionClient;

export function createRoleAssignmentQueries(scope: TenantScope<Tx>) {
  return {
    listForTenant(tenantId: string): Promise<Assignment[]> {
      return scope.run(tenantId, (tx) => tx.roleAssignment.findMany({ select: { subject: true, role: true } }));
    },
    async assign(tenantId: string, subject: string, role: string): Promise<void> {
      await scope.run(tenantId, (tx) => tx.roleAssignment.createMany({ data: [{ tenantId, subject, role }], skipDuplicates: true }));
    },
    async revoke(tenantId: string, subject: string, role: string): Promise<void> {
      await scope.run(tenantId, (tx) => tx.roleAssignment.deleteMany({ where: { tenantId, subject, role } }));
    },
  };
}

export type RoleAssignmentQueries = ReturnType<typeof createRoleAssignmentQueries>;
