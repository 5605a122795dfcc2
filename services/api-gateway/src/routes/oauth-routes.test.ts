import { createHash } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { AppError } from '@portcullis/kit';
import { OAuthProvider } from '@portcullis/proto/auth';
import { Role } from '@portcullis/proto/common';
import { parseCookieHeader } from '../http/cookies.js';
import type { PublicContext, PublicRoute, RouteInput } from '../http/route.js';
import type { RequestInfo } from '../pipeline/index.js';
import { bindingCookieName, createOAuthRoutes, type OAuthRouteDeps } from './oauth-routes.js';

const request = { requestId: 'req-1', clientIp: '203.0.113.5' } as unknown as RequestInfo;
const context: PublicContext = { request, resolveContext: () => Promise.reject(new Error('not used')) };
const sha256 = (value: string) => createHash('sha256').update(value).digest('base64url');
const cookieValue = 'c'.repeat(43);

function setup({ secureCookies = true, completeFailure }: { secureCookies?: boolean; completeFailure?: AppError } = {}) {
  const calls: [string, unknown][] = [];
  const auth: OAuthRouteDeps['auth'] = {
    startOAuth(input) {
      calls.push(['startOAuth', input]);
      return Promise.resolve({ authorizationUrl: 'https://accounts.example/authorize?state=s', expiresInSeconds: 600 } as never);
    },
    completeOAuth(input) {
      calls.push(['completeOAuth', input]);
      if (completeFailure) return Promise.reject(completeFailure);
      return Promise.resolve({
        loginTicket: 'ticket',
        userId: 'user-1',
        ticketExpiresInSeconds: 300,
        phoneVerified: false,
        accountCreated: true,
        tenants: [{ tenantId: 'tenant-1', tenantName: 'Alpha', role: Role.ADMIN }],
      } as never);
    },
  };
  const routes = createOAuthRoutes({ auth, secureCookies });
  const route = (path: string): PublicRoute => {
    const found = routes.find((r) => r.path === path);
    if (!found) throw new Error(`no route ${path}`);
    return found;
  };
  const setCookies: string[] = [];
  const run = (path: string, input: Partial<RouteInput> & { params: Record<string, string> }) =>
    route(path).handle(context, { body: undefined, query: {}, setCookie: (cookie) => setCookies.push(cookie), ...input });
  return { calls, run, setCookies };
}

const start = '/api/auth/oauth/:provider/start';
const callback = '/api/auth/oauth/:provider/callback';

