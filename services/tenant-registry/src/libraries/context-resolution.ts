import { AppError, requireHost, requireUuid } from '@portcullis/kit';
import type { ContextRecord } from './records.js';

/** The lookups context resolution needs; each matches at most one row. */
export interface ContextLookups {
  byHost(host: string): Promise<ContextRecord | undefined>;
  byAssistant(assistantId: string): Promise<ContextRecord | undefined>;
  /** The tenant alone, with an empty assistant id. */
  byTenant(tenantId: string): Promise<ContextRecord | undefined>;
}

/** Resolves the tenant (and assistant) a request is for, from an assistant id, a tenant id or its host. */
export function createContextResolver({ lookups }: { lookups: ContextLookups }) {
  async function find(input: { host: string; assistantId: string; tenantId: string }): Promise<ContextRecord> {
    if (input.assistantId !== '') {
      const found = await lookups.byAssistant(requireUuid(input.assistantId, 'assistant_id'));
      if (!found) throw new AppError('NOT_FOUND', 'no tenant is configured for this assistant');
      return found;
    }
    if (input.tenantId !== '') {
      const found = await lookups.byTenant(requireUuid(input.tenantId, 'tenant_id'));
      if (!found) throw new AppError('NOT_FOUND', 'tenant not found');
      return found;
    }
    if (input.host.trim() !== '') {
      const found = await lookups.byHost(requireHost(input.host));
      if (!found) throw new AppError('NOT_FOUND', 'no tenant is configured for this host');
      return found;
    }
    throw new AppError('INVALID_ARGUMENT', 'host, assistant_id or tenant_id is required', { details: { field: 'host' } });
  }

  return {
    /**
     * The assistant id wins when given, then the tenant id (of an already verified
     * credential); otherwise the host is matched case-insensitively without its port. Only
     * an active tenant resolves: a suspended one is refused without any of its data.
     */
    async resolve(input: { host: string; assistantId: string; tenantId: string }): Promise<ContextRecord> {
      const found = await find(input);
      if (found.tenantStatus !== 'active') throw new AppError('TENANT_SUSPENDED', 'tenant is suspended');
      return found;
    },
  };
}

export type ContextResolver = ReturnType<typeof createContextResolver>;
