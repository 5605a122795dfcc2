// The per-route security suite (STYLE.md §6, unkey pkg/testutil/common-tests.ts): every
// protected route of createRoutes — the one list main.ts registers — runs the same checks against
// the real app and pipeline, and the last tests fail if the app registers a route this suite did
// not run every check on, or a public route outside the allow-list below.
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SignJWT } from 'jose';
import type { ProtectedRoute } from '../http/route.js';
import { defaultRateLimits, type RateLimits, type RateWindow } from '../libraries/rate-limit-config.js';
import { fakeRouteDeps } from '../test-support/route-fakes.js';
import {
  apiKeys,
  audience,
  createSecurityHarness,
  endedSession,
  hosts,
  ids,
  issuer,
  liveSession,
  serve,
  type AuditedDecision,
  type SecurityHarness,
  type TestAnswer,
  type TestRequest,
  type TestServer,
} from '../test-support/security-harness.js';
import { createRoutes } from './index.js';

/** The routes the checks run on: createRoutes, exactly as main.ts builds them. */
const { protectedRoutes, publicRoutes } = createRoutes(fakeRouteDeps());

const keyOf = (route: { method: string; path: string }) => `${route.method.toUpperCase()} ${route.path}`;

/**
 * The complete allow-list of routes outside the pipeline, with the per-address limit each spends
 * from. A new public route fails the coverage test until it is added here, deliberately.
 */
const publicAllowList: Record<string, string> = {
  'POST /api/auth/signup': 'signIn',
  'POST /api/auth/login': 'signIn',
  'POST /api/auth/select-tenant': 'signIn',
  'POST /api/auth/phone/start': 'sms',
  'POST /api/auth/phone/verify': 'sms',
  'POST /api/auth/refresh': 'signIn',
  'POST /api/tenants': 'signIn',
  'POST /api/devices/activations': 'activationStart',
  'GET /api/auth/oauth/:provider/start': 'oauth',
  'GET /api/auth/oauth/:provider/callback': 'oauth',
  'GET /.well-known/jwks.json': 'none',
  'GET /api/openapi.json': 'none',
};

/** What every protected route is run through. */
const checks = [
  'no credential',
  'malformed credential',
  'two credentials',
  'expired or ended credential',
  'foreign signing key',
  'wrong tenant',
  'suspended tenant',
  'assistant id probing',
  'missing capability',
  'oversized body',
  'deeply nested body',
  'cookie session CSRF',
  'API keys and robot tokens',
  'rate limit',
] as const;
type Check = (typeof checks)[number] | 'public rate limit';

/** Which checks ran on which route (method + path), for the coverage test at the end. */
const ran = new Map<string, Set<Check>>();
function running(route: { method: string; path: string }, check: Check): void {
  const key = keyOf(route);
  const seen = ran.get(key) ?? new Set<Check>();
  seen.add(check);
  ran.set(key, seen);
}

/** Valid values for path parameters; any other parameter is an id. */
const sampleParams: Record<string, string> = { role: 'user', capability: 'tools:invoke', name: 'weather', provider: 'google' };
const concretePath = (path: string) =>
  path.replace(/:([A-Za-z]+)/g, (_match, name: string) => sampleParams[name] ?? '00000000-0000-4000-8000-000000000d01');

const unknownAssistant = '00000000-0000-4000-8000-0000000000a9';
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const stackTrace = /\n\s+at |node_modules|\.[cm]?[jt]s:\d+/;

let sequence = 0;

interface Observed {
  answer: TestAnswer;
  requestId: string;
  /** What route handlers called downstream during the request. */
  downstream: string[];
  policyAsked: number;
  contextsResolved: number;
  audits: AuditedDecision[];
}

