import { createHash } from 'node:crypto';
import { AppError, type GrpcClient } from '@portcullis/kit';
import { PrincipalKind, Role, type Principal } from '@portcullis/proto/common';
import type { TenantRegistryService } from '@portcullis/proto/tenant';
import type { AccessTokenVerifier } from '../libraries/access-tokens.js';
import { addressBucketKey } from '../libraries/client-address.js';
import { setBounded, touch } from '../libraries/lru.js';
import { denyWhenUnavailable } from '../libraries/dependency-failure.js';
import type { ApiKeyVerifier } from '../libraries/api-keys.js';
import { isRobotToken, type RobotTokenVerifier } from '../libraries/robot-tokens.js';
import type { RateLimits } from '../libraries/rate-limit-config.js';
import type { RateLimiter } from '../libraries/rate-limiter.js';
import type { SessionCheck } from '../libraries/sessions.js';
import type { DecisionAuditor } from './audit-decision.js';
import type { AuthenticatedContext, Credential, RequestInfo, ResolvedContext, TenantTarget } from './types.js';

export interface AuthenticateDeps {
  verifyAccessToken: AccessTokenVerifier;
  verifyApiKey: ApiKeyVerifier;
  verifyRobotToken: RobotTokenVerifier;
  isSessionActive: SessionCheck;
  /** Whether a request's X-CSRF-Token belongs to its cookie session (see libraries/cookie-sessions.ts). */
  isValidCsrfToken(sessionId: string, token: string | undefined): boolean;
  tenants: Pick<GrpcClient<typeof TenantRegistryService>, 'resolveContext'>;
  auditDecision: DecisionAuditor;
  /** Counts API keys and robot tokens the auth service refused, per client address. */
  consumeRateLimit: RateLimiter;
  rateLimits: RateLimits;
}

/** How long a credential auth accepted is asked about without the address's refusal budget. */
const RECENTLY_ACCEPTED_MS = 600_000;
const RECENTLY_ACCEPTED_MAX = 10_000;

/** The single bearer credential of a request; anything else is UNAUTHENTICATED. */
export function bearerTokenOf(authorization: string | undefined): string {
  if (authorization === undefined || authorization.length === 0) {
    throw new AppError(
      'UNAUTHENTICATED',
      'a credential is required: send Authorization: Bearer <access or robot token> or X-API-Key: <API key>',
    );
  }
  const match = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/.exec(authorization);
  if (!match?.[1]) throw new AppError('UNAUTHENTICATED', 'invalid or expired credential');
  return match[1];
}

const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const present = (value: string | undefined): value is string => value !== undefined && value.length > 0;

/**
 * Which credential the request carries: exactly one of an access token (Authorization header or
 * the cookie session), a robot token (a bearer JWT told apart by its header's `typ` — routing
 * only, see isRobotToken) or an API key. Two of them ⇒ UNAUTHENTICATED.
 */
export function credentialOf(request: Pick<RequestInfo, 'authorization' | 'apiKey' | 'sessionCookie'>): {
  kind: 'access_token' | 'cookie_session' | 'robot_token' | 'api_key';
  value: string;
} {
  const sent = [request.authorization, request.apiKey, request.sessionCookie].filter(present).length;
  if (sent > 1) throw new AppError('UNAUTHENTICATED', 'send exactly one credential');
  if (present(request.apiKey)) return { kind: 'api_key', value: request.apiKey };
  if (present(request.sessionCookie)) {
    if (!JWT.test(request.sessionCookie)) throw new AppError('UNAUTHENTICATED', 'invalid or expired credential');
    return { kind: 'cookie_session', value: request.sessionCookie };
  }
  const token = bearerTokenOf(request.authorization);
  return { kind: isRobotToken(token) ? 'robot_token' : 'access_token', value: token };
}

const principalOf = (
  kind: PrincipalKind,
  id: string,
  tenantId: string,
  role: Role,
  actingAs: { actingUserId: string; teamIds: readonly string[] } = { actingUserId: '', teamIds: [] },
): Principal => ({
  $typeName: 'portcullis.common.v1.Principal',
  kind,
  id,
  tenantId,
  role,
  actingUserId: actingAs.actingUserId,
  teamIds: [...actingAs.teamIds],
});

/**
 * Step 2 — authenticate: exactly one credential — an access JWT (verified locally against the
 * auth service's published keys, whose session has not been revoked; from the Authorization
 * header, or from the cookie session with a CSRF token on changes), a robot token or an API
 * key (both verified by the auth service at every request, so revocation and the creator's
 * removal act at once). Its tenant must be the resolved tenant; on a platform host the
 * credential's tenant becomes the target once the registry confirms it is active.
 */
