import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Express } from 'express';
import { AppError, appErrorCodes, createLogger } from '@portcullis/kit';
import { createApp } from '../app.js';
import { defaultRateLimits } from '../libraries/rate-limit-config.js';
import type { Pipeline } from '../pipeline/index.js';
import { createRoutes, type Routes } from '../routes/index.js';
import { apiVersion } from '../routes/openapi-route.js';
import { fakeRouteDeps } from '../test-support/route-fakes.js';
import { passThroughLimits } from '../test-support/pipeline-fakes.js';
import { createOpenApiDocument, openApiPathOf, operationIdOf, type OpenApiDocument, type OperationObject } from './openapi.js';
import type { PublicRoute } from './route.js';

const deps = fakeRouteDeps();
const sessionCookieName = deps.public.cookieSessions.names.access;

/** A pipeline that refuses every request, so no protected handler (or downstream fake) is reached. */
const refuse = () => Promise.reject(new AppError('UNAUTHENTICATED', 'no credential is valid in this test'));
const refusingPipeline: Pipeline = { resolveContext: refuse, run: refuse };

/** The real app over these routes, exactly as main.ts builds it. */
function appOf(routes: Routes): Express {
  return createApp({
    logger: createLogger({ name: 'openapi-test', level: 'silent' }),
    pipeline: refusingPipeline,
    ...routes,
    bodyLimitBytes: 65_536,
    maxJsonDepth: 32,
    corsOrigins: [],
    sessionCookieName,
    consumeRateLimit: passThroughLimits.consumeRateLimit,
    rateLimits: defaultRateLimits,
  });
}

/** `METHOD /openapi/{path}` for every route the Express app actually registered. */
function registeredOperations(app: Express): string[] {
  const operations: string[] = [];
  for (const layer of app.router.stack) {
    const route = layer.route;
    if (!route) continue; // middleware (helmet, cors, json, the 404 and error handlers)
    if (typeof route.path !== 'string' || !('methods' in route) || typeof route.methods !== 'object' || route.methods === null) {
      throw new Error('unexpected Express route layer shape');
    }
    for (const [method, enabled] of Object.entries(route.methods)) {
      if (enabled === true) operations.push(`${method.toUpperCase()} ${openApiPathOf(route.path)}`);
    }
  }
  return operations.sort();
}

