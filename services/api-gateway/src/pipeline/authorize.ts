import { AppError, type GrpcClient } from '@portcullis/kit';
import { PrincipalKind, Role, type Principal } from '@portcullis/proto/common';
import type { PolicyService } from '@portcullis/proto/policy';
import type { DecisionCounter, DecisionSource } from '../http/metrics.js';
import type { DecisionAuditor } from './audit-decision.js';
import type { AuthorizedContext, RateLimitedContext, RouteRequirement } from './types.js';

export interface AuthorizeDeps {
  policy: Pick<GrpcClient<typeof PolicyService>, 'check'>;
  auditDecision: DecisionAuditor;
  /** Counts every decision, `portcullis_authz_decisions_total{outcome,source}`. */
  authzDecisions?: DecisionCounter;
  /** Whether a policy answer came from the service or the decision cache (`trackDecisionSource`); 'policy' when absent. */
  decisionSourceOf?: (answer: object) => Exclude<DecisionSource, 'route'>;
}

/**
 * Step 4 — authorize the capability. A route only people may use refuses API keys and robots, and
 * a route that acts on an assistant refuses a context without one, before the policy is asked
 * (both audited as denials). Deny by default: a policy service that fails or does
 * not answer in time denies with 503, never allows. Every decision is audited (with the
 * principal that authenticated) before the request may act.
 *
 * API keys: the key's scopes must include the capability, else 403 without asking the policy.
 * The policy service then decides as the key's user (a `user` key) or as its creator (a
 * `tenant` key), so no key ever exceeds a person's current rights.
 *
 * Robot tokens: the ROBOT principal (with its creator as `actingUserId` and its current teams)
 * goes to the policy service as it is; the policy allows only what the `role:robot` template
 * grants AND the creator holds now.
 */
export function createAuthorize({ policy, auditDecision, authzDecisions, decisionSourceOf = () => 'policy' }: AuthorizeDeps) {
  return async function authorize(limited: RateLimitedContext, route: RouteRequirement): Promise<AuthorizedContext> {
    const { request, target, principal, credential, rateLimit } = limited;
    const { capability } = route;
    const name = `${capability.object}:${capability.action}`;
    const record = (allowed: boolean, reason: string) => auditDecision({ request, target, principal, capability, allowed, reason });
    const count = (allowed: boolean, source: DecisionSource) => authzDecisions?.inc({ outcome: allowed ? 'allow' : 'deny', source });
    const allow = () => ({ request, target, principal, credential, capability, rateLimit }) as AuthorizedContext;
    const deny = () => new AppError('PERMISSION_DENIED', `missing capability ${name}`);

    // The route's own conditions first, so a refused request is never recorded as allowed.
    if (route.humansOnly && credential.kind !== 'access_token') {
      count(false, 'route');
      await record(false, 'this route needs a signed-in person');
      throw new AppError('PERMISSION_DENIED', 'this route needs a signed-in person; API keys and robot tokens cannot use it');
    }
    if (route.needsAssistant && !target.assistantId) {
      count(false, 'route');
      await record(false, 'this route acts on an assistant and none was named');
      throw new AppError('INVALID_ARGUMENT', "this route acts on an assistant: send it to the assistant's domain or set X-Assistant-Id");
    }

    // Access tokens and robot tokens are decided as the principal that authenticated.
    let subject: Principal = principal;
    if (credential.kind === 'api_key') {
      if (!credential.scopes.includes(name)) {
        count(false, 'route');
        await record(false, `API key scopes do not include ${name}`);
        throw deny();
      }
      // Within its scopes, a key acts as a user: a user key as its user, a tenant key as the
      // person who created (or last rotated) it. Either way it never exceeds that user's current
      // rights, and stops working when that user loses them or leaves the tenant.
      const actingUser = credential.keyKind === 'user' ? credential.userId : credential.createdBy;
      subject = { ...principal, kind: PrincipalKind.USER, id: actingUser, role: Role.UNSPECIFIED };
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
    // A policy service that did not answer made no decision: the 503 shows in the HTTP and gRPC client metrics.
    count(decision.allowed, decisionSourceOf(decision));
    const reason = subject === principal ? decision.reason : `as user ${subject.id}: ${decision.reason}`;
    await record(decision.allowed, reason);
    if (!decision.allowed) throw deny();
    return allow();
  };
}
