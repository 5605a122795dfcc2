import { AppError, isUuid, type GrpcClient } from '@portcullis/kit';
import type { TenantRegistryService } from '@portcullis/proto/tenant';
import type { RequestInfo, ResolvedContext, TenantTarget } from './types.js';

export interface ResolveContextDeps {
  tenants: Pick<GrpcClient<typeof TenantRegistryService>, 'resolveContext'>;
  platformHosts: readonly string[];
}

/**
 * Step 1 — resolve context: the assistant named by X-Assistant-Id, or the tenant domain the
 * request was sent to. A platform host leaves the target open for step 2.
 */
export function createResolveContext({ tenants, platformHosts }: ResolveContextDeps) {
  return async function resolveContext(request: RequestInfo): Promise<ResolvedContext> {
    let target: TenantTarget | undefined;
    if (request.assistantId !== undefined) {
      if (!isUuid(request.assistantId)) throw new AppError('INVALID_ARGUMENT', 'X-Assistant-Id must be a UUID');
      target = await lookUp({ assistantId: request.assistantId, requestId: request.requestId });
    } else if (!platformHosts.includes(request.host)) {
      target = await lookUp({ host: request.host, requestId: request.requestId });
    }
    return { request, target } as ResolvedContext;
  };

  async function lookUp({ requestId, ...query }: { host?: string; assistantId?: string; requestId: string }): Promise<TenantTarget> {
    const { context } = await tenants.resolveContext(query, { requestId });
    if (!context) throw new AppError('NOT_FOUND', 'no tenant is configured for this request');
    return { tenantId: context.tenantId, tenantName: context.tenantName, assistantId: context.assistantId };
  }
}
