import { AppError, type GrpcClient } from '@portcullis/kit';
import { PrincipalKind, Role, type Principal } from '@portcullis/proto/common';
import type { PolicyService } from '@portcullis/proto/policy';
import type { DecisionAuditor } from './audit-decision.js';
import type { AuthenticatedContext, AuthorizedContext, Capability } from './types.js';

export interface AuthorizeDeps {
  policy: Pick<GrpcClient<typeof PolicyService>, 'check'>;
  auditDecision: DecisionAuditor;
}

/**
 * Step 3 — authorize the capability. Deny by default: a policy service that fails or does
 * not answer in time denies with 503, never allows. Every decision is audited (with the
 * principal that authenticated) before the request may act.
 *
 * API keys: the key's scopes must include the capability, else 403 without asking the policy.
 * A `user` key is then decided by the policy service as its user (so it never exceeds the
 * user's current rights and loses them with the user); a `tenant` key is decided by its
 * scopes alone, which were checked against the policy (as their creator) when it was made.
 */
export function createAuthorize({ policy, auditDecision }: AuthorizeDeps) {
  return async function authorize(authenticated: AuthenticatedContext, capability: Capability): Promise<AuthorizedContext> {
    const { request, target, principal, credential } = authenticated;
    const name = `${capability.object}:${capability.action}`;
    const record = (allowed: boolean, reason: string) => auditDecision({ request, target, principal, capability, allowed, reason });
    const allow = () => ({ request, target, principal, credential, capability }) as AuthorizedContext;
    const deny = () => new AppError('PERMISSION_DENIED', `missing capability ${name}`);

    let subject: Principal = principal;
    if (credential.kind === 'api_key') {
      if (!credential.scopes.includes(name)) {
        await record(false, `API key scopes do not include ${name}`);
        throw deny();
      }
      if (credential.keyKind === 'tenant') {
        await record(true, `granted by tenant API key scope (${name})`);
        return allow();
      }
      subject = { ...principal, kind: PrincipalKind.USER, id: credential.userId, role: Role.UNSPECIFIED };
    }

    let decision: { allowed: boolean; reason: string };
    try {
      decision = await policy.check(
        {
          principal: subject,
          tenantId: target.tenantId,
          assistantId: target.assistantId,
          object: capability.object,
          action: capability.action,
        },
        { requestId: request.requestId },
      );
    } catch (error) {
      await record(false, 'policy service unavailable').catch(() => undefined);
      throw new AppError('DEPENDENCY_UNAVAILABLE', 'the authorization service is unavailable; request denied', { cause: error });
    }
    const reason = subject === principal ? decision.reason : `as user ${subject.id}: ${decision.reason}`;
    await record(decision.allowed, reason);
    if (!decision.allowed) throw deny();
    return allow();
  };
}
