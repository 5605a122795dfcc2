import { createHash } from 'node:crypto';
import { AppError, type Logger } from '@portcullis/kit';
import { RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { ClientAddress } from './client-address.js';
import { canonicalEmail } from './credentials.js';

/** A counter of sign-in attempts per key within a fixed window. */
export interface FailureCounter {
  /**
   * Counts one attempt. `allowed` is false when the key already had its maximum (the attempt
   * must not go ahead); `msBeforeReset` is how long until the window ends. Rejects when the
   * store cannot answer.
   */
  take(key: string): Promise<{ allowed: boolean; msBeforeReset: number }>;
  /** Takes back one counted attempt (it turned out not to be a failure). */
  giveBack(key: string): Promise<void>;
  /** Forgets every attempt counted for the key. */
  reset(key: string): Promise<void>;
}

/** A FailureCounter over a rate-limiter-flexible limiter (its points are the maximum). */
export function failureCounterOf(limiter: RateLimiterAbstract): FailureCounter {
  return {
    async take(key) {
      try {
        const result = await limiter.consume(key);
        return { allowed: true, msBeforeReset: result.msBeforeNext };
      } catch (rejection: unknown) {
        // The limiter rejects with a RateLimiterRes when the key is over its points, and with
        // an Error when the store failed.
        if (rejection instanceof RateLimiterRes) return { allowed: false, msBeforeReset: rejection.msBeforeNext };
        throw rejection;
      }
    },
    async giveBack(key) {
      await limiter.reward(key, 1);
    },
    async reset(key) {
      await limiter.delete(key);
    },
  };
}

export interface RedisFailureCountersOptions {
  /** An ioredis client; the limiters fail at once while it is not connected. */
  redis: unknown;
  /** REDIS_KEY_PREFIX. */
  keyPrefix: string;
  windowSeconds: number;
  maxPerAccount: number;
  maxPerIp: number;
}

/**
 * The two Redis-backed counters: `<prefix>login-failures:account:<sha256 of the email>` and
 * `<prefix>login-failures:ip:<address or IPv6 /64>`, each expiring `windowSeconds` after its
 * first count.
 */
export function createRedisFailureCounters({ redis, keyPrefix, windowSeconds, maxPerAccount, maxPerIp }: RedisFailureCountersOptions) {
  const limiter = (scope: string, points: number) =>
    failureCounterOf(
      new RateLimiterRedis({
        storeClient: redis,
        keyPrefix: `${keyPrefix}login-failures:${scope}`,
        points,
        duration: windowSeconds,
        // Fail closed and fast: no in-memory fallback, no queueing while Redis is away.
        rejectIfRedisNotReady: true,
      }),
    );
  return { account: limiter('account', maxPerAccount), ip: limiter('ip', maxPerIp) };
}

export interface LoginThrottleDeps {
  account: FailureCounter;
  ip: FailureCounter;
  logger: Logger;
}

/** Account counters are keyed by a hash, so Redis holds no email addresses. */
export function accountThrottleKey(email: string): string {
  return createHash('sha256').update(email).digest('hex');
}

const rateLimited = (msBeforeReset: number) => {
  const seconds = Math.max(1, Math.ceil(msBeforeReset / 1000));
  return new AppError('RATE_LIMITED', `too many failed sign-ins; try again in ${seconds} seconds`, {
    details: { retryAfterSeconds: seconds },
  });
};

const unavailable = (cause: unknown) => new AppError('DEPENDENCY_UNAVAILABLE', 'sign-in is unavailable right now', { cause });

/** Runs a counter operation; a store failure becomes DEPENDENCY_UNAVAILABLE (fail closed). */
async function guarded<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw error instanceof AppError ? error : unavailable(error);
  }
}

/**
 * Brute-force protection for password sign-in. Each attempt is counted per account (canonical
 * email) and per client address BEFORE the password is checked, so parallel guesses cannot
 * overtake the count; once a key holds its maximum, attempts are refused without any password
 * work. An attempt that ends in UNAUTHENTICATED stays counted (a failed sign-in); a successful
 * one resets the account and gives the address its count back; any other outcome (an outage)
 * gives both back.
 */
export function createLoginThrottle({ account, ip, logger }: LoginThrottleDeps) {
  return {
    async attempt<T>(email: string, client: ClientAddress | undefined, run: () => Promise<T>): Promise<T> {
      const canonical = canonicalEmail(email);
      // An email no account can have protects nothing; the address still counts.
      const accountKey = canonical === undefined ? undefined : accountThrottleKey(canonical);
      const ipKey = client?.throttleKey;

      if (accountKey !== undefined) {
        const taken = await guarded(() => account.take(accountKey));
        if (!taken.allowed) {
          logger.info({ scope: 'account' }, 'sign-in refused: too many failures');
          throw rateLimited(taken.msBeforeReset);
        }
      }
      if (ipKey !== undefined) {
        const taken = await guarded(() => ip.take(ipKey));
        if (!taken.allowed) {
          if (accountKey !== undefined) await guarded(() => account.giveBack(accountKey));
          logger.info({ scope: 'ip' }, 'sign-in refused: too many failures');
          throw rateLimited(taken.msBeforeReset);
        }
      }

      let result: T;
      try {
        result = await run();
      } catch (error) {
        if (!(error instanceof AppError && error.code === 'UNAUTHENTICATED')) {
          await Promise.all([
            accountKey === undefined ? undefined : account.giveBack(accountKey),
            ipKey === undefined ? undefined : ip.giveBack(ipKey),
          ]).catch((giveBackError: unknown) => {
            logger.warn({ err: giveBackError }, 'could not give back sign-in attempts after an error');
          });
        }
        throw error;
      }
      await guarded(() =>
        Promise.all([
          accountKey === undefined ? undefined : account.reset(accountKey),
          ipKey === undefined ? undefined : ip.giveBack(ipKey),
        ]),
      );
      return result;
    },
  };
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;
