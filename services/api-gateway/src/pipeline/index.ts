import { createAuthenticate, type AuthenticateDeps } from './authenticate.js';
import { createAuthorize, type AuthorizeDeps } from './authorize.js';
import { createResolveContext, type ResolveContextDeps } from './resolve-context.js';
import type { AuthorizedContext, Capability, RequestInfo } from './types.js';

export type PipelineDeps = ResolveContextDeps & AuthenticateDeps & AuthorizeDeps;

/**
 * The ordered gate every protected request passes, in this order and no other:
 *
 *   1. resolveContext — which tenant/assistant the request is for
 *   2. authenticate   — exactly one verified credential of that tenant
 *   3. authorize      — the policy service allows the route's capability (audited)
 *
 * The route handler (act) then receives the AuthorizedContext only this function makes.
 */
export function createPipeline(deps: PipelineDeps) {
  const resolveContext = createResolveContext(deps);
  const authenticate = createAuthenticate(deps);
  const authorize = createAuthorize(deps);

  return {
    resolveContext,
    async run(request: RequestInfo, capability: Capability): Promise<AuthorizedContext> {
      const resolved = await resolveContext(request);
      const authenticated = await authenticate(resolved);
      return authorize(authenticated, capability);
    },
  };
}

export type Pipeline = ReturnType<typeof createPipeline>;
export type * from './types.js';