/** Sends one request with its own X-Request-Id and reports what the fakes saw meanwhile. */
async function observe(harness: SecurityHarness, server: TestServer, request: TestRequest): Promise<Observed> {
  sequence += 1;
  const requestId = `security-${sequence}`;
  const before = { downstream: harness.downstreamCalls.length, ...harness.counts };
  const answer = await server.send({ ...request, headers: { 'x-request-id': requestId, ...request.headers } });
  return {
    answer,
    requestId,
    downstream: harness.downstreamCalls.slice(before.downstream),
    policyAsked: harness.counts.policy - before.policy,
    contextsResolved: harness.counts.resolveContext - before.resolveContext,
    audits: harness.audits.filter((audit) => audit.requestId === requestId),
  };
}

/**
 * A refusal: the status and code expected, the error envelope and nothing else (no stack), the
 * request's id, no route handler run, and the policy asked only as often as stated (never for a
 * request refused before step 4).
 */
function expectRefused(observed: Observed, label: string, expected: { status: number; code: string; policyAsked?: number }): void {
  const { answer, requestId } = observed;
  expect({
    label,
    status: answer.status,
    body: answer.json,
    requestIdHeader: answer.headers['x-request-id'],
    downstream: observed.downstream,
    policyAsked: observed.policyAsked,
    stackTrace: stackTrace.test(answer.text),
  }).toEqual({
    label,
    status: expected.status,
    body: { error: { code: expected.code, message: expect.stringMatching(/\S/), requestId } },
    requestIdHeader: requestId,
    downstream: [],
    policyAsked: expected.policyAsked ?? 0,
    stackTrace: false,
  });
}

const rateLimitHeadersOf = ({ headers }: TestAnswer) => ({
  limit: headers['ratelimit-limit'],
  remaining: headers['ratelimit-remaining'],
  reset: headers['ratelimit-reset'],
});

/** Every step of the pipeline ran and allowed the request (audited), and the answer carries the limits. */
function expectPassedPipeline(observed: Observed, label: string): void {
  expect({
    label,
    decisions: observed.audits.map(({ allowed }) => allowed),
    rateLimit: rateLimitHeadersOf(observed.answer),
  }).toEqual({
    label,
    decisions: [true],
    rateLimit: { limit: expect.stringMatching(/^\d+$/), remaining: expect.stringMatching(/^\d+$/), reset: expect.stringMatching(/^\d+$/) },
  });
}

const messageOf = ({ answer }: Observed) => (answer.json as { error?: { message?: string } } | undefined)?.error?.message;

interface RequestOptions {
  host?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  chunked?: boolean;
}

/** A request to a route; POST routes get `{}` unless a body is given. */
const requestTo = (route: ProtectedRoute, { host = hosts.alpha, headers = {}, body, chunked }: RequestOptions = {}): TestRequest => ({
  method: route.method.toUpperCase(),
  path: concretePath(route.path),
  host,
  headers,
  body: body ?? (route.method === 'post' ? '{}' : undefined),
  chunked,
});

const tiny: RateWindow = { points: 2, windowSeconds: 60 };
const roomy: RateWindow = { points: 1_000_000, windowSeconds: 60 };
/** Two requests per person, API key or robot per minute; tenants are not the bottleneck. */
const tinyPlanLimits: RateLimits = {
  ...defaultRateLimits,
  plans: { free: { tenant: roomy, user: tiny, apiKey: tiny, robot: tiny, device: tiny } },
  defaultPlan: 'free',
};
/** The same limits with refused API keys and robot tokens, and whole-trail audit reads, out of reach. */
const roomyFailures = (limits: RateLimits): RateLimits => ({
  ...limits,
  sensitive: { ...limits.sensitive, failedAuth: roomy, auditExport: roomy },
});
/** Two requests per client address per minute on every public route class. */
const tinyPublicLimits: RateLimits = {
  ...defaultRateLimits,
  sensitive: { ...defaultRateLimits.sensitive, signIn: tiny, sms: tiny, oauth: tiny, activationStart: tiny, activationCode: tiny },
};

let main: SecurityHarness;
let mainServer: TestServer;
let limited: SecurityHarness;
let limitedServer: TestServer;

