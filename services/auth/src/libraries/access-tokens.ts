import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { RoleName } from '@portcullis/kit';
import { SIGNING_ALG, type SigningKeys } from './signing-keys.js';

/** RFC 9068 media type, so an access token cannot be mistaken for another kind of JWT. */
export const ACCESS_TOKEN_TYPE = 'at+jwt';

export interface AccessTokensDeps {
  keys: Pick<SigningKeys, 'currentSigner'>;
  issuer: string;
  audience: string;
  ttlSeconds: number;
  now?: () => number;
}

export interface AccessTokenSubject {
  userId: string;
  tenantId: string;
  role: RoleName;
  /** The session the token belongs to; published as the `sid` claim. */
  sessionId: string;
}

/** Issues short-lived ES256 access tokens bound to one tenant. */
export function createAccessTokens({ keys, issuer, audience, ttlSeconds, now = Date.now }: AccessTokensDeps) {
  return {
    async issue({
      userId,
      tenantId,
      role,
      sessionId,
    }: AccessTokenSubject): Promise<{ token: string; jti: string; expiresInSeconds: number }> {
      const { kid, privateKey } = await keys.currentSigner();
      const issuedAt = Math.floor(now() / 1000);
      const jti = randomUUID();
      const token = await new SignJWT({ tenantId, role, sid: sessionId })
        .setProtectedHeader({ alg: SIGNING_ALG, kid, typ: ACCESS_TOKEN_TYPE })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject(userId)
        .setIssuedAt(issuedAt)
        .setExpirationTime(issuedAt + ttlSeconds)
        .setJti(jti)
        .sign(privateKey);
      return { token, jti, expiresInSeconds: ttlSeconds };
    },
  };
}

export type AccessTokens = ReturnType<typeof createAccessTokens>;
