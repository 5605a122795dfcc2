import { createHash, randomBytes } from 'node:crypto';
import { AppError } from '@portcullis/kit';

/** A refresh token as stored (only its hash) and what it is bound to. */
export interface RefreshTokenRecord {
  familyId: string;
  sessionId: string;
  userId: string;
  tenantId: string;
  /** When this token was issued (at sign-in or by the refresh that made it). */
  createdAt: Date;
  expiresAt: Date;
  usedAt: Date | null;
  revokedAt: Date | null;
}

export interface NewRefreshToken {
  tokenHash: string;
  familyId: string;
  sessionId: string;
  userId: string;
  tenantId: string;
}

export type SpentRefreshToken = Omit<RefreshTokenRecord, 'usedAt' | 'revokedAt' | 'expiresAt' | 'createdAt'>;

/** What refresh tokens need from the database. */
export interface RefreshTokenStore {
  /** Inserts a token valid for `ttlSeconds` from now. */
  insert(token: NewRefreshToken, ttlSeconds: number): Promise<void>;
  findByHash(tokenHash: string): Promise<RefreshTokenRecord | undefined>;
  /**
   * In one transaction: spends the token when it is live (unused, unrevoked, unexpired) with a
   * single conditional update, keeps its row locked while `next` runs, then inserts the
   * successor `next` returns (valid `ttlSeconds`). Resolves undefined when nothing was spent.
   * When `next` throws, nothing changes (the token stays unspent).
   */
  spend<T>(
    tokenHash: string,
    ttlSeconds: number,
    next: (spent: SpentRefreshToken) => Promise<{ successor: NewRefreshToken; result: T }>,
  ): Promise<T | undefined>;
  /** Revokes every not yet revoked token of these families of the user; returns how many. */
  revokeFamilies(userId: string, familyIds: readonly string[]): Promise<number>;
  /**
   * Deletes up to `limit` tokens that expired more than `retainSeconds` ago (spent, revoked or
   * not: an expired token is refused either way); returns how many.
   */
  purgeExpired(retainSeconds: number, limit: number): Promise<number>;
}

/** 32 random bytes in unpadded base64url. */
const REFRESH_TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export const invalidRefreshToken = () => new AppError('UNAUTHENTICATED', 'invalid or expired refresh token');

export function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** A fresh opaque refresh token and its hash (the only form that is stored). */
export function generateRefreshToken(): { token: string; tokenHash: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, tokenHash: hashRefreshToken(token) };
}

/** The hash to look a presented refresh token up by; UNAUTHENTICATED when it cannot be one. */
export function parseRefreshToken(presented: string): string {
  if (!REFRESH_TOKEN_SHAPE.test(presented)) throw invalidRefreshToken();
  return hashRefreshToken(presented);
}

/**
 * Deletes refresh tokens that expired more than `retainSeconds` ago, in batches of
 * `batchSize` (at most `maxBatches` per call, so one run never holds the table for long).
 * Until then a spent token still triggers reuse detection; after its expiry it is refused anyway.
 */
export async function purgeExpiredRefreshTokens(
  store: Pick<RefreshTokenStore, 'purgeExpired'>,
  { retainSeconds, batchSize = 5_000, maxBatches = 100 }: { retainSeconds: number; batchSize?: number; maxBatches?: number },
): Promise<number> {
  let total = 0;
  for (let batch = 0; batch < maxBatches; batch += 1) {
    const purged = await store.purgeExpired(retainSeconds, batchSize);
    total += purged;
    if (purged < batchSize) break;
  }
  return total;
}
