import { AppError, type TenantScope } from '@portcullis/kit';
import type { TenantStore } from '../libraries/tenants.js';
import { isUniqueViolation, tenantRecordOf, type Tx } from './rows.js';

/** Writes of a tenant and what it owns, each inside that tenant's RLS scope. */
export function createTenantQueries(scope: TenantScope<Tx>): TenantStore {
  const requireTenant = async (tx: Tx, tenantId: string) => {
    const tenant = await tx.tenant.findUnique({ where: { id: tenantId }, select: { id: true } });
    if (!tenant) throw new AppError('NOT_FOUND', 'tenant not found');
  };

  return {
    insertTenantWithOwner({ id, name }, ownerUserId) {
      return scope.run(id, async (tx) => {
        const tenant = await tx.tenant.create({ data: { id, name, status: 'active' } });
        await tx.membership.create({ data: { tenantId: id, userId: ownerUserId, role: 'owner' } });
        return tenantRecordOf(tenant);
      });
    },

    insertAssistant(tenantId, name) {
      return scope.run(tenantId, async (tx) => {
        await requireTenant(tx, tenantId);
        return tx.assistant.create({ data: { tenantId, name }, select: { id: true, tenantId: true, name: true } });
      });
    },

    async insertDomain(tenantId, assistantId, host) {
      try {
        return await scope.run(tenantId, async (tx) => {
          // RLS hides other tenants' assistants, so "not ours" and "does not exist" look the same.
          const assistant = await tx.assistant.findUnique({ where: { id: assistantId }, select: { id: true } });
          if (!assistant) throw new AppError('NOT_FOUND', 'assistant not found');
          return await tx.domain.create({
            data: { tenantId, assistantId, host },
            select: { id: true, tenantId: true, assistantId: true, host: true },
          });
        });
      } catch (error) {
        if (isUniqueViolation(error)) throw new AppError('ALREADY_EXISTS', 'host is already configured', { details: { field: 'host' } });
        throw error;
      }
    },

    insertTeam(tenantId, name) {
      return scope.run(tenantId, async (tx) => {
        await requireTenant(tx, tenantId);
        return tx.team.create({ data: { tenantId, name }, select: { id: true, tenantId: true, name: true } });
      });
    },
  };
}

export type TenantQueries = ReturnType<typeof createTenantQueries>;
