import { appErrorCodes } from '@portcullis/kit';
import type { ProtectedRoute, PublicRoute, Route } from './route.js';

// The OpenAPI 3.1 document of the gateway, generated from the same route list main.ts registers
// (src/routes/index.ts), so it cannot describe a route the gateway does not serve or miss one it
// does; http/openapi.test.ts checks it against the routes the Express app actually holds.

type HttpMethod = Route['method'];

/** The subset of JSON Schema 2020-12 (OpenAPI 3.1's dialect) this document uses. */
export interface SchemaObject {
  type?: 'object' | 'string' | 'integer';
  description?: string;
  properties?: Record<string, SchemaObject>;
  required?: readonly string[];
  additionalProperties?: boolean;
  enum?: readonly string[];
}

export interface Reference {
  $ref: string;
}

export interface ParameterObject {
  name: string;
  in: 'path' | 'header';
  required: boolean;
  description?: string;
  schema: SchemaObject;
}

export interface HeaderObject {
  description: string;
  schema: SchemaObject;
}

export interface ResponseObject {
  description: string;
  headers?: Record<string, HeaderObject | Reference>;
  content?: Record<string, { schema: SchemaObject | Reference }>;
}

export type SecurityRequirement = Record<string, readonly string[]>;

export type SecuritySchemeObject =
  | { type: 'http'; scheme: 'bearer'; bearerFormat: string; description: string }
  | { type: 'apiKey'; in: 'header' | 'cookie'; name: string; description: string };

export interface OperationObject {
  operationId: string;
  summary: string;
  parameters?: (ParameterObject | Reference)[];
  /** `[]` on public routes: no credential needed. */
  security: SecurityRequirement[];
  responses: Record<string, ResponseObject | Reference>;
  /** The policy capability (`object:action`) the pipeline checks; protected routes only. */
  'x-portcullis-capability'?: string;
  'x-portcullis-humans-only'?: boolean;
  'x-portcullis-needs-assistant'?: boolean;
  /** A public route's per-address class (or `none`), a protected route's sensitive class, or `plan`. */
  'x-portcullis-rate-limit': string;
}

export type PathItemObject = Partial<Record<HttpMethod, OperationObject>>;

export interface OpenApiDocument {
  openapi: '3.1.0';
  info: { title: string; version: string; description: string };
  paths: Record<string, PathItemObject>;
  components: {
    schemas: Record<string, SchemaObject>;
    parameters: Record<string, ParameterObject>;
    headers: Record<string, HeaderObject>;
    responses: Record<string, ResponseObject>;
    securitySchemes: Record<string, SecuritySchemeObject>;
  };
}

export interface OpenApiOptions {
  publicRoutes: readonly PublicRoute[];
  protectedRoutes: readonly ProtectedRoute[];
  /** The API's version (`info.version`). */
  version: string;
  /** The cookie that carries a cookie session's access token (the `cookieSession` scheme). */
  sessionCookieName: string;
}

const PARAM = /^:([A-Za-z_][A-Za-z0-9_]*)$/u;

/** The names of a path's parameters; refuses path syntax the document cannot express. */
export function pathParametersOf(path: string): string[] {
  const names: string[] = [];
  for (const segment of path.split('/')) {
    if (segment.startsWith(':')) {
      const name = PARAM.exec(segment)?.[1];
      if (name === undefined) throw new Error(`openapi: unsupported parameter segment "${segment}" in ${path}`);
      names.push(name);
    } else if (/[:*?(){}]/u.test(segment)) {
      throw new Error(`openapi: unsupported path syntax in ${path}`);
    }
  }
  return names;
}

/** An Express path as an OpenAPI path template: `/a/:id` → `/a/{id}`. */
export function openApiPathOf(path: string): string {
  pathParametersOf(path);
  return path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/gu, '{$1}');
}

const pascal = (word: string) => word.charAt(0).toUpperCase() + word.slice(1);

