import { createHash } from 'node:crypto';
import { RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { AppError } from '@portcullis/kit';
import type { RateWindow } from './rate-limit-config.js';

/** One counter a request spends a point from: its name says what it counts, `key` whose. */
export interface Bucket {
  /** What is counted, e.g. `tenant`, `user`, `sign-in` (part of the Redis key). */
  name: string;
  /** Whose count, e.g. a tenant id or a client address (hashed into the Redis key). */
  key: string;
  window: RateWindow;
}

/** What the most constrained bucket left, for the `RateLimit-*` response headers. */
export interface RateLimitState {
  limit: number;
  remaining: number;
  /** Seconds until that bucket's window resets. */
  resetSeconds: number;
  windowSeconds: number;
}

/** A limiter of one window (rate-limiter-flexible's RateLimiterRedis, or RateLimiterMemory in tests). */
export type WindowLimiterFactory = (window: RateWindow, keyPrefix: string) => Pick<RateLimiterAbstract, 'consume' | 'reward'>;

/** Atomic fixed-window counters in Redis: one Lua script (set NX, INCRBY, PTTL) per bucket. */
export function redisWindowLimiters(storeClient: unknown): WindowLimiterFactory {
  return (window, keyPrefix) =>
    new RateLimiterRedis({
      storeClient,
      points: window.points,
      duration: window.windowSeconds,
      keyPrefix,
      // Fail at once (and deny) when Redis is not connected, instead of waiting.
      rejectIfRedisNotReady: true,
    });
}

const keyHash = (key: string) => createHash('sha256').update(key).digest('base64url').slice(0, 22);

/**
 * Spends one point from each of a request's buckets, all at once (the commands leave in one
 * pipeline when the Redis client auto-pipelines). Any bucket over its limit ⇒ RATE_LIMITED with
 * the state to answer `Retry-After`; a store that fails ⇒ DEPENDENCY_UNAVAILABLE — never an allow.
 * Keys are hashed, so no client address or id is stored in the clear.
 */
export function createRateLimiter({ limiters, keyPrefix }: { limiters: WindowLimiterFactory; keyPrefix: string }) {
  const byWindow = new Map<string, Pick<RateLimiterAbstract, 'consume' | 'reward'>>();
  const limiterOf = ({ name, window }: Bucket) => {
    const id = `${name}:${window.points}:${window.windowSeconds}`;
    let limiter = byWindow.get(id);
    if (!limiter) {
      limiter = limiters(window, `${keyPrefix}rl:${id}`);
      byWindow.set(id, limiter);
    }
    return limiter;
  };

  const unavailable = (cause: unknown) =>
    new AppError('DEPENDENCY_UNAVAILABLE', 'the rate limiter is unavailable; request denied', { cause });

  /** Gives back the point a request spent from `bucket` (it turned out not to count). */
  async function refund(bucket: Bucket): Promise<void> {
    await limiterOf(bucket)
      .reward(keyHash(bucket.key), 1)
      .catch((error: unknown) => {
        throw unavailable(error);
      });
  }

  async function consume(buckets: readonly Bucket[]): Promise<RateLimitState> {
    const results = await Promise.allSettled(buckets.map((bucket) => limiterOf(bucket).consume(keyHash(bucket.key))));
    let tightest: RateLimitState | undefined;
    let exceeded: RateLimitState | undefined;
    let exceededBucket = '';
    for (const [index, result] of results.entries()) {
      const { window, name } = buckets[index] as Bucket;
      const answer: unknown = result.status === 'fulfilled' ? result.value : result.reason;
      if (!(answer instanceof RateLimiterRes)) throw unavailable(answer);
      const state: RateLimitState = {
        limit: window.points,
        remaining: answer.remainingPoints,
        resetSeconds: Math.max(1, Math.ceil(answer.msBeforeNext / 1000)),
        windowSeconds: window.windowSeconds,
      };
      if (result.status === 'rejected' && (!exceeded || state.resetSeconds > exceeded.resetSeconds)) {
        exceeded = state;
        exceededBucket = name;
      }
      if (!tightest || state.remaining < tightest.remaining) tightest = state;
    }
    if (exceeded) {
      throw new AppError('RATE_LIMITED', `too many requests; retry in ${exceeded.resetSeconds} s`, {
        details: { rateLimit: exceeded, bucket: exceededBucket },
      });
    }
    if (!tightest) throw new AppError('INTERNAL', 'no rate-limit bucket for this request');
    return tightest;
  }

  return Object.assign(consume, { refund });
}

export type RateLimiter = ReturnType<typeof createRateLimiter>;

/** The `RateLimit-*` headers of a state (draft-ietf-httpapi-ratelimit-headers), plus `Retry-After` when limited. */
export function rateLimitHeaders(state: RateLimitState, limited: boolean): Record<string, string> {
  return {
    'RateLimit-Limit': String(state.limit),
    'RateLimit-Remaining': String(state.remaining),
    'RateLimit-Reset': String(state.resetSeconds),
    'RateLimit-Policy': `${state.limit};w=${state.windowSeconds}`,
    ...(limited ? { 'Retry-After': String(state.resetSeconds) } : {}),
  };
}

/** The rate-limit state an AppError carries (RATE_LIMITED), if any. */
export function rateLimitStateOf(error: AppError): RateLimitState | undefined {
  const state = error.details?.['rateLimit'] as RateLimitState | undefined;
  return error.code === 'RATE_LIMITED' && state && typeof state.limit === 'number' ? state : undefined;
}
