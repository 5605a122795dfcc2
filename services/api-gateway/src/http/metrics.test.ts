import type { AddressInfo } from 'node:net';
import { describe, expect, it } from '@jest/globals';
import express from 'express';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { AppError, createMetrics, type Registry } from '@portcullis/kit';
import { PrincipalKind } from '@portcullis/proto/common';
import type { CheckRequest } from '@portcullis/proto/policy';
import { createDecisionCache } from '../libraries/decision-cache.js';
import { createRateLimiter, type Bucket } from '../libraries/rate-limiter.js';
import { createAuthorize } from '../pipeline/authorize.js';
import type { Credential, RateLimitedContext } from '../pipeline/types.js';
import { requestInfo, roomyRateLimit } from '../test-support/pipeline-fakes.js';
import { countHttpRequests, countingRateLimitHits, createGatewayMetrics, refusedBucketOf, trackDecisionSource } from './metrics.js';

/** Each series of one metric, as `labels → value` (labels sorted, the `service` label left out). */
async function seriesOf(registry: Registry, name: string): Promise<Record<string, number>> {
  const metric = (await registry.getMetricsAsJSON()).find((candidate) => candidate.name === name);
  const series: Record<string, number> = {};
  for (const { labels, value } of (metric?.values ?? []) as { labels: Record<string, string | number>; value: number }[]) {
    const key = Object.entries(labels)
      .filter(([label]) => label !== 'service')
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([label, labelValue]) => `${label}=${labelValue}`)
      .join(',');
    series[key] = value;
  }
  return series;
}

function setup() {
  const registry = createMetrics({ service: 'api-gateway' });
  return { registry, metrics: createGatewayMetrics(registry) };
}

