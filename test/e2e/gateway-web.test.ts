// The gateway's web-security features through every real service (Redis, NATS, Postgres):
// rate limits per person and per client address, cookie sessions with their CSRF tokens, the
// security headers, CORS, the OpenAPI document, body limits, assistant ids that cannot be
// probed, and TLS termination (a gateway replica with a certificate from a CA made in the test).
// Two platforms, one after the other: one with small rate limits, one with the harness's
// out-of-reach limits.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { createGrpcClient } from '@portcullis/kit';
import { AuditService, Outcome } from '@portcullis/proto/audit';
import { demo, httpJson, signIn, type HttpJsonResponse } from '../../deploy/local/seed.mjs';
import { infra, pollUntil, testRunId } from '../src/infra.js';
import { startTestPlatform, unreachableRateLimits, type TestPlatform } from '../src/platform.js';
import { issueCertificate, privateKeyPem } from '../src/test-pki.js';

/** Starting a platform and seeding it; stopping it. */
const platformStartMs = 120_000;
const platformStopMs = 60_000;
/** One test: a few dozen requests, and at most one bounded poll of the audit trail. */
const testMs = 30_000;

interface ErrorEnvelope {
  error: { code: string; message: string; requestId: string };
}

/** A response header as one string (undefined when absent). */
function header(response: HttpJsonResponse, name: string): string | undefined {
  const value = response.headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** The error of a refused request, checked to be the gateway's envelope for this very request. */
function errorOf(response: HttpJsonResponse): ErrorEnvelope['error'] {
  const body = response.body as ErrorEnvelope;
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error).toEqual({ code: expect.any(String), message: expect.any(String), requestId: header(response, 'x-request-id') });
  return body.error;
}

/** `code` and `message` of a refusal, for comparing two answers. */
const refusalOf = (response: HttpJsonResponse) => {
  const { code, message } = errorOf(response);
  return { status: response.status, code, message };
};

