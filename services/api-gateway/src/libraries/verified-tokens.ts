import { createHash } from 'node:crypto';
import type { AccessClaims, AccessTokenVerifier } from './access-tokens.js';
import { setBounded, touch } from './lru.js';

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
    const hit = touch(entries, key);
    if (hit && hit.until > now()) return hit.claims;
    if (hit) entries.delete(key);
    const claims = await verify(token);
    const until = Math.min(claims.expiresAt, now() + maxAgeMs);
    if (until > now()) setBounded(entries, key, { claims, until }, maxEntries);
    return claims;
  };
}
