import { AppError, type TenantScope } from '@portcullis/kit';
import type { TenantStore } from '../libraries/tenants.js';
import { isUniqueViolation, tenantRecordOf, type Tx } from './rows.js';

const domainColumns = { id: true, tenantId: true, assistantId: true, host: true, verificationToken: true, verifiedAt: true } as const;
const domainNotFound = () => new AppError('NOT_FOUND', 'domain not found');
const tenantNotFound = () => new AppError('NOT_FOUND', 'tenant not found');

/** Writes of a tenant and what it owns, each inside that tenant's RLS scope. */
export function createTenantQueries(scope: TenantScope<Tx>): TenantStore {
  const requireTenant = async (tx: Tx, tenantId: string) => {
    const tenant = await tx.tenant.findUnique({ where: { id: tenantId }, select: { id: true } });
    if (!tenant) throw tenantNotFound();
  };

  return {
    insertTenantWithOwner({ id, name, plan }, ownerUserId) {
      return scope.run(id, async (tx) => {
        const tenant = await tx.tenant.create({ data: { id, name, status: 'active', plan } });
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

    async insertDomain({ tenantId, assistantId, host, verificationToken, verified }) {
      try {
        return await scope.run(tenantId, async (tx) => {
          // RLS hides other tenants' assistants, so "not ours" and "does not exist" look the same.
          const assistant = await tx.assistant.findUnique({ where: { id: assistantId }, select: { id: true } });
          if (!assistant) throw new AppError('NOT_FOUND', 'assistant not found');
          return await tx.domain.create({
            data: { tenantId, assistantId, host, verificationToken, verifiedAt: verified ? new Date() : null },
            select: domainColumns,
          });
        });
      } catch (error) {
        if (isUniqueViolation(error)) throw new AppError('ALREADY_EXISTS', 'host is already configured', { details: { field: 'host' } });
        throw error;
      }
    },

    findDomain(tenantId, domainId) {
      return scope.run(tenantId, async (tx) => {
        // RLS hides other tenants' domains: "not ours" and "does not exist" look the same.
        const domain = await tx.domain.findUnique({ where: { id: domainId }, select: domainColumns });
        if (!domain) throw domainNotFound();
        return domain;
      });
    },

    async markDomainVerified(tenantId, domainId) {
      try {
        return await scope.run(tenantId, async (tx) => {
          // A domain verified meanwhile keeps its first verification time.
          await tx.domain.updateMany({
            where: { id: domainId, tenantId, verifiedAt: null },
            data: { verifiedAt: new Date() },
          });
          const domain = await tx.domain.findUnique({ where: { id: domainId }, select: domainColumns });
          if (!domain) throw domainNotFound();
          return domain;
        });
      } catch (error) {
        if (isUniqueViolation(error)) {
          throw new AppError('ALREADY_EXISTS', 'another tenant has verified this host', { details: { field: 'host' } });
        }
        throw error;
      }
    },

    moveDomain(tenantId, domainId, assistantId) {
      return scope.run(tenantId, async (tx) => {
        // RLS hides other tenants' assistants and domains, so "not ours" and "does not exist" look the same.
        const assistant = await tx.assistant.findUnique({ where: { id: assistantId }, select: { id: true } });
        if (!assistant) throw new AppError('NOT_FOUND', 'assistant not found');
        const { count } = await tx.domain.updateMany({ where: { id: domainId, tenantId }, data: { assistantId } });
        if (count === 0) throw domainNotFound();
        return tx.domain.findUniqueOrThrow({ where: { id: domainId }, select: domainColumns });
      });
    },

    setStatus(tenantId, status) {
      return scope.run(tenantId, async (tx) => {
        const { count } = await tx.tenant.updateMany({ where: { id: tenantId }, data: { status } });
        if (count === 0) throw tenantNotFound();
        return tenantRecordOf(await tx.tenant.findUniqueOrThrow({ where: { id: tenantId } }));
      });
    },

    setPlan(tenantId, plan, confirm) {
      return scope.run(tenantId, async (tx) => {
        // The row stays locked until commit, so concurrent plan changes of one tenant reach the
        // policy service and this table in the same order.
        const [current] = await tx.$queryRaw<{ id: string; name: string; status: string; plan: string }[]>`
          SELECT id::text, name, status, plan FROM tenants WHERE id = ${tenantId}::uuid FOR UPDATE`;
        if (!current) throw tenantNotFound();
        await confirm(tenantRecordOf(current));
        return tenantRecordOf(await tx.tenant.update({ where: { id: tenantId }, data: { plan } }));
      });
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