describe('rate limits, per person and per client address, through every real service', () => {
  /**
   * Sign-in class requests (`sensitive.signIn`, counted per client address: every request of this
   * run comes from 127.0.0.1) that happen before the sign-in test:
   * - seedDemo: Alpha's owner signs up, logs in, creates Alpha Corp and selects it (4); the admin
   *   and the user sign up and log in (4); Beta's owner signs up, logs in, creates Beta Labs and
   *   selects it (4) — 12;
   * - this block's beforeAll signs in Alpha's user and admin (login + select-tenant each) — 4.
   * Three more are left for wrong passwords: fewer than the auth service's own limit of failures
   * per account (LOGIN_MAX_FAILURES_PER_ACCOUNT, 5), so the auth service alone would still accept
   * the right password. The window outlasts the whole run, so it cannot restart mid-test.
   */
  const signInsBeforeTheTest = 12 + 4;
  const wrongPasswordsAllowed = 3;
  const signInLimit = { points: signInsBeforeTheTest + wrongPasswordsAllowed, windowSeconds: 3_600 };
  /**
   * Per person: seedDemo makes six requests as Alpha's owner (context, assistant, domain, two
   * members, tool) in one window, so this must exceed six. This block's per-person test uses
   * Alpha's user, whose first protected request is that test's.
   */
  const perPerson = { points: 10, windowSeconds: 60 };
  /** Everything else is out of reach: the tenant's bucket, API keys (the audit reads), robots, devices. */
  const roomy = { points: 1_000_000, windowSeconds: 60 };
  const plan = { tenant: roomy, user: perPerson, apiKey: roomy, robot: roomy, device: roomy };
  const rateLimits = {
    plans: { free: plan, pro: plan, enterprise: plan },
    defaultPlan: 'free',
    sensitive: { ...unreachableRateLimits.sensitive, signIn: signInLimit },
  };

  let platform: TestPlatform;
  let tokens: { user: string; admin: string };

  beforeAll(async () => {
    platform = await startTestPlatform({ rateLimits });
    const { gatewayUrl, passwords, seeded } = platform;
    tokens = {
      user: await signIn(gatewayUrl, demo.accounts.user, passwords.user, seeded.tenantId),
      admin: await signIn(gatewayUrl, demo.accounts.admin, passwords.admin, seeded.tenantId),
    };
  }, platformStartMs);

  afterAll(async () => {
    // beforeAll may have failed before the platform existed.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    await platform?.stop();
  }, platformStopMs);

  const context = (token: string) => httpJson(platform.gatewayUrl, 'GET', '/api/context', { token, host: demo.host });

  it(
    "answers RateLimit-* headers, refuses a person's request beyond the plan's limit with 429 and Retry-After for the rest of the window, leaves other people alone, and audits the refusal",
    async () => {
      const allowed: HttpJsonResponse[] = [];
      for (let i = 0; i < perPerson.points; i += 1) allowed.push(await context(tokens.user));
      expect(allowed.map((r) => r.status)).toEqual(allowed.map(() => 200));
      // The person's bucket is the tightest (the tenant's is roomy): its count goes down by one per request.
      expect(allowed.map((r) => header(r, 'ratelimit-remaining'))).toEqual(allowed.map((_, i) => String(perPerson.points - 1 - i)));
      for (const response of allowed) {
        expect(header(response, 'ratelimit-limit')).toBe(String(perPerson.points));
        expect(header(response, 'ratelimit-policy')).toBe(`${perPerson.points};w=${perPerson.windowSeconds}`);
        const reset = Number(header(response, 'ratelimit-reset'));
        expect(Number.isInteger(reset) && reset >= 1 && reset <= perPerson.windowSeconds).toBe(true);
      }

      const refused = await context(tokens.user);
      expect(refused.status).toBe(429);
      expect(errorOf(refused)).toMatchObject({
        code: 'RATE_LIMITED',
        message: expect.stringMatching(/^too many requests; retry in \d+ s$/),
      });
      const retryAfter = Number(header(refused, 'retry-after'));
      expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= perPerson.windowSeconds).toBe(true);
      expect(header(refused, 'ratelimit-remaining')).toBe('0');

      // Nothing more of this person is let through in the window, whatever the route.
      const after = [
        await context(tokens.user),
        await httpJson(platform.gatewayUrl, 'GET', '/api/auth/sessions', { token: tokens.user }),
        await httpJson(platform.gatewayUrl, 'POST', `/api/tools/${demo.toolName}/invoke`, {
          token: tokens.user,
          host: demo.host,
          body: { input: { after: true } },
        }),
      ];
      expect(after.map((r) => [r.status, errorOf(r).code, header(r, 'retry-after') !== undefined])).toEqual(
        after.map(() => [429, 'RATE_LIMITED', true]),
      );

      // Another person of the same tenant has a bucket of their own, untouched.
      const admin = await context(tokens.admin);
      expect(admin.status).toBe(200);
      expect(header(admin, 'ratelimit-remaining')).toBe(String(perPerson.points - 1));

      // The refusal is in the tenant's audit trail. Read as the platform auditor (over the audit
      // service's gRPC API), so polling cannot spend anyone's per-person points.
      const auditor = createGrpcClient(AuditService, {
        address: `127.0.0.1:${String(platform.ports.audit.grpc)}`,
        deadlineMs: 5_000,
        credential: platform.identityOf('platform-auditor').credentialFor('audit'),
      });
      const requestId = errorOf(refused).requestId;
      const entry = await pollUntil(
        async () => {
          const listed = await auditor.listEvents({ tenantId: platform.seeded.tenantId, pageSize: 200 });
          const found = listed.events.find((e) => e.requestId === requestId);
          return (
            found && {
              kind: found.kind,
              outcome: found.outcome,
              reason: found.reason,
              object: found.object,
              action: found.action,
              principal: { id: found.principal?.id },
            }
          );
        },
        { timeoutMs: 15_000, intervalMs: 200, what: 'the rate-limit refusal in the audit trail' },
      ).finally(() => auditor.close());
      expect(entry).toMatchObject({
        kind: 'authz.decision',
        outcome: Outcome.DENY,
        reason: 'rate limit exceeded',
        object: 'tenant',
        action: 'read',
        principal: { id: platform.seeded.users.user },
      });
    },
    testMs,
  );

  it(
    'refuses sign-ins from one address beyond sensitive.signIn with 429 before the auth service is asked, the right password included',
    async () => {
      const login = (password: string) =>
        httpJson(platform.gatewayUrl, 'POST', '/api/auth/login', { body: { email: demo.accounts.user, password } });
      const wrong = [];
      for (let i = 0; i < wrongPasswordsAllowed; i += 1) wrong.push(await login(`wrong-${randomBytes(6).toString('hex')}-Pc1`));
      // The auth service answers these (the gateway counts them first, and says what is left).
      expect(wrong.map((r) => [r.status, errorOf(r).code, header(r, 'ratelimit-remaining')])).toEqual(
        wrong.map((_, i) => [401, 'UNAUTHENTICATED', String(wrongPasswordsAllowed - 1 - i)]),
      );

      const refusals = [await login(`wrong-${randomBytes(6).toString('hex')}-Pc1`), await login(platform.passwords.user)];
      for (const refused of refusals) {
        expect(refused.status).toBe(429);
        // The gateway's refusal (the auth service's own says "too many failed sign-ins").
        expect(errorOf(refused)).toMatchObject({
          code: 'RATE_LIMITED',
          message: expect.stringMatching(/^too many requests; retry in \d+ s$/),
        });
        expect(header(refused, 'ratelimit-policy')).toBe(`${signInLimit.points};w=${signInLimit.windowSeconds}`);
        expect(header(refused, 'ratelimit-remaining')).toBe('0');
        const retryAfter = Number(header(refused, 'retry-after'));
        expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= signInLimit.windowSeconds).toBe(true);
      }

      // The auth service counts every password attempt for the account before checking it, and a
      // right password would have deleted the count: it still holds exactly the three it answered,
      // so neither refused attempt reached it (auth README: <prefix>login-failures:account:<sha256 hex>).
      const redis = new Redis(infra.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await redis.connect();
      try {
        const account = createHash('sha256').update(demo.accounts.user).digest('hex');
        expect(await redis.get(`${testRunId}:login-failures:account:${account}`)).toBe(String(wrongPasswordsAllowed));
      } finally {
        redis.disconnect();
      }
    },
    testMs,
  );
});

