import type { RawQueryable, TenantScope } from '@portcullis/kit';
import type { ContextLookups } from '../libraries/context-resolution.js';
import type { UserTenantLookup } from '../libraries/memberships.js';
import type { ContextRecord, MembershipRecord } from '../libraries/records.js';
import { memberRoleFromRow, statusOf, type Tx } from './rows.js';

interface ContextRow {
  tenant_id: string;
  tenant_name: string;
  tenant_status: string;
  tenant_plan: string;
  assistant_id: string;
}

function contextOf(rows: ContextRow[]): ContextRecord | undefined {
  const row = rows[0];
  if (!row) return undefined;
  return {
    tenantId: row.tenant_id,
    tenantName: row.tenant_name,
    tenantStatus: statusOf(row.tenant_status),
    tenantPlan: row.tenant_plan,
    assistantId: row.assistant_id,
  };
}

/**
 * Lookups by a key that is not a tenant id. Those that cross tenants by nature never read
 * a table directly: each calls one SECURITY DEFINER function from the migration that takes
 * a single key and returns only the columns the caller needs, so RLS stays in force for
 * everything else. A lookup by tenant id needs no such function and runs in that tenant's scope.
 */
export function createLookupQueries({ db, scope }: { db: RawQueryable; scope: TenantScope<Tx> }): ContextLookups & UserTenantLookup {
  return {
    byTenant(tenantId) {
      return scope.run(tenantId, async (tx) => {
        const tenant = await tx.tenant.findUnique({ where: { id: tenantId } });
        return tenant
          ? {
              tenantId: tenant.id,
              tenantName: tenant.name,
              tenantStatus: statusOf(tenant.status),
              tenantPlan: tenant.plan,
              assistantId: '',
            }
          : undefined;
      });
    },

    async byHost(host) {
      return contextOf(
        await db.$queryRaw<
          ContextRow[]
        >`SELECT tenant_id::text, tenant_name, tenant_status, tenant_plan, assistant_id::text FROM resolve_host(${host})`,
      );
    },

    async byAssistant(assistantId) {
      return contextOf(
        await db.$queryRaw<
          ContextRow[]
        >`SELECT tenant_id::text, tenant_name, tenant_status, tenant_plan, assistant_id::text FROM resolve_assistant(${assistantId}::uuid)`,
      );
    },

    async tenantsOfUser(userId): Promise<MembershipRecord[]> {
      const rows = await db.$queryRaw<
        { tenant_id: string; tenant_name: string; role: string; member_since: Date }[]
      >`SELECT tenant_id::text, tenant_name, role, member_since FROM list_user_tenants(${userId}::uuid)`;
      return rows.map((row) => ({
        tenantId: row.tenant_id,
        tenantName: row.tenant_name,
        userId,
        role: memberRoleFromRow(row.role),
        memberSince: row.member_since,
      }));
    },
  };
}

export type LookupQueries = ReturnType<typeof createLookupQueries>;
