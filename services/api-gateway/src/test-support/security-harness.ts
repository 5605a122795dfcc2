// The whole gateway app for the per-route security suite (src/routes/route-security.test.ts):
// the real app, pipeline, access-token verifier (a locally generated ES256 key), API-key and
// robot-token verifiers, CSRF check and rate limiter (in memory), over fakes of the tenant
// registry, the policy service, the auth service and every route's downstream client. Every call
// a route handler makes downstream is recorded, so a test can tell that the gateway refused a
// request before any handler ran.
import { request as httpRequest, createServer, Agent, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { AppError, createLogger } from '@portcullis/kit';
import { ApiKeyKind } from '@portcullis/proto/auth';
import { createApp } from '../app.js';
import type { ProtectedRoute } from '../http/route.js';
import { createAccessTokenVerifier } from '../libraries/access-tokens.js';
import { createApiKeyVerifier } from '../libraries/api-keys.js';
import { createCookieSessions } from '../libraries/cookie-sessions.js';
import { defaultRateLimits, type RateLimits } from '../libraries/rate-limit-config.js';
import { createRateLimiter } from '../libraries/rate-limiter.js';
import { createRobotTokenVerifier } from '../libraries/robot-tokens.js';
import { createPipeline, type PipelineDeps } from '../pipeline/index.js';
import { createRoutes, type RouteDeps, type Routes } from '../routes/index.js';
import { fakeRouteDeps, testCsrfSecret } from './route-fakes.js';

const uuid = (suffix: string) => `00000000-0000-4000-8000-${suffix.padStart(12, '0')}`;

/** The tenants, assistants and principals the fakes know. */
export const ids = {
  tenantA: uuid('a'),
  tenantB: uuid('b'),
  /** A suspended tenant. */
  tenantS: uuid('5'),
  assistantA: uuid('a1'),
  assistantB: uuid('b1'),
  assistantS: uuid('51'),
  /** Owner of tenant A; the fake policy grants every capability. */
  fullRights: uuid('f1'),
  /** A user of tenant A the fake policy denies everything. */
  noRights: uuid('f2'),
  /** Owner of tenant B (granted everything, in tenant B). */
  ownerB: uuid('f3'),
  /** Owner of the suspended tenant. */
  ownerS: uuid('f4'),
  /** A robot of tenant A made by fullRights (granted). */
  robot: uuid('c1'),
  /** A robot of tenant A made by noRights (denied). */
  robotNoRights: uuid('c2'),
  team: uuid('e1'),
} as const;

export const hosts = {
  alpha: 'alpha.example',
  beta: 'beta.example',
  suspended: 'suspended.example',
  /** A platform host: the tenant then comes from the credential. */
  platform: 'localhost',
} as const;

export const issuer = 'portcullis-auth';
export const audience = 'portcullis';
/** The session every test token belongs to unless it says otherwise; live. */
export const liveSession = 'session-live';
/** A session that has ended (its tokens are still validly signed and unexpired). */
export const endedSession = 'session-ended';

const apiKeyOf = (id: string) => `pck_${id.padEnd(16, '0')}_${'k'.repeat(43)}`;

/** The API keys the fake auth service knows. */
export const apiKeys = {
  /** Tenant key of A made by fullRights, with every scope a route needs. */
  full: apiKeyOf('fullkey'),
  /** Tenant key of A made by fullRights whose scopes grant no route anything. */
  noScopes: apiKeyOf('noscopes'),
  /** Tenant key of A made by noRights, with every scope. */
  noRightsCreator: apiKeyOf('norights'),
  /** Tenant key of B made by B's owner, with every scope. */
  tenantB: apiKeyOf('tenantb'),
  /** Well-formed, but the auth service does not know it. */
  unknown: apiKeyOf('unknown'),
} as const;

export interface AccessTokenClaims {
  sub: string;
  tenantId: string;
  role: string;
  sid: string;
}

export interface TokenOptions {
  claims?: Partial<Record<keyof AccessTokenClaims, string | undefined>> & Record<string, unknown>;
  header?: Record<string, unknown>;
  /** Seconds since the epoch; default: in five minutes. */
  exp?: number;
  iat?: number;
  issuer?: string;
  audience?: string;
  /** Sign with the key nobody published (same `kid` unless `header` changes it). */
  foreignKey?: boolean;
}

/** One authorization decision the pipeline audited. */
export interface AuditedDecision {
  requestId: string;
  tenantId: string;
  principalId: string;
  capability: string;
  allowed: boolean;
  reason: string;
}

export interface HarnessOptions {
  rateLimits?: RateLimits;
  bodyLimitBytes?: number;
  maxJsonDepth?: number;
}

interface TenantEntry {
  tenantId: string;
  tenantName: string;
  assistantId: string;
  suspended: boolean;
}

const tenantA: TenantEntry = { tenantId: ids.tenantA, tenantName: 'Alpha', assistantId: ids.assistantA, suspended: false };
const tenantB: TenantEntry = { tenantId: ids.tenantB, tenantName: 'Beta', assistantId: ids.assistantB, suspended: false };
const tenantS: TenantEntry = { tenantId: ids.tenantS, tenantName: 'Suspended', assistantId: ids.assistantS, suspended: true };

const byHost = new Map<string, TenantEntry>([
  [hosts.alpha, tenantA],
  [hosts.beta, tenantB],
  [hosts.suspended, tenantS],
]);
const byAssistant = new Map<string, TenantEntry>([
  [ids.assistantA, tenantA],
  [ids.assistantB, tenantB],
  [ids.assistantS, tenantS],
]);
const byTenant = new Map<string, TenantEntry>([
  [ids.tenantA, tenantA],
  [ids.tenantB, tenantB],
  [ids.tenantS, tenantS],
]);

/**
 * Wraps every member of every route group so that each call a handler makes downstream is
 * recorded as `<group>.<member>[.<method>]` before the fake answers (or refuses).
 */
function recordingRouteDeps(deps: RouteDeps, calls: string[]): RouteDeps {
  const recording = (value: unknown, label: string): unknown => {
    if (typeof value === 'function') {
      const call = value as (...args: unknown[]) => unknown;
      return (...args: unknown[]) => {
        calls.push(label);
        return call(...args);
      };
    }
    if (typeof value !== 'object' || value === null || Buffer.isBuffer(value)) return value;
    return new Proxy(value, {
      get(target, property, receiver) {
        const member: unknown = Reflect.get(target, property, receiver);
        if (typeof member !== 'function' || typeof property !== 'string') return member;
        return recording(member, `${label}.${property}`);
      },
    });
  };
  const wrapped: Record<string, Record<string, unknown>> = {};
  for (const [group, members] of Object.entries(deps)) {
    wrapped[group] = Object.fromEntries(
      Object.entries(members as Record<string, unknown>).map(([name, member]) => [name, recording(member, `${group}.${name}`)]),
    );
  }
  return wrapped as unknown as RouteDeps;
}

const capabilityName = ({ capability }: ProtectedRoute) => `${capability.object}:${capability.action}`;

/** The gateway app over fakes, and what the fakes saw. */
export async function createSecurityHarness({
  rateLimits = defaultRateLimits,
  bodyLimitBytes = 1024,
  maxJsonDepth = 8,
}: HarnessOptions = {}) {
  const signing = await generateKeyPair('ES256', { extractable: true });
  const foreign = await generateKeyPair('ES256', { extractable: true });
  const jwk: JWK = { ...(await exportJWK(signing.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };

  /** Every call a route handler made downstream (route deps), in order. */
  const downstreamCalls: string[] = [];
  const audits: AuditedDecision[] = [];
  const counts = { policy: 0, resolveContext: 0 };
  /** Principals (users, robots) the fake policy grants every capability. */
  const granted = new Set<string>([ids.fullRights, ids.ownerB, ids.ownerS, ids.robot]);
  const liveSessions = new Set([liveSession]);

  const routes: Routes = createRoutes(recordingRouteDeps(fakeRouteDeps(), downstreamCalls));
  const everyScope = [...new Set(routes.protectedRoutes.map(capabilityName))];
  const knownKeys = new Map<string, { tenantId: string; createdBy: string; scopes: string[] }>([
    [apiKeys.full, { tenantId: ids.tenantA, createdBy: ids.fullRights, scopes: everyScope }],
    [apiKeys.noScopes, { tenantId: ids.tenantA, createdBy: ids.fullRights, scopes: ['unused:none'] }],
    [apiKeys.noRightsCreator, { tenantId: ids.tenantA, createdBy: ids.noRights, scopes: everyScope }],
    [apiKeys.tenantB, { tenantId: ids.tenantB, createdBy: ids.ownerB, scopes: everyScope }],
  ]);

  const sign = (payload: Record<string, unknown>, header: Record<string, unknown>, options: TokenOptions) => {
    const now = Math.floor(Date.now() / 1000);
    const jwt = new SignJWT(payload)
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', ...header })
      .setIssuer(options.issuer ?? issuer)
      .setAudience(options.audience ?? audience)
      .setIssuedAt(options.iat ?? now)
      .setExpirationTime(options.exp ?? now + 300);
    const key: CryptoKey = options.foreignKey ? foreign.privateKey : signing.privateKey;
    return jwt.sign(key);
  };

  /** An access token (typ at+jwt): a full-rights owner of tenant A in the live session unless `claims` says otherwise. */
  const accessToken = (options: TokenOptions = {}) => {
    const { sub = ids.fullRights, ...claims } = { tenantId: ids.tenantA, role: 'owner', sid: liveSession, ...options.claims };
    return sign({ sub, ...claims }, { typ: 'at+jwt', ...options.header }, options);
  };

  const robotTokens = new Map<string, { robotId: string; creatorId: string }>();
  /** A robot token (typ robot+jwt) the fake auth service accepts for this robot of tenant A. */
  const robotToken = async (robotId: string, creatorId: string) => {
    const token = await sign({ sub: robotId, tenantId: ids.tenantA }, { typ: 'robot+jwt' }, {});
    robotTokens.set(token, { robotId, creatorId });
    return token;
  };

  const tenants: PipelineDeps['tenants'] = {
    resolveContext(request) {
      counts.resolveContext += 1;
      const found = request.assistantId
        ? byAssistant.get(request.assistantId)
        : request.tenantId
          ? byTenant.get(request.tenantId)
          : byHost.get(request.host ?? '');
      if (!found) return Promise.reject(new AppError('NOT_FOUND', 'no tenant is configured for this request'));
      // Like the registry (context-resolution.ts): a suspended tenant resolves to nothing.
      if (found.suspended) return Promise.reject(new AppError('TENANT_SUSPENDED', 'tenant is suspended'));
      return Promise.resolve({
        context: {
          tenantId: found.tenantId,
          tenantName: found.tenantName,
          assistantId: found.assistantId,
          tenantPlan: 'free',
        },
      } as never);
    },
  };

  const cookieSessions = createCookieSessions({ secure: true, csrfSecret: testCsrfSecret });
  const consumeRateLimit = createRateLimiter({
    limiters: (window, prefix) => new RateLimiterMemory({ points: window.points, duration: window.windowSeconds, keyPrefix: prefix }),
    keyPrefix: 't:',
  });

  const pipeline = createPipeline({
    tenants,
    platformHosts: [hosts.platform],
    verifyAccessToken: createAccessTokenVerifier({ keys: createLocalJWKSet({ keys: [jwk] }), issuer, audience }),
    verifyApiKey: createApiKeyVerifier({
      auth: {
        verifyApiKey({ key = '' }) {
          const found = knownKeys.get(key);
          if (!found) return Promise.reject(new AppError('UNAUTHENTICATED', 'invalid, expired or revoked API key'));
          return Promise.resolve({
            keyId: key.slice(4, 20),
            tenantId: found.tenantId,
            kind: ApiKeyKind.TENANT,
            userId: '',
            createdByUserId: found.createdBy,
            scopes: found.scopes,
          } as never);
        },
      },
    }),
    verifyRobotToken: createRobotTokenVerifier({
      auth: {
        verifyRobotToken({ token = '' }) {
          const found = robotTokens.get(token);
          if (!found) return Promise.reject(new AppError('UNAUTHENTICATED', 'invalid, expired or revoked robot token'));
          return Promise.resolve({
            robotId: found.robotId,
            tenantId: ids.tenantA,
            robotName: 'builder',
            creatorId: found.creatorId,
            teamIds: [ids.team],
          } as never);
        },
      },
    }),
    isSessionActive: (sessionId) => Promise.resolve(liveSessions.has(sessionId)),
    isValidCsrfToken: cookieSessions.isValidCsrfToken,
    consumeRateLimit,
    rateLimits,
    auditDecision: ({ request, target, principal, capability, allowed, reason }) => {
      audits.push({
        requestId: request.requestId,
        tenantId: target.tenantId,
        principalId: principal?.id ?? '',
        capability: capability ? `${capability.object}:${capability.action}` : '',
        allowed,
        reason,
      });
      return Promise.resolve();
    },
    policy: {
      check(request) {
        counts.policy += 1;
        const allowed = granted.has(request.principal?.id ?? '');
        return Promise.resolve({ allowed, reason: allowed ? 'granted by the test policy' : 'no role grants it' } as never);
      },
    },
  });

  const app = createApp({
    logger: createLogger({ name: 'route-security', level: 'silent' }),
    pipeline,
    publicRoutes: routes.publicRoutes,
    protectedRoutes: routes.protectedRoutes,
    bodyLimitBytes,
    maxJsonDepth,
    corsOrigins: [],
    sessionCookieName: cookieSessions.names.access,
    consumeRateLimit,
    rateLimits,
  });

  return {
    app,
    routes,
    bodyLimitBytes,
    maxJsonDepth,
    sessionCookieName: cookieSessions.names.access,
    csrfTokenFor: cookieSessions.csrfTokenFor,
    downstreamCalls,
    audits,
    counts,
    /** Lets the fake policy grant this principal every capability. */
    grant: (principalId: string) => granted.add(principalId),
    accessToken,
    robotToken,
  };
}

export type SecurityHarness = Awaited<ReturnType<typeof createSecurityHarness>>;

export interface TestRequest {
  method: string;
  path: string;
  host: string;
  headers?: Record<string, string> | undefined;
  /** Sent as application/json unless the headers say otherwise. */
  body?: string | Buffer | undefined;
  /** Send the body in two chunks without Content-Length (chunked transfer encoding). */
  chunked?: boolean | undefined;
}

export interface TestAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: unknown;
}

/** The app on an ephemeral port of 127.0.0.1, and a client that may set any Host header. */
export async function serve(app: Express) {
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const agent = new Agent({ keepAlive: true });

  function send({ method, path, host, headers = {}, body, chunked = false }: TestRequest): Promise<TestAnswer> {
    return new Promise((resolve, reject) => {
      const outgoing: Record<string, string> = { host, ...headers };
      if (body !== undefined) {
        outgoing['content-type'] ??= 'application/json';
        // Node frames a GET or DELETE body only when told how.
        if (chunked) outgoing['transfer-encoding'] = 'chunked';
        else outgoing['content-length'] = String(Buffer.byteLength(body));
      }
      let answered = false;
      const request = httpRequest({ host: '127.0.0.1', port, method, path, headers: outgoing, agent }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          answered = true;
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text === '' ? undefined : (JSON.parse(text) as unknown);
          } catch {
            json = undefined;
          }
          resolve({ status: response.statusCode ?? 0, headers: response.headers, text, json });
        });
      });
      // The server may answer (413) and close before it read the whole body.
      request.on('error', (error) => {
        if (!answered) reject(error);
      });
      const data = typeof body === 'string' ? Buffer.from(body) : body;
      if (data !== undefined && chunked) {
        const half = Math.floor(data.length / 2);
        request.write(data.subarray(0, half));
        request.end(data.subarray(half));
      } else {
        request.end(data);
      }
    });
  }

  async function close(): Promise<void> {
    agent.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  }

  return { send, close };
}

export type TestServer = Awaited<ReturnType<typeof serve>>;
