import { createAuthenticate, type AuthenticateDeps } from './authenticate.js';
import { createAuthorize, type AuthorizeDeps } from './authorize.js';
import { createRateLimit, type RateLimitDeps } from './rate-limit.js';
import { createResolveContext, type ResolveContextDeps } from './resolve-context.js';
import type { AuthorizedContext, Capability, RequestInfo, RouteConditions } from './types.js';

export type PipelineDeps = ResolveContextDeps & AuthenticateDeps & RateLimitDeps & AuthorizeDeps;

/**
 * The ordered gate every protected request passes, in this order and no other:
 *
 *   1. resolveContext — which tenant/assistant the request is for
 *   2. authenticate   — exactly one verified credential of that tenant
 *   3. rateLimit      — the tenant's and the principal's buckets, sized by the tenant's plan
 *   4. authorize      — the policy service allows the route's capability (audited)
 *
 * The route handler (act) then receives the AuthorizedContext only this function makes.
 */
export function createPipeline(deps: PipelineDeps) {
  const resolveContext = createResolveContext(deps);
  const authenticate = createAuthenticate(deps);
  const rateLimit = createRateLimit(deps);
  const authorize = createAuthorize(deps);

  return {
    resolveContext,
    async run(request: RequestInfo, capability: Capability, conditions: RouteConditions = {}): Promise<AuthorizedContext> {
      const route = { ...conditions, capability };
      const resolved = await resolveContext(request);
      const authenticated = await authenticate(resolved);
      const limited = await rateLimit(authenticated, route);
      return authorize(limited, route);
    },
  };
}

export type Pipeline = ReturnType<typeof createPipeline>;
export type * from './types.js';