/** `METHOD /openapi/{path}` for every operation in the document. */
function documentedOperations(document: OpenApiDocument): string[] {
  return Object.entries(document.paths)
    .flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`))
    .sort();
}

function operations(document: OpenApiDocument): [string, string, OperationObject][] {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, operation]): [string, string, OperationObject] => [method, path, operation]),
  );
}

/** Every `$ref` string anywhere in a JSON value. */
function refsIn(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(refsIn);
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([key, inner]) => (key === '$ref' && typeof inner === 'string' ? [inner] : refsIn(inner)));
}

const routes = createRoutes(deps);
const app = appOf(routes);
const document = createOpenApiDocument({ ...routes, version: apiVersion, sessionCookieName });

describe('the OpenAPI document against the registered routes', () => {
  it('documents exactly the (method, path) pairs the app registers, no more and no fewer', () => {
    const registered = registeredOperations(app);
    expect(registered).toContain('GET /api/openapi.json');
    expect(registered).toHaveLength(routes.publicRoutes.length + routes.protectedRoutes.length);
    expect(documentedOperations(document)).toEqual(registered);
  });

  it('tells a route missing from the document, and a document entry with no route', () => {
    const extra: PublicRoute = {
      kind: 'public',
      method: 'get',
      path: '/api/undocumented/:id',
      rateLimit: 'none',
      summary: 'not in the document',
      handle: () => Promise.resolve({ body: {} }),
    };
    const widened = appOf({ ...routes, publicRoutes: [...routes.publicRoutes, extra] });
    expect(registeredOperations(widened)).not.toEqual(documentedOperations(document));
    const narrowed = appOf({ ...routes, protectedRoutes: routes.protectedRoutes.slice(1) });
    expect(registeredOperations(narrowed)).not.toEqual(documentedOperations(document));
  });

  it("carries each protected route's capability and flags, and each public route's limit", () => {
    for (const route of routes.protectedRoutes) {
      const operation = document.paths[openApiPathOf(route.path)]?.[route.method];
      expect(operation).toMatchObject({
        operationId: operationIdOf(route.method, route.path),
        summary: route.summary,
        'x-portcullis-capability': `${route.capability.object}:${route.capability.action}`,
        'x-portcullis-humans-only': route.humansOnly === true,
        'x-portcullis-needs-assistant': route.needsAssistant === true,
        'x-portcullis-rate-limit': route.sensitive ?? 'plan',
      });
      expect(operation?.security.length).toBeGreaterThan(0);
    }
    for (const route of routes.publicRoutes) {
      const operation = document.paths[openApiPathOf(route.path)]?.[route.method];
      expect(operation).toMatchObject({ summary: route.summary, security: [], 'x-portcullis-rate-limit': route.rateLimit });
      expect(operation).not.toHaveProperty('x-portcullis-capability');
    }
  });

  it('declares every path parameter, has unique operation ids and only references that resolve', () => {
    const ids = operations(document).map(([, , operation]) => operation.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const [, path, operation] of operations(document)) {
      const inTemplate = [...path.matchAll(/\{([^}]+)\}/gu)].map((match) => match[1]);
      const declared = (operation.parameters ?? []).flatMap((parameter) =>
        'in' in parameter && parameter.in === 'path' && parameter.required ? [parameter.name] : [],
      );
      expect(declared).toEqual(inTemplate);
    }
    for (const [, , operation] of operations(document)) {
      for (const requirement of operation.security) {
        for (const scheme of Object.keys(requirement)) expect(document.components.securitySchemes).toHaveProperty([scheme]);
      }
    }
    for (const target of refsIn(document)) {
      const [hash, components, section, name, ...rest] = target.split('/');
      expect([hash, components, rest]).toEqual(['#', 'components', []]);
      expect(document.components).toHaveProperty([section ?? '', name ?? '']);
    }
  });

  it('refuses a path it cannot express rather than documenting it wrongly', () => {
    expect(() => openApiPathOf('/api/files/*rest')).toThrow('unsupported');
    expect(() => openApiPathOf('/api/files{/:name}')).toThrow('unsupported');
    expect(openApiPathOf('/api/teams/:teamId/members/:userId')).toBe('/api/teams/{teamId}/members/{userId}');
    expect(operationIdOf('delete', '/api/teams/:teamId/members/:userId')).toBe('deleteApiTeamsByTeamIdMembersByUserId');
  });
});

describe('GET /api/openapi.json', () => {
  let server: Server;
  let base: string;

  beforeAll(async () => {
    server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('serves the generated OpenAPI 3.1 document as JSON, without a credential', async () => {
    const response = await fetch(`${base}/api/openapi.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/u);
    const served = (await response.json()) as { openapi: unknown };
    expect(served).toEqual(JSON.parse(JSON.stringify(document)));
    expect(String(served.openapi)).toMatch(/^3\.1\./u);
  });

  it('serves one document, built once', async () => {
    const route = routes.publicRoutes.find((r) => r.path === '/api/openapi.json');
    const context = { request: {}, resolveContext: refuse } as unknown as Parameters<PublicRoute['handle']>[0];
    const input = { body: undefined, params: {}, query: {} };
    const first = await route?.handle(context, input);
    const second = await route?.handle(context, input);
    expect(first?.body).toBeDefined();
    expect(first?.body).toBe(second?.body);
  });

  it("answers a protected route's refusal in the documented error envelope", async () => {
    const response = await fetch(`${base}/api/context`);
    expect(response.status).toBe(401);
    expect(document.paths['/api/context']?.get?.responses).toHaveProperty(['401']);
    const body = (await response.json()) as { error: { code: string; message: string; requestId: string } };
    expect(Object.keys(body)).toEqual(['error']);
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'requestId']);
    expect(appErrorCodes).toContain(body.error.code);
  });
});
