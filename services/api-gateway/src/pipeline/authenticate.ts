import { AppError, type GrpcClient } from '@portcullis/kit';
import { PrincipalKind, type Principal } from '@portcullis/proto/common';
import type { TenantRegistryService } from '@portcullis/proto/tenant';
import type { AccessTokenVerifier } from '../libraries/access-tokens.js';
import type { SessionCheck } from '../libraries/sessions.js';
import type { DecisionAuditor } from './audit-decision.js';
import type { AuthenticatedContext, ResolvedContext, TenantTarget } from './types.js';

export interface AuthenticateDeps {
  verifyAccessToken: AccessTokenVerifier;
  isSessionActive: SessionCheck;
  tenants: Pick<GrpcClient<typeof TenantRegistryService>, 'resolveContext'>;
  auditDecision: DecisionAuditor;
}

/** The single bearer credential of a request; anything else is UNAUTHENTICATED. */
export function bearerTokenOf(authorization: string | undefined): string {
  if (authorization === undefined || authorization.length === 0) {
    throw new AppError('UNAUTHENTICATED', 'a credential is required: send Authorization: Bearer <access token>');
  }
  const match = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/.exec(authorization);
  if (!match?.[1]) throw new AppError('UNAUTHENTICATED', 'invalid or expired credential');
  return match[1];
}

/**
 * Step 2 — authenticate: exactly one credential, verified locally against the auth
 * service's published keys, whose session has not been revoked. Its tenant must be the resolved tenant; on a platform host
 * the credential's tenant becomes the target once the registry confirms it is active.
 */
export function createAuthenticate({ verifyAccessToken, isSessionActive, tenants, auditDecision }: AuthenticateDeps) {
  return async function authenticate(resolved: ResolvedContext): Promise<AuthenticatedContext> {
    const { request } = resolved;
    const claims = await verifyAccessToken(bearerTokenOf(request.authorization));
    if (!(await isSessionActive(claims.sessionId))) throw new AppError('UNAUTHENTICATED', 'this session has ended; sign in again');
    const principal: Principal = {
      $typeName: 'portcullis.common.v1.Principal',
      kind: PrincipalKind.USER,
      id: claims.userId,
      tenantId: claims.tenantId,
      role: claims.role,
    };
    let target: TenantTarget;
    if (resolved.target) {
      target = resolved.target;
      if (claims.tenantId !== target.tenantId) {
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
      const { context } = await tenants.resolveContext({ tenantId: claims.tenantId }, { requestId: request.requestId });
      if (!context) throw new AppError('NOT_FOUND', 'tenant not found');
      target = { tenantId: context.tenantId, tenantName: context.tenantName, assistantId: '' };
    }
    return { request, target, principal, credential: { kind: 'access_token', sessionId: claims.sessionId } } as AuthenticatedContext;
  };
}