type TokenName =
  | 'full'
  | 'noRights'
  | 'ownerB'
  | 'ownerS'
  | 'expired'
  | 'ended'
  | 'notYetValid'
  | 'otherAudience'
  | 'otherIssuer'
  | 'plainJwtType'
  | 'noTenant'
  | 'unknownRole'
  | 'subNotUuid'
  | 'foreignKey'
  | 'foreignKid'
  | 'hs256'
  | 'robot'
  | 'robotNoRights';
const tokens = {} as Record<TokenName, string>;

beforeAll(async () => {
  // The suite sends many refused keys from one address: that limit has its own test
  // (src/pipeline/failed-auth.test.ts) and is out of reach here.
  main = await createSecurityHarness({ bodyLimitBytes: 1024, maxJsonDepth: 8, rateLimits: roomyFailures(defaultRateLimits) });
  mainServer = await serve(main.app);
  limited = await createSecurityHarness({ rateLimits: roomyFailures(tinyPlanLimits) });
  limitedServer = await serve(limited.app);

  const now = Math.floor(Date.now() / 1000);
  Object.assign(tokens, {
    full: await main.accessToken(),
    noRights: await main.accessToken({ claims: { sub: ids.noRights, role: 'user' } }),
    ownerB: await main.accessToken({ claims: { sub: ids.ownerB, tenantId: ids.tenantB } }),
    ownerS: await main.accessToken({ claims: { sub: ids.ownerS, tenantId: ids.tenantS } }),
    expired: await main.accessToken({ iat: now - 900, exp: now - 300 }),
    ended: await main.accessToken({ claims: { sid: endedSession } }),
    notYetValid: await main.accessToken({ claims: { nbf: now + 300 } }),
    otherAudience: await main.accessToken({ audience: 'someone-else' }),
    otherIssuer: await main.accessToken({ issuer: 'someone-else' }),
    plainJwtType: await main.accessToken({ header: { typ: 'JWT' } }),
    noTenant: await main.accessToken({ claims: { tenantId: undefined } }),
    unknownRole: await main.accessToken({ claims: { role: 'superuser' } }),
    subNotUuid: await main.accessToken({ claims: { sub: 'alice' } }),
    foreignKey: await main.accessToken({ foreignKey: true }),
    foreignKid: await main.accessToken({ foreignKey: true, header: { kid: 'k2' } }),
    hs256: await new SignJWT({ tenantId: ids.tenantA, role: 'owner', sid: liveSession })
      .setProtectedHeader({ alg: 'HS256', kid: 'k1', typ: 'at+jwt' })
      .setSubject(ids.fullRights)
      .setIssuer(issuer)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode('a secret nobody published, 32 bytes')),
    robot: await main.robotToken(ids.robot, ids.fullRights),
    robotNoRights: await main.robotToken(ids.robotNoRights, ids.noRights),
  } satisfies typeof tokens);
});

