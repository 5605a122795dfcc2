import { AppError } from '@portcullis/kit';
import { addressBucketKey } from '../libraries/client-address.js';
import { limitsOfPlan, type RateLimits } from '../libraries/rate-limit-config.js';
import type { Bucket, RateLimiter } from '../libraries/rate-limiter.js';
import type { DecisionAuditor } from './audit-decision.js';
import type { AuthenticatedContext, RateLimitedContext, RouteRequirement } from './types.js';

export interface RateLimitDeps {
  consumeRateLimit: RateLimiter;
  rateLimits: RateLimits;
  auditDecision: DecisionAuditor;
}

/** The buckets of an authenticated request: its tenant's, its principal's, and a sensitive route's. */
export function bucketsOf({ target, principal, credential, request }: AuthenticatedContext, route: RouteRequirement, limits: RateLimits) {
  const plan = limitsOfPlan(limits, target.plan);
  const buckets: Bucket[] = [{ name: 'tenant', key: target.tenantId, window: plan.tenant }];
  switch (credential.kind) {
    case 'access_token':
      buckets.push({ name: 'user', key: `${target.tenantId}:${principal.id}`, window: plan.user });
      break;
    case 'api_key':
      buckets.push({ name: 'api-key', key: credential.keyId, window: plan.apiKey });
      break;
    case 'robot':
      buckets.push({ name: 'robot', key: credential.robotId, window: plan.robot });
      break;
  }
  if (route.sensitive) {
    const window = limits.sensitive[route.sensitive];
    buckets.push(
      { name: `${route.sensitive}:principal`, key: `${target.tenantId}:${principal.id}`, window },
      { name: `${route.sensitive}:address`, key: addressBucketKey(request.clientIp), window },
    );
  }
  return buckets;
}

/**
 * Step 3 — rate limit: one point from the tenant's bucket and the principal's (per person, API
 * key or robot), sized by the tenant's plan, plus the per-person and per-address buckets of a
 * sensitive route. Over a limit ⇒ 429 with `Retry-After` (audited as a denial); the counters'
 * store unreachable ⇒ 503, never an allow.
 */
export function createRateLimit({ consumeRateLimit, rateLimits, auditDecision }: RateLimitDeps) {
  return async function rateLimit(authenticated: AuthenticatedContext, route: RouteRequirement): Promise<RateLimitedContext> {
    const { request, target, principal } = authenticated;
    try {
      const state = await consumeRateLimit(bucketsOf(authenticated, route, rateLimits));
      return { ...authenticated, rateLimit: state } as RateLimitedContext;
    } catch (error) {
      const reason = error instanceof AppError && error.code === 'RATE_LIMITED' ? 'rate limit exceeded' : 'rate limiter unavailable';
      await auditDecision({ request, target, principal, capability: route.capability, allowed: false, reason });
      throw error;
    }
  };
}
