import { randomUUID } from 'node:crypto';
import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AppError, httpStatusOf, publicMessageOf, toAppError, tracer, type Logger } from '@portcullis/kit';
import { rateLimitHeaders, rateLimitStateOf } from '../libraries/rate-limiter.js';
import type { RequestInfo } from '../pipeline/index.js';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

const requestIds = new WeakMap<Request, string>();

export function requestIdOf(req: Request): string {
  let id = requestIds.get(req);
  if (id === undefined) {
    id = randomUUID();
    requestIds.set(req, id);
  }
  return id;
}

/**
 * Runs every request inside an HTTP SERVER span (continuing an incoming traceparent) and gives
 * it a request id (the caller's if well-formed). Answers are never cached (helmet sets the
 * other security headers, see app.ts).
 */
export function requestContext(): RequestHandler {
  return (req, res, next) => {
    const incoming = req.header('x-request-id');
    const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    requestIds.set(req, requestId);
    res.setHeader('x-request-id', requestId);
    res.setHeader('cache-control', 'no-store');
    const parent = propagation.extract(context.active(), req.headers);
    const span = tracer.startSpan(
      `HTTP ${req.method}`,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'url.path': req.path } },
      parent,
    );
    res.on('finish', () => {
      const route = (req.route as { path?: string } | undefined)?.path;
      if (route) span.updateName(`HTTP ${req.method} ${route}`);
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });
    context.with(trace.setSpan(parent, span), next);
  };
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** What the pipeline reads of a request; `sessionCookie` is the cookie session's access token, if sent. */
export function requestInfoOf(req: Request, sessionCookie?: string): RequestInfo {
  const assistantId = req.header('x-assistant-id');
  return {
    requestId: requestIdOf(req),
    host: (req.hostname || '').toLowerCase(),
    assistantId: assistantId === undefined || assistantId === '' ? undefined : assistantId,
    authorization: req.header('authorization'),
    apiKey: req.header('x-api-key'),
    sessionCookie: sessionCookie === '' ? undefined : sessionCookie,
    csrfToken: req.header('x-csrf-token'),
    changesState: !SAFE_METHODS.has(req.method),
    clientIp: req.socket.remoteAddress ?? '',
    userAgent: (req.header('user-agent') ?? '').slice(0, 200),
  };
}

export const notFound: RequestHandler = () => {
  throw new AppError('NOT_FOUND', 'no such route');
};

/** Errors as `{ error: { code, message, requestId } }`; internal causes only reach the log. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (thrown: unknown, req, res, _next) => {
    const error = bodyParserError(thrown) ?? toAppError(thrown);
    const status = httpStatusOf(error.code);
    if (status >= 500) {
      trace.getActiveSpan()?.recordException(thrown instanceof Error ? thrown : String(thrown));
      logger.error({ err: thrown, code: error.code, requestId: requestIdOf(req), path: req.path }, 'request failed');
    }
    const limited = rateLimitStateOf(error);
    if (limited) res.set(rateLimitHeaders(limited, true));
    res.status(status).json({ error: { code: error.code, message: publicMessageOf(error), requestId: requestIdOf(req) } });
  };
}

function bodyParserError(thrown: unknown): AppError | undefined {
  const type = (thrown as { type?: unknown } | null)?.type;
  if (type === 'entity.too.large') return new AppError('PAYLOAD_TOO_LARGE', 'request body is too large');
  if (type === 'entity.parse.failed') return new AppError('INVALID_ARGUMENT', 'request body is not valid JSON');
  if (type === 'encoding.unsupported' || type === 'charset.unsupported')
    return new AppError('INVALID_ARGUMENT', 'unsupported body encoding');
  return undefined;
}
