import { errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { AppError, isRoleName, isUuid, roleOf } from '@portcullis/kit';
import type { Role } from '@portcullis/proto/common';

export interface AccessClaims {
  userId: string;
  tenantId: string;
  role: Role;
  /** The session the token belongs to; it stops working when the session ends. */
  sessionId: string;
  /** When the token expires (epoch milliseconds). */
  expiresAt: number;
}

const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The key set could not be fetched (network error, timeout, non-200 or unparsable answer):
 * jose reports those as TypeError, JWKSTimeout or its generic JOSEError, while every problem
 * with the token itself is a more specific JOSEError subclass.
 */
function keySetUnavailable(error: unknown): boolean {
  return (
    error instanceof TypeError ||
    error instanceof errors.JWKSTimeout ||
    (error instanceof errors.JOSEError && error.constructor === errors.JOSEError)
  );
}

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
      if (keySetUnavailable(error)) {
        throw new AppError('DEPENDENCY_UNAVAILABLE', 'credential keys are unavailable; request denied', { cause: error });
      }
      throw new AppError('UNAUTHENTICATED', 'invalid or expired credential', { cause: error });
    }
    const { sub, tenantId, role, sid, exp } = payload;
    if (
      typeof sub !== 'string' ||
      !isUuid(sub) ||
      typeof tenantId !== 'string' ||
      !isUuid(tenantId) ||
      !isRoleName(role) ||
      typeof sid !== 'string' ||
      !SESSION_ID.test(sid) ||
      typeof exp !== 'number'
    ) {
      throw new AppError('UNAUTHENTICATED', 'invalid or expired credential');
    }
    return { userId: sub, tenantId, role: roleOf(role), sessionId: sid, expiresAt: exp * 1000 };
  };
}

export type AccessTokenVerifier = ReturnType<typeof createAccessTokenVerifier>;