describe('countHttpRequests', () => {
  it('counts and times each answer by method, route pattern and status; unmatched paths share one label', async () => {
    const { registry, metrics } = setup();
    const app = express();
    app.use(countHttpRequests({ requests: metrics.httpRequests, duration: metrics.httpDuration }));
    app.get('/api/members/:userId', (_req, res) => {
      res.json({ ok: true });
    });
    app.post('/api/members/:userId', () => {
      throw new AppError('PERMISSION_DENIED', 'no');
    });
    app.use((_error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(403).json({});
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await fetch(`${base}/api/members/00000000-0000-4000-8000-000000000001`);
      await fetch(`${base}/api/members/00000000-0000-4000-8000-000000000002`);
      await fetch(`${base}/api/members/00000000-0000-4000-8000-000000000003`, { method: 'POST' });
      await fetch(`${base}/secret-path-${'x'.repeat(20)}`);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }

    expect(await seriesOf(registry, 'portcullis_http_requests_total')).toEqual({
      'method=GET,route=/api/members/:userId,status=200': 2,
      'method=POST,route=/api/members/:userId,status=403': 1,
      'method=GET,route=unmatched,status=404': 1,
    });
    const durations = await seriesOf(registry, 'portcullis_http_request_duration_seconds');
    expect(durations).toMatchObject({ 'le=+Inf,method=GET,route=/api/members/:userId': 2, 'le=+Inf,method=GET,route=unmatched': 1 });
    // No request path (ids, secrets) ever becomes a label value.
    expect(JSON.stringify(await registry.getMetricsAsJSON())).not.toMatch(/00000000-0000|secret-path/);
  });
});

describe('countingRateLimitHits', () => {
  const window = { points: 1, windowSeconds: 60 };
  const limiterOf = () =>
    createRateLimiter({
      limiters: (w, keyPrefix) => new RateLimiterMemory({ points: w.points, duration: w.windowSeconds, keyPrefix }),
      keyPrefix: 'metrics-test:',
    });

  it('counts each refusal once, by the bucket that was exhausted, and passes answers and errors through', async () => {
    const { registry, metrics } = setup();
    const limit = countingRateLimitHits(limiterOf(), metrics.rateLimitHits);
    const tenant: Bucket = { name: 'tenant', key: 't1', window: { points: 100, windowSeconds: 60 } };
    const user: Bucket = { name: 'user', key: 'u1', window };
    expect(await limit([tenant, user])).toMatchObject({ limit: 1, remaining: 0 });
    await expect(limit([tenant, user])).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    await expect(limit([{ name: 'signIn', key: '127.0.0.1', window }])).resolves.toBeDefined();
    await expect(limit([{ name: 'signIn', key: '127.0.0.1', window }])).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    await expect(limit([{ name: 'signIn', key: '127.0.0.1', window }])).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    expect(await seriesOf(registry, 'portcullis_rate_limit_hits_total')).toEqual({ 'bucket=user': 1, 'bucket=signIn': 2 });
  });

  it('does not count a store failure as a hit', async () => {
    const { registry, metrics } = setup();
    const broken = Object.assign(() => Promise.reject(new AppError('DEPENDENCY_UNAVAILABLE', 'redis is down')), {
      refund: () => Promise.resolve(),
    });
    const limit = countingRateLimitHits(broken, metrics.rateLimitHits);
    await expect(limit([{ name: 'tenant', key: 't1', window }])).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(await seriesOf(registry, 'portcullis_rate_limit_hits_total')).toEqual({});
  });

  it("names the bucket the limiter refused, a sensitive route's per-person and per-address buckets by their class", async () => {
    const { registry, metrics } = setup();
    const tiny = { points: 1, windowSeconds: 60 };
    const limiter = createRateLimiter({
      keyPrefix: 't:',
      limiters: (limitWindow) => new RateLimiterMemory({ points: limitWindow.points, duration: limitWindow.windowSeconds }),
    });
    const limit = countingRateLimitHits(limiter, metrics.rateLimitHits);
    const buckets: Bucket[] = [
      { name: 'tenant', key: 't', window: { points: 50, windowSeconds: 60 } },
      { name: 'user', key: 'u', window: { points: 50, windowSeconds: 60 } },
      { name: 'activationCode:principal', key: 'p', window: tiny },
    ];
    await limit(buckets);
    await expect(limit(buckets)).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    await limit([{ name: 'signIn:address', key: 'a', window: tiny }]);
    await expect(limit([{ name: 'signIn:address', key: 'a', window: tiny }])).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    expect(await seriesOf(registry, 'portcullis_rate_limit_hits_total')).toEqual({
      'bucket=activationCode': 1,
      'bucket=signIn': 1,
    });
    expect(refusedBucketOf(new AppError('RATE_LIMITED', 'too many'))).toBe('unknown');
  });
});

describe('authorization decisions', () => {
  const tenantId = '00000000-0000-4000-8000-00000000000a';
  const alice = '00000000-0000-4000-8000-0000000000f1';
  const contextOf = (credential: Credential) =>
    ({
      request: requestInfo(),
      target: { tenantId, tenantName: 'Alpha', plan: 'free', assistantId: '' },
      principal: { $typeName: 'portcullis.common.v1.Principal', kind: PrincipalKind.USER, id: alice, tenantId, role: 0 },
      credential,
      rateLimit: roomyRateLimit,
    }) as unknown as RateLimitedContext;
  const person: Credential = { kind: 'access_token', sessionId: 's1', via: 'header' };
  const apiKey: Credential = { kind: 'api_key', keyId: 'k1', keyKind: 'user', userId: alice, createdBy: alice, scopes: ['tools:read'] };

  function authorizeWithCache() {
    const { registry, metrics } = setup();
    const asked: CheckRequest[] = [];
    const service = {
      check: (request: Parameters<ReturnType<typeof createDecisionCache>['check']>[0]) => {
        asked.push(request as CheckRequest);
        const allowed = request.action === 'read';
        return Promise.resolve({ $typeName: 'portcullis.policy.v1.CheckResponse' as const, allowed, reason: allowed ? 'granted' : 'no' });
      },
    };
    const source = trackDecisionSource(service);
    const cache = createDecisionCache({ policy: source.policy, ttlMs: 60_000, maxEntries: 10, isPolicyAvailable: () => true });
    const authorize = createAuthorize({
      policy: cache,
      auditDecision: () => Promise.resolve(),
      authzDecisions: metrics.authzDecisions,
      decisionSourceOf: source.sourceOf,
    });
    return { registry, authorize, asked };
  }

  it('counts allow and deny by where the decision came from: the policy service, the cache, or the route', async () => {
    const { registry, authorize, asked } = authorizeWithCache();
    const read = { capability: { object: 'tools', action: 'read' } };
    const invoke = { capability: { object: 'tools', action: 'invoke' } };
    await authorize(contextOf(person), read);
    await authorize(contextOf(person), read);
    await expect(authorize(contextOf(person), invoke)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    // Refused by the route's own conditions and by the key's scopes, without asking the policy.
    await expect(authorize(contextOf(apiKey), { ...read, humansOnly: true })).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(authorize(contextOf(apiKey), invoke)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(asked).toHaveLength(2);
    expect(await seriesOf(registry, 'portcullis_authz_decisions_total')).toEqual({
      'outcome=allow,source=policy': 1,
      'outcome=allow,source=cache': 1,
      'outcome=deny,source=policy': 1,
      'outcome=deny,source=route': 2,
    });
  });

  it('counts no decision when the policy service does not answer', async () => {
    const { registry, metrics } = setup();
    const authorize = createAuthorize({
      policy: { check: () => Promise.reject(new AppError('DEPENDENCY_UNAVAILABLE', 'down')) },
      auditDecision: () => Promise.resolve(),
      authzDecisions: metrics.authzDecisions,
    });
    await expect(authorize(contextOf(person), { capability: { object: 'tools', action: 'read' } })).rejects.toMatchObject({
      code: 'DEPENDENCY_UNAVAILABLE',
    });
    expect(await seriesOf(registry, 'portcullis_authz_decisions_total')).toEqual({});
  });
});