afterAll(async () => {
  await Promise.all([mainServer.close(), limitedServer.close()]);
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
/** A cookie session, with the CSRF token of `csrfSession` unless null (no token sent). */
const cookieSession = (token: string, csrfSession: string | null = liveSession) => ({
  cookie: `${main.sessionCookieName}=${token}`,
  ...(csrfSession === null ? {} : { 'x-csrf-token': main.csrfTokenFor(csrfSession) }),
});

describe.each(protectedRoutes.map((route) => [keyOf(route), route] as const))('%s', (_name, route) => {
  const capability = `${route.capability.object}:${route.capability.action}`;

  it('refuses a request without a credential: 401 UNAUTHENTICATED', async () => {
    running(route, 'no credential');
    const variants: [string, RequestOptions][] = [
      ['nothing sent', {}],
      ['nothing sent, platform host', { host: hosts.platform }],
      ['empty Authorization', { headers: { authorization: '' } }],
      ['empty X-API-Key', { headers: { 'x-api-key': '' } }],
      ['empty session cookie', { headers: { cookie: `${main.sessionCookieName}=` } }],
    ];
    for (const [label, options] of variants) {
      expectRefused(await observe(main, mainServer, requestTo(route, options)), label, { status: 401, code: 'UNAUTHENTICATED' });
    }
  });

  it('refuses a malformed credential: 401 UNAUTHENTICATED', async () => {
    running(route, 'malformed credential');
    const [header = '', payload = '', signature = ''] = tokens.full.split('.');
    const [, otherPayload = ''] = tokens.noRights.split('.');
    const variants: [string, Record<string, string>][] = [
      ['Bearer not-a-jwt', { authorization: 'Bearer not-a-jwt' }],
      ['Bearer a.b.c', { authorization: 'Bearer a.b.c' }],
      ['Basic scheme', { authorization: 'Basic dXNlcjpwYXNzd29yZA==' }],
      ['token without a scheme', { authorization: tokens.full }],
      ['two spaces after Bearer', { authorization: `Bearer  ${tokens.full}` }],
      ['two bearer tokens', { authorization: `Bearer ${tokens.full}, Bearer ${tokens.full}` }],
      ['alg none, no signature', bearer(`${b64({ alg: 'none', kid: 'k1', typ: 'at+jwt' })}.${payload}.`)],
      ['alg none, any signature', bearer(`${b64({ alg: 'none', kid: 'k1', typ: 'at+jwt' })}.${payload}.${signature}`)],
      ["another token's payload under this signature", bearer(`${header}.${otherPayload}.${signature}`)],
      ['robot-labelled garbage', bearer(`${b64({ alg: 'ES256', kid: 'k1', typ: 'robot+jwt' })}.${b64({ sub: ids.robot })}.c2ln`)],
      ['garbage X-API-Key', { 'x-api-key': 'garbage' }],
      ['well-formed but unknown X-API-Key', { 'x-api-key': apiKeys.unknown }],
      ['garbage session cookie', cookieSession('not-a-jwt')],
      ['session cookie a.b.c', cookieSession('a.b.c')],
    ];
    for (const [label, headers] of variants) {
      expectRefused(await observe(main, mainServer, requestTo(route, { headers })), label, { status: 401, code: 'UNAUTHENTICATED' });
    }
  });

  it('refuses two credentials at once, each valid alone: 401 UNAUTHENTICATED', async () => {
    running(route, 'two credentials');
    const variants: [string, Record<string, string>][] = [
      ['Bearer + X-API-Key', { ...bearer(tokens.full), 'x-api-key': apiKeys.full }],
      ['Bearer + session cookie', { ...bearer(tokens.full), ...cookieSession(tokens.full) }],
      ['X-API-Key + session cookie', { 'x-api-key': apiKeys.full, ...cookieSession(tokens.full) }],
      ['robot token + X-API-Key', { ...bearer(tokens.robot), 'x-api-key': apiKeys.full }],
    ];
    for (const [label, headers] of variants) {
      expectRefused(await observe(main, mainServer, requestTo(route, { headers })), label, { status: 401, code: 'UNAUTHENTICATED' });
    }
  });

  it('refuses a validly signed token that is expired, of an ended session or not meant for the gateway: 401', async () => {
    running(route, 'expired or ended credential');
    const variants: [string, Record<string, string>][] = [
      ['expired', bearer(tokens.expired)],
      ['expired, in the session cookie', cookieSession(tokens.expired)],
      ['session ended', bearer(tokens.ended)],
      ['session ended, in the session cookie', cookieSession(tokens.ended, endedSession)],
      ['not yet valid (nbf)', bearer(tokens.notYetValid)],
      ['another audience', bearer(tokens.otherAudience)],
      ['another issuer', bearer(tokens.otherIssuer)],
      ['typ JWT instead of at+jwt', bearer(tokens.plainJwtType)],
      ['no tenantId claim', bearer(tokens.noTenant)],
      ['unknown role claim', bearer(tokens.unknownRole)],
      ['sub not a UUID', bearer(tokens.subNotUuid)],
    ];
    for (const [label, headers] of variants) {
      expectRefused(await observe(main, mainServer, requestTo(route, { headers })), label, { status: 401, code: 'UNAUTHENTICATED' });
    }
  });

  it('refuses a token signed by a key the auth service did not publish: 401', async () => {
    running(route, 'foreign signing key');
    const variants: [string, Record<string, string>][] = [
      ['foreign key, published kid', bearer(tokens.foreignKey)],
      ['foreign key, unknown kid', bearer(tokens.foreignKid)],
      ['foreign key, in the session cookie', cookieSession(tokens.foreignKey)],
      ['HS256 with a made-up secret', bearer(tokens.hs256)],
    ];
    for (const [label, headers] of variants) {
      expectRefused(await observe(main, mainServer, requestTo(route, { headers })), label, { status: 401, code: 'UNAUTHENTICATED' });
    }
  });

  it("refuses another tenant's credential (403 CROSS_TENANT on a domain, 404 for an assistant id) and audits it", async () => {
    running(route, 'wrong tenant');
    const onDomain: [string, Record<string, string>][] = [
      ["tenant B's access token on tenant A's domain", bearer(tokens.ownerB)],
      ["tenant B's cookie session on tenant A's domain", cookieSession(tokens.ownerB)],
      ["tenant B's API key on tenant A's domain", { 'x-api-key': apiKeys.tenantB }],
    ];
    for (const [label, headers] of onDomain) {
      const observed = await observe(main, mainServer, requestTo(route, { headers }));
      expectRefused(observed, label, { status: 403, code: 'CROSS_TENANT' });
      expect({ label, audits: observed.audits }).toEqual({
        label,
        audits: [expect.objectContaining({ tenantId: ids.tenantA, allowed: false, reason: 'credential belongs to another tenant' })],
      });
    }
    // Whether an assistant id exists must not leak: another tenant's is answered like an unknown one.
    const unknown = await observe(
      main,
      mainServer,
      requestTo(route, { host: hosts.platform, headers: { ...bearer(tokens.ownerB), 'x-assistant-id': unknownAssistant } }),
    );
    expectRefused(unknown, 'unknown assistant id', { status: 404, code: 'NOT_FOUND' });
    for (const host of [hosts.platform, hosts.beta]) {
      const label = `tenant B's token with tenant A's X-Assistant-Id on ${host}`;
      const foreign = await observe(
        main,
        mainServer,
        requestTo(route, { host, headers: { ...bearer(tokens.ownerB), 'x-assistant-id': ids.assistantA } }),
      );
      expectRefused(foreign, label, { status: 404, code: 'NOT_FOUND' });
      expect({ label, message: messageOf(foreign) }).toEqual({ label, message: messageOf(unknown) });
    }
  });

  it('refuses every request of a suspended tenant: 403 TENANT_SUSPENDED', async () => {
    running(route, 'suspended tenant');
    const variants: [string, RequestOptions][] = [
      ["its own owner's token on its domain", { host: hosts.suspended, headers: bearer(tokens.ownerS) }],
      ["another tenant's token on its domain", { host: hosts.suspended, headers: bearer(tokens.full) }],
      ['no credential on its domain', { host: hosts.suspended }],
      ["its own owner's token on the platform host", { host: hosts.platform, headers: bearer(tokens.ownerS) }],
      ["its assistant's X-Assistant-Id", { host: hosts.platform, headers: { ...bearer(tokens.ownerS), 'x-assistant-id': ids.assistantS } }],
    ];
    for (const [label, options] of variants) {
      expectRefused(await observe(main, mainServer, requestTo(route, options)), label, { status: 403, code: 'TENANT_SUSPENDED' });
    }
  });

  it('tells nobody without a credential of its tenant whether an assistant id exists', async () => {
    running(route, 'assistant id probing');
    const probe = (assistantId: string, headers: Record<string, string> = {}) =>
      observe(main, mainServer, requestTo(route, { host: hosts.platform, headers: { ...headers, 'x-assistant-id': assistantId } }));
    // Without a valid credential: the same 401 for a live, a suspended tenant's and an unknown id.
    for (const [label, headers] of [
      ['no credential', {}],
      ['malformed credential', bearer('a.b.c')],
    ] as const) {
      const answers = await Promise.all([ids.assistantA, ids.assistantS, unknownAssistant].map((id) => probe(id, headers)));
      for (const observed of answers) expectRefused(observed, label, { status: 401, code: 'UNAUTHENTICATED' });
      expect(new Set(answers.map(messageOf)).size).toBe(1);
    }
    // Another tenant's credential: a suspended tenant's assistant is answered like an unknown one.
    const suspendedForeign = await probe(ids.assistantS, bearer(tokens.ownerB));
    expectRefused(suspendedForeign, "tenant B's token with the suspended tenant's assistant id", { status: 404, code: 'NOT_FOUND' });
    expect(messageOf(suspendedForeign)).toBe(messageOf(await probe(unknownAssistant, bearer(tokens.ownerB))));
  });

  it('refuses a principal without the capability (403 PERMISSION_DENIED) and audits the denial', async () => {
    running(route, 'missing capability');
    const variants: [string, Record<string, string>, number][] = [
      ['a user the policy denies', bearer(tokens.noRights), 1],
      ['the same user in a cookie session', cookieSession(tokens.noRights), 1],
      ['an API key whose scopes lack it (the policy is not asked)', { 'x-api-key': apiKeys.noScopes }, 0],
      // On a route only people may use, keys and robots are refused before the policy is asked.
      ['an API key whose creator lacks it', { 'x-api-key': apiKeys.noRightsCreator }, route.humansOnly ? 0 : 1],
      ['a robot whose creator lacks it', bearer(tokens.robotNoRights), route.humansOnly ? 0 : 1],
    ];
    for (const [label, headers, policyAsked] of variants) {
      const observed = await observe(main, mainServer, requestTo(route, { headers }));
      expectRefused(observed, label, { status: 403, code: 'PERMISSION_DENIED', policyAsked });
      expect({ label, audits: observed.audits.map(({ allowed, capability: audited }) => ({ allowed, capability: audited })) }).toEqual({
        label,
        audits: [{ allowed: false, capability }],
      });
    }
  });

  it('refuses a body over the size limit before the pipeline: 413 PAYLOAD_TOO_LARGE', async () => {
    running(route, 'oversized body');
    const body = JSON.stringify({ pad: 'x'.repeat(main.bodyLimitBytes * 4) });
    const variants: [string, RequestOptions][] = [
      ['with Content-Length', { body }],
      ['chunked', { body, chunked: true }],
      ['gzip: small on the wire, over the limit inflated', { body: gzipSync(body), headers: { 'content-encoding': 'gzip' } }],
    ];
    for (const [label, options] of variants) {
      const headers = { ...bearer(tokens.full), ...options.headers };
      const observed = await observe(main, mainServer, requestTo(route, { ...options, headers }));
      expectRefused(observed, label, { status: 413, code: 'PAYLOAD_TOO_LARGE' });
      expect({ label, audits: observed.audits, contextsResolved: observed.contextsResolved }).toEqual({
        label,
        audits: [],
        contextsResolved: 0,
      });
    }
  });

  it('refuses a body nested deeper than the limit before the pipeline: 400 INVALID_ARGUMENT', async () => {
    running(route, 'deeply nested body');
    const depth = main.maxJsonDepth + 1;
    const variants: [string, string][] = [
      ['arrays', `${'['.repeat(depth)}${']'.repeat(depth)}`],
      ['objects', `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`],
    ];
    for (const [label, body] of variants) {
      const observed = await observe(main, mainServer, requestTo(route, { headers: bearer(tokens.full), body }));
      expectRefused(observed, label, { status: 400, code: 'INVALID_ARGUMENT' });
      expect({ label, audits: observed.audits, contextsResolved: observed.contextsResolved }).toEqual({
        label,
        audits: [],
        contextsResolved: 0,
      });
    }
  });

  if (route.method === 'get') {
    it('lets a cookie session read without a CSRF token (a safe method)', async () => {
      running(route, 'cookie session CSRF');
      expectPassedPipeline(await observe(main, mainServer, requestTo(route, { headers: cookieSession(tokens.full, null) })), 'no token');
    });
  } else {
    it('refuses a cookie-session change without its CSRF token (403), and lets it through with the token', async () => {
      running(route, 'cookie session CSRF');
      const variants: [string, Record<string, string>][] = [
        ['no X-CSRF-Token', cookieSession(tokens.full, null)],
        ["another session's CSRF token", cookieSession(tokens.full, 'another-session')],
        ['a malformed CSRF token', { ...cookieSession(tokens.full, null), 'x-csrf-token': 'not-a-token' }],
      ];
      for (const [label, headers] of variants) {
        expectRefused(await observe(main, mainServer, requestTo(route, { headers })), label, { status: 403, code: 'PERMISSION_DENIED' });
      }
      expectPassedPipeline(await observe(main, mainServer, requestTo(route, { headers: cookieSession(tokens.full) })), 'with the token');
    });
  }

  if (route.humansOnly) {
    it('refuses API keys and robot tokens before the policy is asked, and audits the denial: 403 PERMISSION_DENIED', async () => {
      running(route, 'API keys and robot tokens');
      const variants: [string, Record<string, string>][] = [
        ['API key with every scope', { 'x-api-key': apiKeys.full }],
        ['robot token', bearer(tokens.robot)],
      ];
      for (const [label, headers] of variants) {
        const observed = await observe(main, mainServer, requestTo(route, { headers }));
        expectRefused(observed, label, { status: 403, code: 'PERMISSION_DENIED' });
        expect({ label, decisions: observed.audits.map(({ allowed }) => allowed) }).toEqual({ label, decisions: [false] });
      }
    });
  } else {
    it('lets a scoped API key and a robot token of a granted creator through the pipeline', async () => {
      running(route, 'API keys and robot tokens');
      expectPassedPipeline(await observe(main, mainServer, requestTo(route, { headers: { 'x-api-key': apiKeys.full } })), 'API key');
      expectPassedPipeline(await observe(main, mainServer, requestTo(route, { headers: bearer(tokens.robot) })), 'robot token');
    });
  }

  it('answers with RateLimit-* headers, then 429 RATE_LIMITED with Retry-After beyond the plan limit', async () => {
    running(route, 'rate limit');
    // A person of their own per route, so each route starts with a full bucket.
    sequence += 1;
    const person = `00000000-0000-4000-8000-${(0x7000_0000 + sequence).toString(16).padStart(12, '0')}`;
    limited.grant(person);
    const request = requestTo(route, { headers: bearer(await limited.accessToken({ claims: { sub: person } })) });

    for (const remaining of ['1', '0']) {
      const observed = await observe(limited, limitedServer, request);
      expectPassedPipeline(observed, `remaining ${remaining}`);
      expect({ remaining, headers: rateLimitHeadersOf(observed.answer), policy: observed.answer.headers['ratelimit-policy'] }).toEqual({
        remaining,
        headers: { limit: '2', remaining, reset: expect.stringMatching(/^([1-9]|[1-5]\d|60)$/) },
        policy: '2;w=60',
      });
    }
    const over = await observe(limited, limitedServer, request);
    expectRefused(over, 'beyond the limit', { status: 429, code: 'RATE_LIMITED' });
    expect({ headers: rateLimitHeadersOf(over.answer), retryAfter: over.answer.headers['retry-after'], audits: over.audits }).toEqual({
      headers: { limit: '2', remaining: '0', reset: expect.stringMatching(/^\d+$/) },
      retryAfter: expect.stringMatching(/^([1-9]|[1-5]\d|60)$/),
      audits: [expect.objectContaining({ allowed: false, reason: 'rate limit exceeded', capability })],
    });
  });
});

describe.each(publicRoutes.filter(({ rateLimit }) => rateLimit !== 'none').map((route) => [keyOf(route), route] as const))(
  'public %s',
  (_name, route) => {
    it('answers 429 RATE_LIMITED with Retry-After beyond its per-address limit, before any downstream call', async () => {
      running(route, 'public rate limit');
      // An app of its own: public routes of one class share the per-address bucket.
      const harness = await createSecurityHarness({ rateLimits: tinyPublicLimits });
      const server = await serve(harness.app);
      try {
        const request: TestRequest = {
          method: route.method.toUpperCase(),
          path: concretePath(route.path),
          host: hosts.alpha,
          body: route.method === 'post' ? '{}' : undefined,
        };
        for (const remaining of ['1', '0']) {
          const observed = await observe(harness, server, request);
          expect({ remaining, limited: observed.answer.status === 429, headers: rateLimitHeadersOf(observed.answer) }).toEqual({
            remaining,
            limited: false,
            headers: { limit: '2', remaining, reset: expect.stringMatching(/^\d+$/) },
          });
        }
        const over = await observe(harness, server, request);
        expectRefused(over, 'beyond the limit', { status: 429, code: 'RATE_LIMITED' });
        expect({ retryAfter: over.answer.headers['retry-after'], contextsResolved: over.contextsResolved }).toEqual({
          retryAfter: expect.stringMatching(/^([1-9]|[1-5]\d|60)$/),
          contextsResolved: 0,
        });
      } finally {
        await server.close();
      }
    });
  },
);

describe('coverage of the registered routes', () => {
  /** Every (method, path) the Express app has a route for, as `METHOD /path`. */
  function registeredRoutes(): { routes: string[]; nested: string[] } {
    const routes: string[] = [];
    const nested: string[] = [];
    for (const layer of main.app.router.stack) {
      if (layer.route) {
        const { path, methods } = layer.route as unknown as { path: unknown; methods: Record<string, boolean> };
        for (const [method, on] of Object.entries(methods)) if (on) routes.push(`${method.toUpperCase()} ${String(path)}`);
      } else if (layer.name === 'router' || layer.name === 'mounted_app') {
        // A mounted router or app would hide its routes from this list.
        nested.push(layer.name);
      }
    }
    return { routes, nested };
  }

  it('registers exactly the protected routes this suite runs and the public allow-list, each once', () => {
    const { routes, nested } = registeredRoutes();
    expect(nested).toEqual([]);
    expect(routes.filter((key, index) => routes.indexOf(key) !== index)).toEqual([]);
    expect([...routes].sort()).toEqual([...protectedRoutes.map(keyOf), ...Object.keys(publicAllowList)].sort());
    expect(Object.fromEntries(publicRoutes.map((route) => [keyOf(route), route.rateLimit]))).toEqual(publicAllowList);
    expect(protectedRoutes.map((route) => concretePath(route.path)).filter((path) => path.includes('/:'))).toEqual([]);
  });

  it('ran every check on every registered protected route, and the limit on every limited public route', () => {
    const { routes } = registeredRoutes();
    const suiteRoutes = new Set(protectedRoutes.map(keyOf));
    const missing = routes.flatMap((key) => {
      const limit = publicAllowList[key];
      if (limit === undefined && !suiteRoutes.has(key)) return [`${key}: neither a protected route of this suite nor public`];
      const expected: readonly Check[] = limit === undefined ? checks : limit === 'none' ? [] : ['public rate limit'];
      return expected.filter((check) => !ran.get(key)?.has(check)).map((check) => `${key}: ${check}`);
    });
    expect(missing).toEqual([]);
  });
});
