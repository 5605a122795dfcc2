import { AppError, type z } from '@portcullis/kit';
import type { SensitiveRouteClass } from '../libraries/rate-limit-config.js';
import type { AuthorizedContext, Capability, RequestInfo, ResolvedContext } from '../pipeline/index.js';

export interface RouteInput {
  body: unknown;
  params: Record<string, string>;
  query: Record<string, unknown>;
  /** The query string exactly as received, without the `?`, for routes that pass it on verbatim. */
  rawQuery?: string;
  /** The request's cookies (the first value of each name). */
  cookies?: Readonly<Record<string, string>>;
  /** Adds a Set-Cookie header at once, so it is sent even when the handler then throws. */
  setCookie?: (cookie: string) => void;
}

export interface RouteResult {
  status?: number;
  body: unknown;
  /** Answers 302 with this Location instead of a JSON body. */
  redirectTo?: string;
  /**
   * Streams these lines (each followed by a newline) as the body instead of JSON, with
   * `contentType`. An error after the first line can only end the stream early, so a streamed
   * format must say in its last line that it is complete.
   */
  lines?: AsyncIterable<string>;
  contentType?: string;
}

type Method = 'get' | 'post' | 'delete';

/** A route behind the whole ordered pipeline; its handler only accepts an AuthorizedContext. */
export interface ProtectedRoute {
  kind: 'protected';
  method: Method;
  path: string;
  capability: Capability;
  /** The route acts on one assistant, so the context must name one. */
  needsAssistant?: boolean;
  /** Only a signed-in person (access token) may call it; an API key or a robot token is refused with 403. */
  humansOnly?: boolean;
  /** A stricter limit on top of the plan's (per person and per client address). */
  sensitive?: SensitiveRouteClass;
  summary: string;
  handle(context: AuthorizedContext, input: RouteInput): Promise<RouteResult>;
}

export interface PublicContext {
  request: RequestInfo;
  /** Runs step 1 only, for public routes that still act inside a tenant (device activation). */
  resolveContext(): Promise<ResolvedContext>;
}

/** A route outside the pipeline. Only the short allow-list in routes/public-routes.ts and the OpenAPI route (routes/openapi-route.ts) define these. */
export interface PublicRoute {
  kind: 'public';
  method: Method;
  path: string;
  summary: string;
  /**
   * The strict per-client-address limit the route spends from, or 'none' (public documents:
   * JWKS, OpenAPI). Stated by every public route, so none is left unlimited by omission.
   */
  rateLimit: SensitiveRouteClass | 'none';
  handle(context: PublicContext, input: RouteInput): Promise<RouteResult>;
}

export type Route = ProtectedRoute | PublicRoute;

/** Parses a request part against a schema; failures are INVALID_ARGUMENT naming the field. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value ?? {});
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = issue?.path.join('.') ?? '';
    throw new AppError('INVALID_ARGUMENT', field ? `${field}: ${issue?.message ?? 'invalid'}` : (issue?.message ?? 'invalid request'), {
      details: { field },
    });
  }
  return result.data;
}