/** A stable operation id from method and path: `DELETE /api/teams/:teamId` → `deleteApiTeamsByTeamId`. */
export function operationIdOf(method: HttpMethod, path: string): string {
  const words = path.split('/').flatMap((segment) => {
    const param = PARAM.exec(segment)?.[1];
    if (param !== undefined) return ['By', pascal(param)];
    return segment
      .split(/[^A-Za-z0-9]+/u)
      .filter(Boolean)
      .map(pascal);
  });
  return method + words.join('');
}

const ref = (section: keyof OpenApiDocument['components'], name: string): Reference => ({ $ref: `#/components/${section}/${name}` });

const errorContent = { 'application/json': { schema: ref('schemas', 'Error') } };

const rateLimitHeaderRefs = {
  'RateLimit-Limit': ref('headers', 'RateLimit-Limit'),
  'RateLimit-Remaining': ref('headers', 'RateLimit-Remaining'),
  'RateLimit-Reset': ref('headers', 'RateLimit-Reset'),
  'RateLimit-Policy': ref('headers', 'RateLimit-Policy'),
};

/** The error answers any request can meet, by status, shared through `components.responses`. */
const errorResponses: Record<string, ResponseObject> = {
  BadRequest: { description: 'Invalid request (`INVALID_ARGUMENT`, `FAILED_PRECONDITION`)', content: errorContent },
  Unauthenticated: { description: 'No valid credential (`UNAUTHENTICATED`)', content: errorContent },
  Forbidden: {
    description: 'Refused (`PERMISSION_DENIED`, `CROSS_TENANT`, `TENANT_SUSPENDED`)',
    content: errorContent,
  },
  NotFound: { description: 'No such resource, or one the caller may not know of (`NOT_FOUND`)', content: errorContent },
  PayloadTooLarge: { description: 'The body exceeds the limit (`PAYLOAD_TOO_LARGE`)', content: errorContent },
  RateLimited: {
    description: 'A rate limit is reached (`RATE_LIMITED`)',
    headers: { 'Retry-After': ref('headers', 'Retry-After'), ...rateLimitHeaderRefs },
    content: errorContent,
  },
  Unavailable: { description: 'A dependency failed or is unreachable (`DEPENDENCY_UNAVAILABLE`)', content: errorContent },
  Error: { description: 'Any other error, in the same envelope', content: errorContent },
};

function responsesOf(route: Route): Record<string, Reference> {
  const limited = route.kind === 'protected' || route.rateLimit !== 'none';
  return {
    '2XX': ref('responses', route.kind === 'protected' ? 'ProtectedSuccess' : 'Success'),
    '400': ref('responses', 'BadRequest'),
    '401': ref('responses', 'Unauthenticated'),
    '403': ref('responses', 'Forbidden'),
    '404': ref('responses', 'NotFound'),
    '413': ref('responses', 'PayloadTooLarge'),
    ...(limited ? { '429': ref('responses', 'RateLimited') } : {}),
    '503': ref('responses', 'Unavailable'),
    default: ref('responses', 'Error'),
  };
}

/** Any of a person's access token, a robot token, an API key, or a cookie session. */
const anyCredential: SecurityRequirement[] = [{ bearerAuth: [] }, { apiKey: [] }, { cookieSession: [] }];
/** `humansOnly`: an API key is refused with 403 (a robot token too, though it shares the bearer scheme). */
const humanCredential: SecurityRequirement[] = [{ bearerAuth: [] }, { cookieSession: [] }];

function operationOf(route: Route): OperationObject {
  const pathParameters = pathParametersOf(route.path).map((name): ParameterObject => ({
    name,
    in: 'path',
    required: true,
    schema: { type: 'string' },
  }));
  const common = { operationId: operationIdOf(route.method, route.path), summary: route.summary };
  if (route.kind === 'public') {
    return {
      ...common,
      ...(pathParameters.length > 0 ? { parameters: pathParameters } : {}),
      security: [],
      responses: responsesOf(route),
      'x-portcullis-rate-limit': route.rateLimit,
    };
  }
  return {
    ...common,
    parameters: [
      ...pathParameters,
      ref('parameters', 'X-Assistant-Id'),
      // Only a change needs the CSRF token; a cookie session's reads do not.
      ...(route.method === 'get' ? [] : [ref('parameters', 'X-CSRF-Token')]),
    ],
    security: route.humansOnly === true ? humanCredential : anyCredential,
    responses: responsesOf(route),
    'x-portcullis-capability': `${route.capability.object}:${route.capability.action}`,
    'x-portcullis-humans-only': route.humansOnly === true,
    'x-portcullis-needs-assistant': route.needsAssistant === true,
    'x-portcullis-rate-limit': route.sensitive ?? 'plan',
  };
}

