import { AppError, type GrpcClient } from '@portcullis/kit';
import type { PolicyService } from '@portcullis/proto/policy';
import type { DecisionAuditor } from './audit-decision.js';
import type { AuthenticatedContext, AuthorizedContext, Capability } from './types.js';

export interface AuthorizeDeps {
  policy: Pick<GrpcClient<typeof PolicyService>, 'check'>;
  auditDecision: DecisionAuditor;
}

/**
 * Step 3 — authorize the capability with the policy service. Deny by default: a policy
 * service that fails or does not answer in time denies with 503, never allows. Every
 * decision is audited before the request may act.
 */
export function createAuthorize({ policy, auditDecision }: AuthorizeDeps) {
  return async function authorize(authenticated: AuthenticatedContext, capability: Capability): Promise<AuthorizedContext> {
    const { request, target, principal, credential } = authenticated;
    let decision: { allowed: boolean; reason: string };
    try {
      decision = await policy.check(
        { principal, tenantId: target.tenantId, assistantId: target.assistantId, object: capability.object, action: capability.action },
        { requestId: request.requestId },
      );
    } catch (error) {
      await auditDecision({ request, target, principal, capability, allowed: false, reason: 'policy service unavailable' }).catch(
        () => undefined,
      );
      throw new AppError('DEPENDENCY_UNAVAILABLE', 'the authorization service is unavailable; request denied', { cause: error });
    }
    await auditDecision({ request, target, principal, capability, allowed: decision.allowed, reason: decision.reason });
    if (!decision.allowed) {
      throw new AppError('PERMISSION_DENIED', `missing capability ${capability.object}:${capability.action}`);
    }
    return { request, target, principal, credential, capability } as AuthorizedContext;
  };
}