export function createAuthenticate({
  verifyAccessToken,
  verifyApiKey,
  verifyRobotToken,
  isSessionActive,
  isValidCsrfToken,
  tenants,
  auditDecision,
  consumeRateLimit,
  rateLimits,
}: AuthenticateDeps) {
  /** Credentials auth accepted lately (by SHA-256): busy clients are not held to the refusal budget. */
  const recentlyAccepted = new Map<string, number>();

  /**
   * Runs a verification the auth service makes (API keys, robot tokens; auth down or slow ⇒ 503)
   * against the client
   * address's budget of refusals: a point is spent before auth is asked and given back unless auth
   * refused the credential, so an address past `sensitive.failedAuth` is refused (429) before auth
   * is asked — however many of its requests are in flight at once. A credential auth accepted
   * within the last RECENTLY_ACCEPTED_MS is asked about without the budget (so a busy client's many
   * requests in flight do not crowd it), until auth refuses it.
   */
  async function verifiedRemotely<T>(request: RequestInfo, credential: string, verify: () => Promise<T>): Promise<T> {
    const fingerprint = createHash('sha256').update(credential).digest('base64url');
    const acceptedAt = touch(recentlyAccepted, fingerprint);
    const budgeted = acceptedAt === undefined || Date.now() - acceptedAt > RECENTLY_ACCEPTED_MS;
    const failures = { name: 'failedAuth', key: addressBucketKey(request.clientIp), window: rateLimits.sensitive.failedAuth };
    if (budgeted) await consumeRateLimit([failures]);
    let refused = false;
    try {
      const verified = await verify().catch(denyWhenUnavailable('the auth service'));
      setBounded(recentlyAccepted, fingerprint, Date.now(), RECENTLY_ACCEPTED_MAX);
      return verified;
    } catch (error) {
      refused = error instanceof AppError && error.code === 'UNAUTHENTICATED';
      if (refused) recentlyAccepted.delete(fingerprint);
      throw error;
    } finally {
      if (budgeted && !refused) await consumeRateLimit.refund(failures);
    }
  }

  async function identify(request: RequestInfo): Promise<{ principal: Principal; credential: Credential }> {
    const presented = credentialOf(request);
    if (presented.kind === 'api_key') {
      const key = await verifiedRemotely(request, presented.value, () => verifyApiKey(presented.value, request.requestId));
      return {
        principal: principalOf(PrincipalKind.API_KEY, key.keyId, key.tenantId, Role.UNSPECIFIED),
        credential: {
          kind: 'api_key',
          keyId: key.keyId,
          keyKind: key.kind,
          userId: key.userId,
          createdBy: key.createdBy,
          scopes: key.scopes,
        },
      };
    }
    if (presented.kind === 'robot_token') {
      const robot = await verifiedRemotely(request, presented.value, () => verifyRobotToken(presented.value, request.requestId));
      // No role of its own: the policy allows a robot only what the robot template grants AND
      // its creator (actingUserId) holds now.
      return {
        principal: principalOf(PrincipalKind.ROBOT, robot.robotId, robot.tenantId, Role.UNSPECIFIED, {
          actingUserId: robot.creatorId,
          teamIds: robot.teamIds,
        }),
        credential: { kind: 'robot', robotId: robot.robotId, creatorId: robot.creatorId, teamIds: robot.teamIds },
      };
    }
    const claims = await verifyAccessToken(presented.value);
    const via = presented.kind === 'cookie_session' ? 'cookie' : 'header';
    // A browser sends cookies by itself, so a cookie session changes state only with the token
    // a page of another origin cannot know.
    if (via === 'cookie' && request.changesState && !isValidCsrfToken(claims.sessionId, request.csrfToken)) {
      throw new AppError(
        'PERMISSION_DENIED',
        'missing or invalid CSRF token: send X-CSRF-Token with every change made in a cookie session',
      );
    }
    if (!(await isSessionActive(claims.sessionId))) throw new AppError('UNAUTHENTICATED', 'this session has ended; sign in again');
    return {
      principal: principalOf(PrincipalKind.USER, claims.userId, claims.tenantId, claims.role),
      credential: { kind: 'access_token', sessionId: claims.sessionId, via },
    };
  }

  return async function authenticate(resolved: ResolvedContext): Promise<AuthenticatedContext> {
    const { request } = resolved;
    const { principal, credential } = await identify(request);
    if (resolved.assistantRefusal) {
      // Only now, with the caller authenticated: a suspended tenant's own members learn it is
      // suspended (their tenant's lookup refuses too); everyone else gets the unknown id's answer.
      if (resolved.assistantRefusal.code === 'TENANT_SUSPENDED') {
        await tenants
          .resolveContext({ tenantId: principal.tenantId }, { requestId: request.requestId })
          .catch(denyWhenUnavailable('the tenant registry'));
      }
      throw new AppError('NOT_FOUND', 'no tenant is configured for this request');
    }
    let target: TenantTarget;
    if (resolved.target) {
      target = resolved.target;
      if (principal.tenantId !== target.tenantId) {
        await auditDecision({
          request,
          target,
          principal,
          capability: undefined,
          allowed: false,
          reason: 'credential belongs to another tenant',
        });
        // A tenant's domain is public, so refusing there reveals nothing. Whether an assistant
        // id exists is not: for those the answer is the same as for an unknown id.
        if (request.assistantId !== undefined) throw new AppError('NOT_FOUND', 'no tenant is configured for this request');
        throw new AppError('CROSS_TENANT', 'this credential belongs to another tenant');
      }
    } else {
      const { context } = await tenants
        .resolveContext({ tenantId: principal.tenantId }, { requestId: request.requestId })
        .catch(denyWhenUnavailable('the tenant registry'));
      if (!context) throw new AppError('NOT_FOUND', 'tenant not found');
      target = { tenantId: context.tenantId, tenantName: context.tenantName, plan: context.tenantPlan, assistantId: '' };
    }
    return { request, target, principal, credential } as AuthenticatedContext;
  };
}
