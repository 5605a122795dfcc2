import { createHash } from 'node:crypto';
import type { AccessClaims, AccessTokenVerifier } from './access-tokens.js';

export interface VerifiedTokenCacheOptions {
  verify: AccessTokenVerifier;
  /** At most this long, even for a token that lives longer (bounds a signing key's withdrawal). */
  maxAgeMs: number;
  maxEntries: number;
  now?: () => number;
}

/**
 * Access-token verification remembered by the token's SHA-256 until the token expires (or
 * `maxAgeMs`, whichever is first), so a token is checked cryptographically once, not at every
 * request. Only successes are kept; a token never outlives its `exp` here, and the session
 * check (revocation) still runs at every request. Bounded in-process LRU.
 */
export function createVerifiedTokenCache({ verify, maxAgeMs, maxEntries, now = Date.now }: VerifiedTokenCacheOptions): AccessTokenVerifier {
  const entries = new Map<string, { claims: AccessClaims; until: number }>();
  return async function verifyAccessToken(token: string): Promise<AccessClaims> {
    const key = createHash('sha256').update(token).digest('base64url');
    const hit = entries.get(key);
    if (hit) {
      entries.delete(key);
      if (hit.until > now()) {
        entries.set(key, hit); // most recently used
        return hit.claims;
      }
    }
    const claims = await verify(token);
    const until = Math.min(claims.expiresAt, now() + maxAgeMs);
    if (until > now()) {
      entries.set(key, { claims, until });
      while (entries.size > maxEntries) {
        const oldest = entries.keys().next();
        if (oldest.done === true) break;
        entries.delete(oldest.value);
      }
    }
    return claims;
  };
}