describe('cookie sessions, CSRF and web security through every real service', () => {
  /**
   * The harness starts the gateway without OAuth, so COOKIE_SECURE keeps its default (true): the
   * cookies carry the `__Host-` prefix. Node's HTTP client sends whatever Cookie header it is given
   * over plain HTTP.
   */
  const names = { session: '__Host-portcullis_session', refresh: '__Host-portcullis_refresh' };

  let platform: TestPlatform;
  /** Alpha's owner's access token in the body (an Authorization header), and Beta's owner's. */
  let tokens: { owner: string; betaOwner: string };

  beforeAll(async () => {
    platform = await startTestPlatform();
    const { gatewayUrl, passwords, seeded } = platform;
    tokens = {
      owner: await signIn(gatewayUrl, demo.accounts.owner, passwords.owner, seeded.tenantId),
      betaOwner: await signIn(gatewayUrl, demo.accounts.betaOwner, passwords.betaOwner, seeded.beta.tenantId),
    };
  }, platformStartMs);

  afterAll(async () => {
    // beforeAll may have failed before the platform existed.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    await platform?.stop();
  }, platformStopMs);

  interface SetCookie {
    value: string;
    /** Lowercased, e.g. `httponly`, `samesite=strict`, `max-age=0`. */
    attributes: string[];
  }

  /** The Set-Cookie headers of an answer, by cookie name. */
  function setCookiesOf(response: HttpJsonResponse): Record<string, SetCookie> {
    const raw = response.headers['set-cookie'] ?? [];
    const cookies: Record<string, SetCookie> = {};
    for (const line of Array.isArray(raw) ? raw : [raw]) {
      const [pair = '', ...attributes] = line.split(';').map((part) => part.trim());
      const eq = pair.indexOf('=');
      cookies[pair.slice(0, eq)] = { value: pair.slice(eq + 1), attributes: attributes.map((a) => a.toLowerCase()) };
    }
    return cookies;
  }

  /** What a browser holds of a cookie session: the two cookies' values, and the CSRF token from the body. */
  interface CookieSession {
    session: string;
    refresh: string;
    csrfToken: string;
  }

  const cookieHeader = ({ session, refresh }: Pick<CookieSession, 'session' | 'refresh'>) =>
    `${names.session}=${session}; ${names.refresh}=${refresh}`;

  /** Alpha's owner signs in with `delivery: "cookie"`; returns the answer and the session it set. */
  async function startCookieSession(): Promise<{ selected: HttpJsonResponse; cookies: CookieSession }> {
    const { gatewayUrl, passwords, seeded } = platform;
    const login = await httpJson(gatewayUrl, 'POST', '/api/auth/login', {
      body: { email: demo.accounts.owner, password: passwords.owner },
    });
    expect(login.status).toBe(200);
    const { loginTicket } = login.body as { loginTicket: string };
    const selected = await httpJson(gatewayUrl, 'POST', '/api/auth/select-tenant', {
      body: { loginTicket, tenantId: seeded.tenantId, delivery: 'cookie' },
    });
    expect(selected.status).toBe(200);
    const set = setCookiesOf(selected);
    return {
      selected,
      cookies: {
        session: set[names.session]?.value ?? '',
        refresh: set[names.refresh]?.value ?? '',
        csrfToken: (selected.body as { csrfToken: string }).csrfToken,
      },
    };
  }

  /** A request of the browser holding `cookies` (and sending `csrfToken` as X-CSRF-Token when given), on Alpha's domain. */
  const asBrowser = (
    method: string,
    path: string,
    cookies: Pick<CookieSession, 'session' | 'refresh'>,
    { csrfToken, body, token }: { csrfToken?: string; body?: unknown; token?: string } = {},
  ) =>
    httpJson(platform.gatewayUrl, method, path, {
      host: demo.host,
      headers: { cookie: cookieHeader(cookies), ...(csrfToken === undefined ? {} : { 'x-csrf-token': csrfToken }) },
      ...(body === undefined ? {} : { body }),
      ...(token === undefined ? {} : { token }),
    });

  const invokeBody = { input: { hello: 'cookie' } };

  /** Both cookies removed: empty values that expire at once, with the attributes that set them. */
  function expectCleared(response: HttpJsonResponse) {
    const set = setCookiesOf(response);
    expect(Object.keys(set).sort()).toEqual([names.refresh, names.session]);
    for (const cookie of Object.values(set)) {
      expect(cookie.value).toBe('');
      expect(cookie.attributes).toEqual(expect.arrayContaining(['max-age=0', 'path=/', 'httponly', 'samesite=strict', 'secure']));
    }
  }

  describe('cookie sessions', () => {
    it(
      'select-tenant with delivery "cookie" sets two HttpOnly, SameSite=Strict __Host- cookies and answers a CSRF token but no token',
      async () => {
        const { selected, cookies } = await startCookieSession();
        const set = setCookiesOf(selected);
        expect(Object.keys(set).sort()).toEqual([names.refresh, names.session]);
        const body = selected.body as Record<string, unknown>;
        expect(body).toEqual({
          tokenType: 'cookie',
          expiresIn: expect.any(Number),
          refreshExpiresIn: expect.any(Number),
          tenantId: platform.seeded.tenantId,
          role: 'owner',
          sessionId: expect.any(String),
          csrfToken: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
        });
        for (const cookie of Object.values(set)) {
          expect(cookie.value.length).toBeGreaterThan(0);
          expect(cookie.attributes).toEqual(
            expect.arrayContaining(['path=/', 'httponly', 'samesite=strict', 'secure', `max-age=${String(body['refreshExpiresIn'])}`]),
          );
          // `__Host-`: no Domain attribute.
          expect(cookie.attributes.filter((a) => a.startsWith('domain='))).toEqual([]);
        }
        // The access token is the session cookie: a JWT of this session, found nowhere in the body.
        expect(cookies.session).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
        const claims = JSON.parse(Buffer.from(cookies.session.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sid?: string };
        expect(claims.sid).toBe(body['sessionId']);
        const text = JSON.stringify(body);
        expect(text).not.toContain(cookies.session);
        expect(text).not.toContain(cookies.refresh);
      },
      testMs,
    );

    it(
      'the session cookie alone reads; a change needs the CSRF token of that very session; cookie and Authorization together are refused',
      async () => {
        const { cookies } = await startCookieSession();
        const { cookies: otherSession } = await startCookieSession();

        const read = await asBrowser('GET', '/api/context', cookies);
        expect(read.status).toBe(200);
        expect(read.body).toMatchObject({
          tenant: { id: platform.seeded.tenantId },
          principal: { id: platform.seeded.users.owner, role: 'owner' },
        });

        const invoke = (csrfToken?: string) =>
          asBrowser('POST', `/api/tools/${demo.toolName}/invoke`, cookies, { body: invokeBody, ...(csrfToken ? { csrfToken } : {}) });
        const withoutToken = await invoke();
        const csrfRefusal = {
          status: 403,
          code: 'PERMISSION_DENIED',
          message: 'missing or invalid CSRF token: send X-CSRF-Token with every change made in a cookie session',
        };
        expect(refusalOf(withoutToken)).toEqual(csrfRefusal);
        // Well-formed but wrong: random, and the token of another session of the same person.
        expect(refusalOf(await invoke(randomBytes(32).toString('base64url')))).toEqual(csrfRefusal);
        expect(otherSession.csrfToken).not.toBe(cookies.csrfToken);
        expect(refusalOf(await invoke(otherSession.csrfToken))).toEqual(csrfRefusal);

        const invoked = await invoke(cookies.csrfToken);
        expect(invoked.status).toBe(200);
        expect(invoked.body).toMatchObject({ output: { echo: invokeBody.input } });

        // Two credentials, even of the same person: refused.
        const both = await asBrowser('GET', '/api/context', cookies, { token: tokens.owner });
        expect(refusalOf(both)).toEqual({ status: 401, code: 'UNAUTHENTICATED', message: 'send exactly one credential' });
        // The refresh cookie is no credential for anything but /api/auth/refresh.
        const refreshOnly = await httpJson(platform.gatewayUrl, 'GET', '/api/context', {
          host: demo.host,
          headers: { cookie: `${names.refresh}=${cookies.refresh}` },
        });
        expect(refreshOnly.status).toBe(401);
        expect(errorOf(refreshOnly).code).toBe('UNAUTHENTICATED');
      },
      testMs,
    );

    it(
      'refresh with delivery "cookie" rotates both cookies (CSRF token required); the old refresh cookie is spent and its reuse ends the session',
      async () => {
        const { selected, cookies: first } = await startCookieSession();
        const sessionId = (selected.body as { sessionId: string }).sessionId;
        const refresh = (cookies: CookieSession, csrfToken?: string) =>
          asBrowser('POST', '/api/auth/refresh', cookies, { body: { delivery: 'cookie' }, ...(csrfToken ? { csrfToken } : {}) });

        // Without the CSRF token nothing is spent.
        const noToken = await refresh(first);
        expect(refusalOf(noToken)).toMatchObject({ status: 403, code: 'PERMISSION_DENIED' });
        expect(noToken.headers['set-cookie']).toBeUndefined();

        const rotated = await refresh(first, first.csrfToken);
        expect(rotated.status).toBe(200);
        expect(rotated.body).toEqual({
          tokenType: 'cookie',
          expiresIn: expect.any(Number),
          refreshExpiresIn: expect.any(Number),
          tenantId: platform.seeded.tenantId,
          role: 'owner',
          sessionId,
          // Bound to the session, which goes on.
          csrfToken: first.csrfToken,
        });
        const set = setCookiesOf(rotated);
        const second: CookieSession = {
          session: set[names.session]?.value ?? '',
          refresh: set[names.refresh]?.value ?? '',
          csrfToken: first.csrfToken,
        };
        expect(second.session).not.toBe('');
        expect(second.refresh).not.toBe('');
        expect(second.refresh).not.toBe(first.refresh);
        expect(second.session).not.toBe(first.session);
        expect((await asBrowser('GET', '/api/context', second)).status).toBe(200);

        // The old refresh cookie is spent: refused, the cookies cleared, and — reuse of a spent
        // refresh token — the whole session ends, the new cookies with it.
        const replayed = await refresh(first, first.csrfToken);
        expect(refusalOf(replayed)).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
        expectCleared(replayed);
        expect((await asBrowser('GET', '/api/context', second)).status).toBe(401);
        expect((await refresh(second, second.csrfToken)).status).toBe(401);
      },
      testMs,
    );

    it(
      'logout with the cookie and its CSRF token answers 204 and clears both cookies; the session cookie is then refused',
      async () => {
        const { cookies } = await startCookieSession();
        const noToken = await asBrowser('POST', '/api/auth/logout', cookies);
        expect(refusalOf(noToken)).toMatchObject({ status: 403, code: 'PERMISSION_DENIED' });
        expect((await asBrowser('GET', '/api/context', cookies)).status).toBe(200);

        const loggedOut = await asBrowser('POST', '/api/auth/logout', cookies, { csrfToken: cookies.csrfToken });
        expect(loggedOut.status).toBe(204);
        expectCleared(loggedOut);

        const after = await asBrowser('GET', '/api/context', cookies);
        expect(refusalOf(after)).toEqual({ status: 401, code: 'UNAUTHENTICATED', message: 'this session has ended; sign in again' });
        expect(
          (await asBrowser('POST', '/api/auth/refresh', cookies, { body: { delivery: 'cookie' }, csrfToken: cookies.csrfToken })).status,
        ).toBe(401);
      },
      testMs,
    );
  });

  describe('web security basics', () => {
    /** What every answer of the gateway carries. */
    function expectSecurityHeaders(response: HttpJsonResponse) {
      expect(header(response, 'content-security-policy')).toContain("default-src 'none'");
      expect(header(response, 'x-content-type-options')).toBe('nosniff');
      expect(header(response, 'strict-transport-security')).toMatch(/max-age=\d+/);
      expect(header(response, 'cache-control')).toBe('no-store');
      expect(header(response, 'x-request-id')).toMatch(/^[A-Za-z0-9._-]{1,64}$/);
    }

    const oversized = { input: { blob: 'x'.repeat(70 * 1024) } };
    const nested = (depth: number): unknown => {
      let value: unknown = 1;
      for (let i = 0; i < depth; i += 1) value = [value];
      return value;
    };

    it(
      'puts the security headers on every answer: success, refusal, unknown route, bad and oversized bodies',
      async () => {
        const { gatewayUrl } = platform;
        const answers: [string, HttpJsonResponse, number][] = [
          ['GET /api/openapi.json', await httpJson(gatewayUrl, 'GET', '/api/openapi.json'), 200],
          ['GET /.well-known/jwks.json', await httpJson(gatewayUrl, 'GET', '/.well-known/jwks.json'), 200],
          ['GET /api/context (owner)', await httpJson(gatewayUrl, 'GET', '/api/context', { token: tokens.owner, host: demo.host }), 200],
          ['GET /api/context (no credential)', await httpJson(gatewayUrl, 'GET', '/api/context', { host: demo.host }), 401],
          ['GET /api/no-such-route', await httpJson(gatewayUrl, 'GET', '/api/no-such-route'), 404],
          ['POST /api/auth/login {}', await httpJson(gatewayUrl, 'POST', '/api/auth/login', { body: {} }), 400],
          [
            'POST invoke (oversized)',
            await httpJson(gatewayUrl, 'POST', `/api/tools/${demo.toolName}/invoke`, { host: demo.host, body: oversized }),
            413,
          ],
        ];
        expect(answers.map(([name, response]) => [name, response.status])).toEqual(answers.map(([name, , status]) => [name, status]));
        for (const [, response] of answers) expectSecurityHeaders(response);

        // A well-formed X-Request-Id of the caller is kept.
        const traced = await httpJson(gatewayUrl, 'GET', '/api/openapi.json', { headers: { 'x-request-id': 'e2e-web.request-1' } });
        expect(header(traced, 'x-request-id')).toBe('e2e-web.request-1');
      },
      testMs,
    );

    it(
      'allows no cross-origin caller: a preflight from another origin gets no Access-Control-Allow-* (no CORS_ALLOWED_ORIGINS)',
      async () => {
        const origin = 'https://attacker.example';
        const preflight = await httpJson(platform.gatewayUrl, 'OPTIONS', `/api/tools/${demo.toolName}/invoke`, {
          host: demo.host,
          headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-csrf-token' },
        });
        expectSecurityHeaders(preflight);
        const cors = Object.keys(preflight.headers).filter((name) => name.startsWith('access-control-'));
        expect(cors).toEqual([]);
        // Without CORS the gateway has no OPTIONS route: the preflight is an unknown route like any other.
        expect(refusalOf(preflight)).toEqual({ status: 404, code: 'NOT_FOUND', message: 'no such route' });

        // The request itself, with a cookie session: answered, but nothing lets a browser show it to the page.
        const { cookies } = await startCookieSession();
        const read = await httpJson(platform.gatewayUrl, 'GET', '/api/context', {
          host: demo.host,
          headers: { origin, cookie: cookieHeader(cookies) },
        });
        expect(read.status).toBe(200);
        expect(Object.keys(read.headers).filter((name) => name.startsWith('access-control-'))).toEqual([]);
      },
      testMs,
    );

    it(
      'serves its OpenAPI 3.1 document, listing the tool invocation with its capability',
      async () => {
        const response = await httpJson(platform.gatewayUrl, 'GET', '/api/openapi.json');
        expect(response.status).toBe(200);
        expect(header(response, 'content-type')).toMatch(/^application\/json/);
        const document = response.body as { openapi: string; paths: Record<string, Record<string, Record<string, unknown>>> };
        expect(document.openapi).toMatch(/^3\.1\.\d+$/);
        expect(document.paths['/api/tools/{name}/invoke']?.['post']).toMatchObject({ 'x-portcullis-capability': 'tools:invoke' });
        expect(document.paths['/api/openapi.json']?.['get']).toMatchObject({ security: [] });
      },
      testMs,
    );

    it(
      'refuses an oversized body with 413 and a body nested 100 deep with 400, in the error envelope, before anything else',
      async () => {
        const send = (body: unknown) =>
          httpJson(platform.gatewayUrl, 'POST', `/api/tools/${demo.toolName}/invoke`, { token: tokens.owner, host: demo.host, body });
        const tooLarge = await send(oversized);
        expect(refusalOf(tooLarge)).toEqual({ status: 413, code: 'PAYLOAD_TOO_LARGE', message: 'request body is too large' });
        const tooDeep = await send({ input: nested(100) });
        expect(refusalOf(tooDeep)).toMatchObject({
          status: 400,
          code: 'INVALID_ARGUMENT',
          message: expect.stringContaining('nested too deeply'),
        });
        // The same caller with a body of ordinary size and depth is served.
        expect((await send({ input: nested(5) })).status).toBe(200);
      },
      testMs,
    );
  });

  describe('TLS termination', () => {
    it(
      'serves HTTPS with TLS 1.3 only when TLS_CERT_FILE and TLS_KEY_FILE are set (a gateway replica, a CA made here)',
      async () => {
        const dir = await mkdtemp(join(tmpdir(), 'portcullis-e2e-tls-'));
        try {
          const root = await issueCertificate({ subject: 'CN=Portcullis e2e Root CA', ca: true });
          const leaf = await issueCertificate({ subject: 'CN=localhost', issuer: root, ca: false });
          const certFile = join(dir, 'gateway.pem');
          const keyFile = join(dir, 'gateway-key.pem');
          await writeFile(certFile, leaf.pem);
          await writeFile(keyFile, await privateKeyPem(leaf.keys), { mode: 0o600 });
          const replica = await platform.startGatewayReplica({ TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile });
          const port = Number(new URL(replica.url).port);
          const get = (options: { maxVersion?: 'TLSv1.2' | 'TLSv1.3'; ca?: string }) =>
            new Promise<{ status: number | undefined; protocol: string | null; body: string }>((resolve, reject) => {
              const request = httpsRequest(
                {
                  host: '127.0.0.1',
                  port,
                  path: '/api/context',
                  servername: 'localhost',
                  headers: { host: demo.host, authorization: `Bearer ${tokens.owner}` },
                  agent: false,
                  ...options,
                },
                (response) => {
                  let body = '';
                  response.setEncoding('utf8');
                  response.on('data', (chunk: string) => (body += chunk));
                  response.on('end', () => {
                    const socket = response.socket;
                    resolve({ status: response.statusCode, protocol: socket instanceof TLSSocket ? socket.getProtocol() : null, body });
                  });
                },
              );
              request.on('error', reject);
              request.end();
            });
          const answer = await get({ ca: root.pem });
          expect({ status: answer.status, protocol: answer.protocol }).toEqual({ status: 200, protocol: 'TLSv1.3' });
          expect(JSON.parse(answer.body)).toMatchObject({ tenant: { id: platform.seeded.tenantId } });
          await expect(get({ ca: root.pem, maxVersion: 'TLSv1.2' })).rejects.toThrow(/protocol version|alert/i);
          await expect(get({})).rejects.toThrow(/certificate/i);
          await replica.stop();
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      },
      testMs,
    );
  });

  describe('assistant ids cannot be probed', () => {
    it(
      "answers Alpha's assistant id and an unknown one alike: 401 without a credential, 404 with another tenant's token",
      async () => {
        const found = await httpJson(platform.gatewayUrl, 'GET', '/api/context', { token: tokens.owner, host: demo.host });
        expect(found.status).toBe(200);
        const alphaAssistant = (found.body as { assistantId: string }).assistantId;
        expect(alphaAssistant).toBe(platform.seeded.assistantId);
        const unknown = randomUUID();

        // On the platform host (127.0.0.1), the tenant is named by X-Assistant-Id only.
        const probe = (assistantId: string, token?: string) =>
          httpJson(platform.gatewayUrl, 'GET', '/api/context', {
            headers: { 'x-assistant-id': assistantId },
            ...(token === undefined ? {} : { token }),
          });

        const anonymous = [refusalOf(await probe(alphaAssistant)), refusalOf(await probe(unknown))];
        expect(anonymous[0]).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
        expect(anonymous[1]).toEqual(anonymous[0]);

        const otherTenant = [refusalOf(await probe(alphaAssistant, tokens.betaOwner)), refusalOf(await probe(unknown, tokens.betaOwner))];
        expect(otherTenant[0]).toMatchObject({ status: 404, code: 'NOT_FOUND' });
        expect(otherTenant[1]).toEqual(otherTenant[0]);
      },
      testMs,
    );
  });
});
