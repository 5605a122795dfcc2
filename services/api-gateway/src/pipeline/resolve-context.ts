import { AppError, isUuid, tagActiveSpan, type GrpcClient } from '@portcullis/kit';
import type { TenantRegistryService } from '@portcullis/proto/tenant';
import { denyWhenUnavailable } from '../libraries/dependency-failure.js';
import type { RequestInfo, ResolvedContext, TenantTarget } from './types.js';

export interface ResolveContextDeps {
  /**
   * tenant-registry's ResolveContext — in the running gateway, the context cache in front of it
   * (src/libraries/context-cache.ts), which answers exactly like the registry: the context, or
   * NOT_FOUND / TENANT_SUSPENDED / the registry's failure thrown.
   */
  tenants: Pick<GrpcClient<typeof TenantRegistryService>, 'resolveContext'>;
  platformHosts: readonly string[];
}

/**
 * Step 1 — resolve context: the assistant named by X-Assistant-Id, or the tenant domain the
 * request was sent to. A platform host leaves the target open for step 2. A suspended tenant is
 * refused with 403 TENANT_SUSPENDED — here for a domain, in step 2 for an assistant id and for the
 * credential's tenant on a platform host — and none of its data reaches a route; a registry that
 * cannot answer is 503, never a guess. An assistant id the registry refuses (unknown, or of a
 * suspended tenant) is answered only after step 2 authenticated the caller, so a caller without a
 * credential learns nothing about which ids exist.
 */
export function createResolveContext({ tenants, platformHosts }: ResolveContextDeps) {
  return async function resolveContext(request: RequestInfo): Promise<ResolvedContext> {
    let target: TenantTarget | undefined;
    if (request.assistantId !== undefined) {
      if (!isUuid(request.assistantId)) throw new AppError('INVALID_ARGUMENT', 'X-Assistant-Id must be a UUID');
      try {
        target = await lookUp({ assistantId: request.assistantId, requestId: request.requestId });
      } catch (error) {
        if (error instanceof AppError && (error.code === 'NOT_FOUND' || error.code === 'TENANT_SUSPENDED')) {
          return { request, target: undefined, assistantRefusal: error } as ResolvedContext;
        }
        throw error;
      }
    } else if (!platformHosts.includes(request.host)) {
      target = await lookUp({ host: request.host, requestId: request.requestId });
    }
    return { request, target } as ResolvedContext;
  };

  async function lookUp({ requestId, ...query }: { host?: string; assistantId?: string; requestId: string }): Promise<TenantTarget> {
    const { context } = await tenants.resolveContext(query, { requestId }).catch(denyWhenUnavailable('the tenant registry'));
    if (!context) throw new AppError('NOT_FOUND', 'no tenant is configured for this request');
    // The request's server span names its tenant and assistant (portcullis.tenant_id / assistant_id).
    tagActiveSpan({ tenantId: context.tenantId, assistantId: context.assistantId });
    return { tenantId: context.tenantId, tenantName: context.tenantName, plan: context.tenantPlan, assistantId: context.assistantId };
  }
}
