import { errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { AppError, isUuid } from '@portcullis/kit';
import { Role } from '@portcullis/proto/common';

export interface AccessClaims {
  userId: string;
  tenantId: string;
  role: Role;
}

const roles: Record<string, Role> = { owner: Role.OWNER, admin: Role.ADMIN, user: Role.USER };

export interface AccessTokenVerifierDeps {
  /** Key lookup by `kid`, e.g. jose's createRemoteJWKSet over the auth service's JWKS. */
  keys: JWTVerifyGetKey;
  issuer: string;
  audience: string;
}

/**
 * Verifies an access JWT: ES256 only (no `none`, no HMAC), issuer, audience, expiry, and
 * well-formed Portcullis claims. Every failure is UNAUTHENTICATED with the same message,
 * except an unreachable key set, which is DEPENDENCY_UNAVAILABLE (the request is denied).
 */
export function createAccessTokenVerifier({ keys, issuer, audience }: AccessTokenVerifierDeps) {
  return async function verifyAccessToken(token: string): Promise<AccessClaims> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer,
        audience,
        typ: 'at+jwt',
        algorithms: ['ES256'],
        requiredClaims: ['sub', 'exp', 'iat'],
      }));
    } catch (error) {
      if (error instanceof errors.JWKSTimeout || (error instanceof Error && error.name === 'TypeError')) {
        throw new AppError('DEPENDENCY_UNAVAILABLE', 'credential keys are unavailable; request denied', { cause: error });
      }
      throw new AppError('UNAUTHENTICATED', 'invalid or expired credential', { cause: error });
    }
    const { sub, tenantId, role } = payload;
    const mappedRole = typeof role === 'string' ? roles[role] : undefined;
    if (typeof sub !== 'string' || !isUuid(sub) || typeof tenantId !== 'string' || !isUuid(tenantId) || mappedRole === undefined) {
      throw new AppError('UNAUTHENTICATED', 'invalid or expired credential');
    }
    return { userId: sub, tenantId, role: mappedRole };
  };
}

export type AccessTokenVerifier = ReturnType<typeof createAccessTokenVerifier>;
