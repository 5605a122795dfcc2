import { describe, expect, it } from '@jest/globals';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { AppError } from '@portcullis/kit';
import { defaultRateLimits, limitsOfPlan, rateLimitsConfigSchema } from './rate-limit-config.js';
import { createRateLimiter, rateLimitHeaders, rateLimitStateOf, type Bucket, type WindowLimiterFactory } from './rate-limiter.js';

const memory: WindowLimiterFactory = (window, keyPrefix) =>
  new RateLimiterMemory({ points: window.points, duration: window.windowSeconds, keyPrefix });

const bucket = (name: string, key: string, points: number, windowSeconds = 60): Bucket => ({
  name,
  key,
  window: { points, windowSeconds },
});

describe('rate limiter', () => {
  it('answers the most constrained bucket and refuses the request beyond a limit with its reset time', async () => {
    const consume = createRateLimiter({ limiters: memory, keyPrefix: 't:' });
    const buckets = [bucket('tenant', 'A', 5), bucket('user', 'alice', 2, 30)];
    await expect(consume(buckets)).resolves.toEqual({ limit: 2, remaining: 1, resetSeconds: 30, windowSeconds: 30 });
    await expect(consume(buckets)).resolves.toMatchObject({ limit: 2, remaining: 0 });
    const refused = await consume(buckets).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(AppError);
    expect(refused).toMatchObject({ code: 'RATE_LIMITED' });
    expect(rateLimitStateOf(refused as AppError)).toEqual({ limit: 2, remaining: 0, resetSeconds: 30, windowSeconds: 30 });
  });

  it('gives a spent point back on refund', async () => {
    const consume = createRateLimiter({ limiters: memory, keyPrefix: 't:' });
    const failures = bucket('failedAuth', '203.0.113.7', 2);
    await consume([failures]);
    await consume.refund(failures);
    await consume([failures]);
    await expect(consume([failures])).resolves.toMatchObject({ remaining: 0 });
    const refused = await consume([failures]).catch((error: unknown) => error);
    expect(rateLimitStateOf(refused as AppError)).toMatchObject({ limit: 2, remaining: 0, windowSeconds: 60 });
  });

  it('counts each key of a bucket apart', async () => {
    const consume = createRateLimiter({ limiters: memory, keyPrefix: 't:' });
    await consume([bucket('user', 'alice', 1)]);
    await expect(consume([bucket('user', 'bob', 1)])).resolves.toMatchObject({ remaining: 0 });
    await expect(consume([bucket('user', 'alice', 1)])).rejects.toMatchObject({ code: 'RATE_LIMITED' });
  });

  it('denies with DEPENDENCY_UNAVAILABLE when the store fails, never an allow', async () => {
    const down = () => Promise.reject(new Error('redis down'));
    const failing: WindowLimiterFactory = () => ({ consume: down, reward: down });
    const consume = createRateLimiter({ limiters: failing, keyPrefix: 't:' });
    await expect(consume([bucket('tenant', 'A', 100)])).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    await expect(consume.refund(bucket('tenant', 'A', 100))).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
  });

  it('stores keys hashed, never the client address or id itself', async () => {
    const seen: string[] = [];
    const recording: WindowLimiterFactory = (window, keyPrefix) => {
      const inner = memory(window, keyPrefix);
      return {
        consume: (key: string | number, points?: number) => {
          seen.push(`${keyPrefix}|${String(key)}`);
          return inner.consume(key, points);
        },
        reward: (key: string | number, points?: number) => inner.reward(key, points),
      };
    };
    await createRateLimiter({ limiters: recording, keyPrefix: 't:' })([bucket('sign-in', '203.0.113.7', 5)]);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(/^t:rl:sign-in:5:60\|[A-Za-z0-9_-]{22}$/);
    expect(seen[0]).not.toContain('203.0.113.7');
  });

  it('writes RateLimit-* headers, and Retry-After only when limited', () => {
    const state = { limit: 10, remaining: 3, resetSeconds: 12, windowSeconds: 60 };
    expect(rateLimitHeaders(state, false)).toEqual({
      'RateLimit-Limit': '10',
      'RateLimit-Remaining': '3',
      'RateLimit-Reset': '12',
      'RateLimit-Policy': '10;w=60',
    });
    expect(rateLimitHeaders(state, true)['Retry-After']).toBe('12');
  });
});

describe('rate limit configuration', () => {
  it('uses the defaults when unset and replaces only the keys given (sensitive entries one by one)', () => {
    expect(rateLimitsConfigSchema.parse(undefined)).toEqual(defaultRateLimits);
    const parsed = rateLimitsConfigSchema.parse(JSON.stringify({ sensitive: { signIn: { points: 3, windowSeconds: 60 } } }));
    expect(parsed.sensitive).toEqual({ ...defaultRateLimits.sensitive, signIn: { points: 3, windowSeconds: 60 } });
    expect(parsed.plans).toEqual(defaultRateLimits.plans);
  });

  it('refuses malformed limits and a default plan without limits', () => {
    expect(rateLimitsConfigSchema.safeParse('{not json').success).toBe(false);
    expect(rateLimitsConfigSchema.safeParse(JSON.stringify({ defaultPlan: 'gold' })).success).toBe(false);
    expect(rateLimitsConfigSchema.safeParse(JSON.stringify({ sensitive: { signIn: { points: 0, windowSeconds: 60 } } })).success).toBe(
      false,
    );
    expect(rateLimitsConfigSchema.safeParse(JSON.stringify({ plans: { free: { tenant: { points: 1 } } } })).success).toBe(false);
  });

  it("gives a plan its own limits, and an unknown plan the default plan's", () => {
    expect(limitsOfPlan(defaultRateLimits, 'pro')).toBe(defaultRateLimits.plans['pro']);
    expect(limitsOfPlan(defaultRateLimits, 'platinum')).toBe(defaultRateLimits.plans['free']);
    expect(limitsOfPlan(defaultRateLimits, '__proto__')).toBe(defaultRateLimits.plans['free']);
  });
});