describe('oauth routes: start', () => {
  it('sets a random __Host- binding cookie, sends its SHA-256 to auth and redirects to the provider', async () => {
    const { run, calls, setCookies } = setup();
    const result = await run(start, { params: { provider: 'github' } });
    expect(result).toEqual({ status: 302, body: null, redirectTo: 'https://accounts.example/authorize?state=s' });
    expect(setCookies).toHaveLength(1);
    const cookie = setCookies[0] ?? '';
    expect(cookie).toMatch(/^__Host-portcullis_oauth=[A-Za-z0-9_-]{43}; Max-Age=600; Path=\/; HttpOnly; SameSite=Lax; Secure$/);
    const value = parseCookieHeader(cookie.split(';')[0])['__Host-portcullis_oauth'] ?? '';
    expect(calls).toEqual([['startOAuth', { provider: OAuthProvider.GITHUB, browserBinding: sha256(value) }]]);
  });

  it('gives every start its own cookie value', async () => {
    const { run, setCookies } = setup();
    await run(start, { params: { provider: 'google' } });
    await run(start, { params: { provider: 'google' } });
    expect(new Set(setCookies.map((c) => c.split(';')[0])).size).toBe(2);
  });

  it('answers JSON with mode=json', async () => {
    const { run } = setup();
    await expect(run(start, { params: { provider: 'google' }, query: { mode: 'json' } })).resolves.toEqual({
      body: { authorizationUrl: 'https://accounts.example/authorize?state=s', expiresIn: 600 },
    });
  });

  it('uses a plain, non-Secure cookie only when the gateway is plain-HTTP local development', async () => {
    const { run, setCookies } = setup({ secureCookies: false });
    await run(start, { params: { provider: 'google' } });
    expect(setCookies[0]).toMatch(/^portcullis_oauth=[A-Za-z0-9_-]{43}; Max-Age=600; Path=\/; HttpOnly; SameSite=Lax$/);
  });

  it('answers 404 for an unknown provider, without a cookie or a call', async () => {
    const { run, calls, setCookies } = setup();
    for (const provider of ['facebook', 'constructor', '__proto__', '']) {
      await expect(run(start, { params: { provider } })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    }
    expect(calls).toEqual([]);
    expect(setCookies).toEqual([]);
  });
});

describe('oauth routes: callback', () => {
  const cookies = { [bindingCookieName(true)]: cookieValue };

  it('passes the raw query, the cookie hash and the client address; answers like login; clears the cookie', async () => {
    const { run, calls, setCookies } = setup();
    const rawQuery = 'code=abc&state=x.y&iss=https%3A%2F%2Faccounts.google.com';
    const result = await run(callback, { params: { provider: 'google' }, rawQuery, cookies });
    expect(calls).toEqual([
      [
        'completeOAuth',
        { provider: OAuthProvider.GOOGLE, browserBinding: sha256(cookieValue), callbackQuery: rawQuery, clientIp: '203.0.113.5' },
      ],
    ]);
    expect(result).toEqual({
      body: {
        loginTicket: 'ticket',
        userId: 'user-1',
        ticketExpiresIn: 300,
        phoneVerified: false,
        tenants: [{ tenantId: 'tenant-1', tenantName: 'Alpha', role: 'admin' }],
        accountCreated: true,
      },
    });
    expect(setCookies).toEqual(['__Host-portcullis_oauth=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax; Secure']);
  });

  it.each([
    ['no cookie', {}],
    ['a malformed cookie', { '__Host-portcullis_oauth': 'short' }],
    ['only the non-__Host- cookie (could be planted by a sibling host)', { portcullis_oauth: cookieValue }],
  ])('answers 401 for %s, asks auth nothing, and still clears the cookie', async (_label, jar) => {
    const { run, calls, setCookies } = setup();
    await expect(run(callback, { params: { provider: 'google' }, rawQuery: 'code=a&state=b', cookies: jar })).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
    });
    expect(calls).toEqual([]);
    expect(setCookies).toHaveLength(1);
    expect(setCookies[0]).toContain('Max-Age=0');
  });

  it('clears the cookie when auth refuses the callback', async () => {
    const { run, setCookies } = setup({ completeFailure: new AppError('UNAUTHENTICATED', 'replayed') });
    await expect(run(callback, { params: { provider: 'github' }, rawQuery: 'code=a&state=b', cookies })).rejects.toMatchObject({
      message: 'replayed',
    });
    expect(setCookies[0]).toContain('Max-Age=0');
  });

  it('refuses an oversized query and an unknown provider', async () => {
    const { run, calls } = setup();
    await expect(run(callback, { params: { provider: 'google' }, rawQuery: 'x'.repeat(5000), cookies })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(run(callback, { params: { provider: 'gitlab' }, rawQuery: '', cookies })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(calls).toEqual([]);
  });
});

describe('cookie header parsing', () => {
  it('takes the first value of each name, skips malformed pairs and unquotes', () => {
    expect(parseCookieHeader('a=1; b="two"; a=3; bad; =x; c=')).toEqual({ a: '1', b: 'two', c: '' });
    expect(parseCookieHeader(undefined)).toEqual({});
  });

  it('has no prototype keys', () => {
    const cookies = parseCookieHeader('__proto__=x; constructor=y');
    expect(Object.getPrototypeOf(cookies)).toBeNull();
    expect(cookies['constructor']).toBe('y');
  });
});
