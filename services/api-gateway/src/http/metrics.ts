import type { Request, RequestHandler } from 'express';
import { AppError, Counter, Histogram, latencyBuckets, metricNames, type GrpcClient, type Registry } from '@portcullis/kit';
import type { PolicyService } from '@portcullis/proto/policy';
import type { Bucket, RateLimiter } from '../libraries/rate-limiter.js';

/** Where an authorization decision came from: the policy service, the gateway's decision cache, or the route's own conditions. */
export type DecisionSource = 'policy' | 'cache' | 'route';

export type HttpRequestCounter = Pick<Counter<'method' | 'route' | 'status'>, 'inc'>;
export type HttpDurationHistogram = Pick<Histogram<'method' | 'route'>, 'observe'>;
export type RateLimitHitCounter = Pick<Counter<'bucket'>, 'inc'>;
export type DecisionCounter = Pick<Counter<'outcome' | 'source'>, 'inc'>;

/**
 * The gateway's own instruments, registered on the process registry (main.ts). Every label
 * value is bounded: route patterns, methods, status codes, bucket names, outcomes and sources.
 */
export function createGatewayMetrics(registry: Registry) {
  return {
    httpRequests: new Counter({
      name: metricNames.httpRequests,
      help: 'HTTP requests answered, by method, route pattern (unmatched when none) and status',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: metricNames.httpRequestDuration,
      help: 'Time from receiving a request to the end of its answer, by method and route pattern',
      labelNames: ['method', 'route'] as const,
      buckets: latencyBuckets,
      registers: [registry],
    }),
    rateLimitHits: new Counter({
      name: metricNames.rateLimitHits,
      help: 'Requests refused by a rate limit (429), by the bucket that was exhausted',
      labelNames: ['bucket'] as const,
      registers: [registry],
    }),
    authzDecisions: new Counter({
      name: metricNames.authzDecisions,
      help: "Authorization decisions of the gateway's authorize step, by outcome and where the decision came from",
      labelNames: ['outcome', 'source'] as const,
      registers: [registry],
    }),
  };
}

/** The route pattern Express matched (`/api/members/:userId/permissions`), never the path itself. */
function routeOf(req: Request): string {
  const path = (req.route as { path?: unknown } | undefined)?.path;
  return typeof path === 'string' ? path : 'unmatched';
}

/**
 * Counts and times every request once its answer is sent, labelled by the registered route
 * pattern ('unmatched' for 404s, CORS preflights and bodies refused before routing). A request
 * whose client went away before the answer was sent is not counted.
 */
export function countHttpRequests({
  requests,
  duration,
}: {
  requests: HttpRequestCounter;
  duration: HttpDurationHistogram;
}): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const route = routeOf(req);
      requests.inc({ method: req.method, route, status: String(res.statusCode) });
      duration.observe({ method: req.method, route }, Number(process.hrtime.bigint() - started) / 1e9);
    });
    next();
  };
}

/**
 * The bucket a RATE_LIMITED refusal names (the limiter says which one refused). A sensitive
 * route's per-person and per-address buckets both count as their class (`signIn`).
 */
export function refusedBucketOf(error: AppError): string {
  const bucket = error.details?.['bucket'];
  // A sensitive class counts per person and per address; the class is the label.
  return typeof bucket === 'string' && bucket !== '' ? bucket.replace(/:(principal|address)$/, '') : 'unknown';
}

/**
 * The rate limiter, counting every refusal (`portcullis_rate_limit_hits_total{bucket}`): the
 * pipeline's plan and sensitive buckets, the public routes' per-address buckets and the
 * failed-credential budget all spend through it. A store failure (503) is not a hit.
 */
export function countingRateLimitHits(limiter: RateLimiter, hits: RateLimitHitCounter): RateLimiter {
  const consume = async (buckets: readonly Bucket[]) => {
    try {
      return await limiter(buckets);
    } catch (error) {
      if (error instanceof AppError && error.code === 'RATE_LIMITED') hits.inc({ bucket: refusedBucketOf(error) });
      throw error;
    }
  };
  return Object.assign(consume, { refund: limiter.refund });
}

type CheckCall = GrpcClient<typeof PolicyService>['check'];

/**
 * Wraps the policy client the decision cache asks, remembering the answers that came from the
 * service: `sourceOf(answer)` is then 'policy' for those and 'cache' for one the cache served.
 */
export function trackDecisionSource(policy: { check: CheckCall }) {
  const fresh = new WeakSet<object>();
  const check: CheckCall = async (request, options) => {
    const answer = await policy.check(request, options);
    fresh.add(answer);
    return answer;
  };
  return {
    policy: { check },
    sourceOf: (answer: object): Exclude<DecisionSource, 'route'> => (fresh.has(answer) ? 'policy' : 'cache'),
  };
}
