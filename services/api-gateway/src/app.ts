import cors from 'cors';
import express, { type Express, type RequestHandler, type Response } from 'express';
import helmet from 'helmet';
import type { Logger } from '@portcullis/kit';
import { parseCookieHeader } from './http/cookies.js';
import { rejectUnsafeJson } from './http/json-depth.js';
import { streamLines } from './http/stream-lines.js';
import { countHttpRequests, type HttpDurationHistogram, type HttpRequestCounter } from './http/metrics.js';
import type { RequestErrorAuditor } from './http/audit-request-error.js';
import { errorHandler, notFound, requestContext, requestIdOf, requestInfoOf } from './http/middleware.js';
import type { ProtectedRoute, PublicRoute, Route, RouteInput, RouteResult } from './http/route.js';
import { addressBucketKey } from './libraries/client-address.js';
import type { RateLimits, SensitiveRouteClass } from './libraries/rate-limit-config.js';
import { rateLimitHeaders, type RateLimiter } from './libraries/rate-limiter.js';
import type { Pipeline, RequestInfo } from './pipeline/index.js';

export interface AppDeps {
  logger: Logger;
  pipeline: Pipeline;
  publicRoutes: readonly PublicRoute[];
  protectedRoutes: readonly ProtectedRoute[];
  bodyLimitBytes: number;
  /** Deepest nesting of arrays and objects a JSON body may have. */
  maxJsonDepth: number;
  /** Browser origins allowed to call the API (CORS); empty: none. */
  corsOrigins: readonly string[];
  /** The name of the cookie that carries a cookie session's access token. */
  sessionCookieName: string;
  /** The counters public routes spend from (per client address). */
  consumeRateLimit: RateLimiter;
  rateLimits: RateLimits;
  /** Every answered request counted and timed by route pattern (`createGatewayMetrics`); not measured when absent. */
  httpMetrics?: { requests: HttpRequestCounter; duration: HttpDurationHistogram };
  /** Records an allowed request that failed with an internal or dependency error (`request.error`); not recorded when absent. */
  auditRequestError?: RequestErrorAuditor;
}

/** Headers browsers may send cross-origin, and read back. */
const corsRequestHeaders = ['Authorization', 'Content-Type', 'X-API-Key', 'X-Assistant-Id', 'X-CSRF-Token', 'X-Request-Id', 'traceparent'];
const corsExposedHeaders = ['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'RateLimit-Policy', 'Retry-After', 'X-Request-Id'];

/**
 * helmet's security headers, worked out once: helmet's answer does not depend on the request,
 * so its fifteen middlewares run at start-up against a recorder and every response gets the
 * recorded headers in one step.
 */
export function securityHeaders(): RequestHandler {
  const headers = new Map<string, string>();
  const recorder = {
    setHeader: (name: string, value: string) => headers.set(name, value),
    removeHeader: (name: string) => headers.delete(name),
  };
  type HelmetArgs = Parameters<ReturnType<typeof helmet>>;
  helmet({
    // An API: nothing of it is a page to render, frame or load scripts into.
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    crossOriginResourcePolicy: { policy: 'same-site' },
    referrerPolicy: { policy: 'no-referrer' },
  })(Object.create(null) as HelmetArgs[0], recorder as unknown as HelmetArgs[1], (error?: unknown) => {
    if (error !== undefined) throw new Error('helmet failed', { cause: error });
  });
  if (headers.size === 0) throw new Error('helmet set no headers');
  return (_req, res, next) => {
    res.setHeaders(headers);
    next();
  };
}

/** The gateway's Express app: security headers, CORS, request context, the routes, and the error envelope. */
export function createApp({
  logger,
  pipeline,
  publicRoutes,
  protectedRoutes,
  bodyLimitBytes,
  maxJsonDepth,
  corsOrigins,
  sessionCookieName,
  consumeRateLimit,
  rateLimits,
  httpMetrics,
  auditRequestError,
}: AppDeps): Express {
  async function limitPublic(route: PublicRoute, request: RequestInfo, res: Response): Promise<void> {
    if (route.rateLimit === 'none') return;
    const limitClass: SensitiveRouteClass = route.rateLimit;
    const state = await consumeRateLimit([
      { name: limitClass, key: addressBucketKey(request.clientIp), window: rateLimits.sensitive[limitClass] },
    ]);
    res.set(rateLimitHeaders(state, false));
  }

  async function dispatch(route: Route, request: RequestInfo, input: RouteInput, res: Response): Promise<RouteResult> {
    if (route.kind === 'public') {
      await limitPublic(route, request, res);
      // A public route acting inside a tenant (device activation) has no caller to authenticate
      // first: a refused assistant id is answered as the registry refused it.
      const resolveContext = async () => {
        const resolved = await pipeline.resolveContext(request);
        if (resolved.assistantRefusal) throw resolved.assistantRefusal;
        return resolved;
      };
      return route.handle({ request, resolveContext }, input);
    }
    const authorized = await pipeline.run(request, route.capability, {
      sensitive: route.sensitive,
      humansOnly: route.humansOnly,
      needsAssistant: route.needsAssistant,
    });
    res.set(rateLimitHeaders(authorized.rateLimit, false));
    try {
      return await route.handle(authorized, input);
    } catch (error) {
      await auditRequestError?.(authorized, route, error);
      throw error;
    }
  }

  const app = express();
  app.disable('x-powered-by');
  // Answers are never cached (no-store), so no ETag is worked out for them.
  app.set('etag', false);
  app.set('trust proxy', false);
  if (httpMetrics) app.use(countHttpRequests(httpMetrics));
  app.use(securityHeaders());
  app.use(requestContext());
  app.use(
    cors({
      origin: corsOrigins.length === 0 ? false : [...corsOrigins],
      credentials: true,
      methods: ['GET', 'POST', 'DELETE'],
      allowedHeaders: corsRequestHeaders,
      exposedHeaders: corsExposedHeaders,
      maxAge: 600,
    }),
  );
  app.use(
    express.json({
      limit: bodyLimitBytes,
      strict: true,
      verify: (_req, _res, body, encoding) => rejectUnsafeJson(body, encoding, maxJsonDepth),
    }),
  );
  for (const route of [...publicRoutes, ...protectedRoutes]) {
    app[route.method](route.path, async (req, res) => {
      const queryStart = req.originalUrl.indexOf('?');
      const input: RouteInput = {
        body: req.body as unknown,
        params: req.params as Record<string, string>,
        query: req.query,
        rawQuery: queryStart === -1 ? '' : req.originalUrl.slice(queryStart + 1),
        cookies: parseCookieHeader(req.header('cookie')),
        setCookie: (cookie) => res.append('Set-Cookie', cookie),
      };
      const result = await dispatch(route, requestInfoOf(req, input.cookies?.[sessionCookieName]), input, res);
      if (result.lines !== undefined) {
        await streamLines(res, {
          lines: result.lines,
          contentType: result.contentType ?? 'text/plain',
          requestId: requestIdOf(req),
          logger,
        });
      } else if (result.redirectTo !== undefined) res.redirect(302, result.redirectTo);
      else if (result.status === 204) res.status(204).end();
      else res.status(result.status ?? 200).json(result.body);
    });
  }
  app.use(notFound);
  app.use(errorHandler(logger));
  return app;
}
