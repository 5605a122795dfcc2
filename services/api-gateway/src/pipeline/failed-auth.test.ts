import { describe, expect, it } from '@jest/globals';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { AppError } from '@portcullis/kit';
import { Role } from '@portcullis/proto/common';
import { defaultRateLimits } from '../libraries/rate-limit-config.js';
import { createRateLimiter } from '../libraries/rate-limiter.js';
import { requestInfo } from '../test-support/pipeline-fakes.js';
import { createPipeline } from './index.js';

const tenantA = '00000000-0000-4000-8000-00000000000a';
const alice = '00000000-0000-4000-8000-0000000000f1';
const capability = { object: 'tools', action: 'invoke' };
const keyOf = (name: string) => `pck_${name.padEnd(16, '0')}_${'s'.repeat(43)}`;
const goodKey = keyOf('good');
const robotToken = (name: string) =>
  `${Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'robot+jwt' })).toString('base64url')}.${Buffer.from(name).toString('base64url')}.c2ln`;

/** A pipeline whose auth service knows one API key; at most 3 refused keys or robots per address a minute. */
function setup() {
  const authCalls: string[] = [];
  const state = { authDown: false };
  const pipeline = createPipeline({
    platformHosts: ['localhost'],
    tenants: {
      resolveContext: () =>
        Promise.resolve({ context: { tenantId: tenantA, tenantName: 'A', tenantPlan: 'free', assistantId: '' } } as never),
    },
    verifyAccessToken: (token) =>
      token === 'a.b.c'
        ? Promise.resolve({ userId: alice, tenantId: tenantA, role: Role.OWNER, sessionId: 's1', expiresAt: Date.now() + 60_000 })
        : Promise.reject(new AppError('UNAUTHENTICATED', 'invalid or expired credential')),
    verifyApiKey: (key) => {
      authCalls.push(key);
      if (state.authDown) return Promise.reject(new AppError('DEPENDENCY_UNAVAILABLE', 'auth down'));
      if (key !== goodKey) return Promise.reject(new AppError('UNAUTHENTICATED', 'invalid, expired or revoked API key'));
      return Promise.resolve({ keyId: 'good', tenantId: tenantA, kind: 'tenant', userId: '', createdBy: alice, scopes: ['tools:invoke'] });
    },
    verifyRobotToken: (token) => {
      authCalls.push(token);
      return Promise.reject(new AppError('UNAUTHENTICATED', 'invalid, expired or revoked robot token'));
    },
    isSessionActive: () => Promise.resolve(true),
    isValidCsrfToken: () => false,
    consumeRateLimit: createRateLimiter({
      limiters: (window, keyPrefix) => new RateLimiterMemory({ points: window.points, duration: window.windowSeconds, keyPrefix }),
      keyPrefix: 'failed-auth-test:',
    }),
    rateLimits: { ...defaultRateLimits, sensitive: { ...defaultRateLimits.sensitive, failedAuth: { points: 3, windowSeconds: 60 } } },
    policy: { check: () => Promise.resolve({ allowed: true, reason: 'granted' } as never) },
    auditDecision: () => Promise.resolve(),
  });
  const run = (overrides: Parameters<typeof requestInfo>[0]) =>
    pipeline.run(requestInfo({ host: 'localhost', ...overrides }), capability).then(
      () => 'allowed',
      (error: unknown) => (error as AppError).code,
    );
  return { run, authCalls, state };
}

describe('refused API keys and robot tokens, per client address', () => {
  it('refuses an address past the limit before the auth service is asked, its valid keys included, until the window passes', async () => {
    const { run, authCalls } = setup();
    const fromA = { clientIp: '198.51.100.1' };
    expect(await run({ ...fromA, apiKey: keyOf('guess1') })).toBe('UNAUTHENTICATED');
    expect(await run({ ...fromA, authorization: `Bearer ${robotToken('guess2')}` })).toBe('UNAUTHENTICATED');
    expect(await run({ ...fromA, apiKey: keyOf('guess3') })).toBe('UNAUTHENTICATED');
    expect(authCalls).toHaveLength(3);
    expect(await run({ ...fromA, apiKey: keyOf('guess4') })).toBe('RATE_LIMITED');
    expect(await run({ ...fromA, apiKey: goodKey })).toBe('RATE_LIMITED');
    expect(authCalls).toHaveLength(3);
    // Another address, and access tokens (verified without the auth service), are not affected.
    expect(await run({ clientIp: '198.51.100.2', apiKey: goodKey })).toBe('allowed');
    expect(await run({ ...fromA, authorization: 'Bearer a.b.c' })).toBe('allowed');
  });

  it('lets no more guesses reach auth than the limit, however many are in flight at once', async () => {
    const { run, authCalls } = setup();
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) => run({ clientIp: '198.51.100.9', apiKey: keyOf(`race${String(i)}`) })),
    );
    expect(authCalls).toHaveLength(3);
    expect(answers.filter((code) => code === 'UNAUTHENTICATED')).toHaveLength(3);
    expect(answers.filter((code) => code === 'RATE_LIMITED')).toHaveLength(9);
  });

  it('counts IPv6 clients by their /64', async () => {
    const { run, authCalls } = setup();
    for (const suffix of ['1', '2', '3'])
      expect(await run({ clientIp: `2001:db8:0:1::${suffix}`, apiKey: keyOf('v6') })).toBe('UNAUTHENTICATED');
    expect(await run({ clientIp: '2001:db8:0:1::ffff', apiKey: goodKey })).toBe('RATE_LIMITED');
    expect(await run({ clientIp: '2001:db8:0:2::1', apiKey: goodKey })).toBe('allowed');
    expect(authCalls).toHaveLength(4);
  });

  it('does not hold a key auth accepted lately to the budget, so a busy client is never crowded out', async () => {
    const { run, authCalls } = setup();
    const fromA = { clientIp: '198.51.100.4' };
    expect(await run({ ...fromA, apiKey: goodKey })).toBe('allowed');
    const answers = await Promise.all(Array.from({ length: 12 }, () => run({ ...fromA, apiKey: goodKey })));
    expect(answers.every((answer) => answer === 'allowed')).toBe(true);
    expect(authCalls).toHaveLength(13);
  });

  it('counts only refusals: accepted keys and an unavailable auth service spend nothing', async () => {
    const { run, state } = setup();
    const fromA = { clientIp: '198.51.100.3' };
    for (let i = 0; i < 5; i += 1) expect(await run({ ...fromA, apiKey: goodKey })).toBe('allowed');
    state.authDown = true;
    for (let i = 0; i < 5; i += 1) expect(await run({ ...fromA, apiKey: keyOf('any') })).toBe('DEPENDENCY_UNAVAILABLE');
    state.authDown = false;
    expect(await run({ ...fromA, apiKey: goodKey })).toBe('allowed');
  });
});