/** The OpenAPI 3.1 document of exactly these routes; throws on a duplicate route or operation id. */
export function createOpenApiDocument({ publicRoutes, protectedRoutes, version, sessionCookieName }: OpenApiOptions): OpenApiDocument {
  const paths: Record<string, PathItemObject> = {};
  const operationIds = new Set<string>();
  for (const route of [...publicRoutes, ...protectedRoutes]) {
    const item = (paths[openApiPathOf(route.path)] ??= {});
    if (item[route.method]) throw new Error(`openapi: ${route.method.toUpperCase()} ${route.path} is defined twice`);
    const operation = operationOf(route);
    if (operationIds.has(operation.operationId)) throw new Error(`openapi: operation id ${operation.operationId} is not unique`);
    operationIds.add(operation.operationId);
    item[route.method] = operation;
  }

  const rateLimitHeader = (description: string): HeaderObject => ({ description, schema: { type: 'string' } });
  return {
    openapi: '3.1.0',
    info: {
      title: 'Portcullis API gateway',
      version,
      description:
        'Generated from the routes the gateway registers. Protected operations pass the ordered pipeline ' +
        '(resolve context, authenticate, rate limit, authorize the `x-portcullis-capability`).',
    },
    paths,
    components: {
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          additionalProperties: false,
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message', 'requestId'],
              additionalProperties: false,
              properties: {
                code: { type: 'string', enum: appErrorCodes },
                message: { type: 'string', description: 'Safe to show; internal causes are only logged' },
                requestId: { type: 'string', description: 'Also sent as the X-Request-Id header' },
              },
            },
          },
        },
      },
      parameters: {
        'X-Assistant-Id': {
          name: 'X-Assistant-Id',
          in: 'header',
          required: false,
          description: "The assistant (and so the tenant) the request is for, instead of the assistant's domain in Host",
          schema: { type: 'string' },
        },
        'X-CSRF-Token': {
          name: 'X-CSRF-Token',
          in: 'header',
          required: false,
          description: "Required on every state-changing request made with a cookie session: the session's CSRF token",
          schema: { type: 'string' },
        },
      },
      headers: {
        'RateLimit-Limit': rateLimitHeader('Requests allowed in the window of the tightest bucket'),
        'RateLimit-Remaining': rateLimitHeader('Requests left in that window'),
        'RateLimit-Reset': rateLimitHeader('Seconds until that window resets'),
        'RateLimit-Policy': rateLimitHeader('`<limit>;w=<window seconds>`'),
        'Retry-After': rateLimitHeader('Seconds to wait before retrying'),
      },
      responses: {
        Success: {
          description: 'Success: 200 or 201 with a JSON body, 204 without one (or 302 for a redirecting sign-in route)',
          content: { 'application/json': { schema: {} } },
        },
        ProtectedSuccess: {
          description: 'Success: 200 or 201 with a JSON body, or 204 without one',
          headers: rateLimitHeaderRefs,
          content: { 'application/json': { schema: {} } },
        },
        ...errorResponses,
      },
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: "A person's access token (`typ: at+jwt`) or a robot token (`typ: robot+jwt`); send exactly one credential",
        },
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'An API key (`pck_…`)' },
        cookieSession: {
          type: 'apiKey',
          in: 'cookie',
          name: sessionCookieName,
          description: 'A cookie session from select-tenant with `delivery: "cookie"`; changes also need X-CSRF-Token',
        },
      },
    },
  };
}
