// Google and GitHub sign-in through the gateway, every process spawned: a scripted browser with
// a cookie jar runs start → provider → callback, then selects a tenant and calls the API.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { demo, httpJson, newestSmsCode, signIn } from '../../deploy/local/seed.mjs';
import { startGithubOAuthServer, type TestGithubServer } from '../src/github-oauth.js';
import { createTestBrowser, type TestBrowser } from '../src/oauth-browser.js';
import { startOidcProvider, type TestOidcProvider } from '../src/oidc-provider.js';
import { startTestPlatform, type TestPlatform } from '../src/platform.js';

interface SignInBody {
  loginTicket: string;
  userId: string;
  accountCreated: boolean;
  phoneVerified: boolean;
  tenants: { tenantId: string; tenantName: string; role: string }[];
}

interface ErrorBody {
  error: { code: string; message: string };
}

/** The plain-HTTP platform uses the non-`__Host-` cookie name. */
const bindingCookie = 'portcullis_oauth';

describe('Google and GitHub sign-in through the gateway', () => {
  let platform: TestPlatform;
  let google: TestOidcProvider;
  let github: TestGithubServer;
  let gatewayHost: string;

  beforeAll(async () => {
    platform = await startTestPlatform({
      async oauth(gatewayUrl) {
        google = await startOidcProvider({ redirectUri: `${gatewayUrl}/api/auth/oauth/google/callback` });
        github = await startGithubOAuthServer({ redirectUri: `${gatewayUrl}/api/auth/oauth/github/callback` });
        return {
          redirectBaseUrl: gatewayUrl,
          allowInsecureLoopback: true,
          google: { clientId: google.clientId, clientSecret: google.clientSecret, issuer: google.issuer },
          github: {
            clientId: github.clientId,
            clientSecret: github.clientSecret,
            authorizeUrl: github.authorizeUrl,
            tokenUrl: github.tokenUrl,
            apiUrl: github.apiUrl,
          },
        };
      },
    });
    gatewayHost = new URL(platform.gatewayUrl).hostname;
  }, 180_000);

  afterAll(async () => {
    // beforeAll may have failed before these existed.
    /* eslint-disable @typescript-eslint/no-unnecessary-condition */
    await platform?.stop();
    await google?.close();
    await github?.close();
    /* eslint-enable @typescript-eslint/no-unnecessary-condition */
  }, 60_000);

  const isCallback = (provider: string) => (url: URL) =>
    url.origin === platform.gatewayUrl && url.pathname === `/api/auth/oauth/${provider}/callback`;

  /** start → provider → the callback URL (not yet delivered). */
  const authorize = async (provider: 'google' | 'github', browser: TestBrowser = createTestBrowser()) => {
    const started = await browser.get(`${platform.gatewayUrl}/api/auth/oauth/${provider}/start`);
    expect(started.status).toBe(302);
    expect(started.headers.getSetCookie().join('\n')).toMatch(
      new RegExp(`^${bindingCookie}=[A-Za-z0-9_-]{43}; Max-Age=\\d+; Path=/; HttpOnly; SameSite=Lax$`, 'm'),
    );
    const cookie = browser.cookie(gatewayHost, bindingCookie);
    expect(cookie).toBeDefined();
    const callback = await browser.followUntil(started.location ?? '', isCallback(provider));
    return { browser, callback, cookie: cookie ?? '' };
  };

  const deliver = async (browser: TestBrowser, callback: URL) => {
    const response = await browser.get(callback);
    return { status: response.status, body: JSON.parse(response.text) as SignInBody & ErrorBody, headers: response.headers };
  };

  const selectAndReadContext = async (loginTicket: string, tenantId: string) => {
    const selected = await httpJson(platform.gatewayUrl, 'POST', '/api/auth/select-tenant', { body: { loginTicket, tenantId } });
    expect(selected.status).toBe(200);
    const { accessToken } = selected.body as { accessToken: string };
    const context = await httpJson(platform.gatewayUrl, 'GET', '/api/context', { token: accessToken });
    expect(context.status).toBe(200);
    return context.body as { tenant: { id: string }; principal: { id: string; role: string } };
  };

  it('links Google to the seeded user by verified email, then signs into the tenant; the old password is gone', async () => {
    const { users, tenantId } = platform.seeded;
    google.setAccount({ sub: 'google-user-of-user-alpha', email: demo.accounts.user, emailVerified: true, name: 'Alpha User' });
    const { browser, callback } = await authorize('google');
    const answer = await deliver(browser, callback);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ userId: users.user, accountCreated: false });
    expect(answer.body.tenants).toContainEqual({ tenantId, tenantName: demo.tenantName, role: 'user' });
    // The binding cookie is spent.
    expect(answer.headers.getSetCookie().join('\n')).toContain(`${bindingCookie}=; Max-Age=0`);
    expect(browser.cookie(gatewayHost, bindingCookie)).toBeUndefined();

    const context = await selectAndReadContext(answer.body.loginTicket, tenantId);
    expect(context).toMatchObject({ tenant: { id: tenantId }, principal: { id: users.user, role: 'user' } });

    // Password sign-ups never verified their email: the provider-verified sign-in reclaimed the account.
    const login = await httpJson(platform.gatewayUrl, 'POST', '/api/auth/login', {
      body: { email: demo.accounts.user, password: platform.passwords.user },
    });
    expect(login.status).toBe(401);
  });

  it('refuses a replayed callback, with or without the old cookie', async () => {
    google.setAccount({ sub: 'google-replay', email: 'replay@oauth.example', emailVerified: true });
    const { browser, callback, cookie } = await authorize('google');
    expect((await deliver(browser, callback)).status).toBe(200);
    const withoutCookie = await deliver(browser, callback);
    expect(withoutCookie.status).toBe(401);
    browser.setCookie(gatewayHost, bindingCookie, cookie);
    const withCookie = await deliver(browser, callback);
    expect(withCookie.status).toBe(401);
    expect(withCookie.body.error.message).toContain('already completed');
  });

  it('refuses the callback in another browser, and the browser that started it can still finish', async () => {
    google.setAccount({ sub: 'google-victim', email: 'victim@oauth.example', emailVerified: true });
    const victim = await authorize('google');
    // An attacker with a sign-in cookie of their own opens the victim's callback (login CSRF, stolen link).
    const attacker = createTestBrowser();
    await attacker.get(`${platform.gatewayUrl}/api/auth/oauth/google/start`);
    const stolen = await deliver(attacker, victim.callback);
    expect(stolen.status).toBe(401);
    expect(stolen.body.error.code).toBe('UNAUTHENTICATED');
    expect((await deliver(victim.browser, victim.callback)).status).toBe(200);
  });

  it('creates a GitHub account, which sees a tenant once the owner adds it', async () => {
    const { tenantId } = platform.seeded;
    github.setAccount({
      id: 9_000_001,
      login: 'hubber',
      name: 'Hub Ber',
      emails: [{ email: 'hubber@oauth.example', primary: true, verified: true }],
    });
    const first = await (async () => {
      const { browser, callback } = await authorize('github');
      return deliver(browser, callback);
    })();
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ accountCreated: true, phoneVerified: false, tenants: [] });

    const ownerToken = await signIn(platform.gatewayUrl, demo.accounts.owner, platform.passwords.owner, tenantId);
    const added = await httpJson(platform.gatewayUrl, 'POST', '/api/members', {
      token: ownerToken,
      body: { userId: first.body.userId, role: 'user' },
    });
    expect(added.status).toBe(201);

    const { browser, callback } = await authorize('github');
    const second = await deliver(browser, callback);
    expect(second.body).toMatchObject({ userId: first.body.userId, accountCreated: false });
    expect(second.body.tenants.map((t) => t.tenantId)).toEqual([tenantId]);
    const context = await selectAndReadContext(second.body.loginTicket, tenantId);
    expect(context.principal).toEqual({ id: first.body.userId, role: 'user' });
  });

  it('lets a new Google account add and verify a phone number, then create its own tenant', async () => {
    google.setAccount({ sub: 'google-founder-1', email: 'founder@oauth.example', emailVerified: true, name: 'Founder' });
    const { browser, callback } = await authorize('google');
    const signedIn = await deliver(browser, callback);
    expect(signedIn.body).toMatchObject({ accountCreated: true, phoneVerified: false, tenants: [] });
    const { loginTicket } = signedIn.body;
    const post = (path: string, body: Record<string, unknown>) => httpJson(platform.gatewayUrl, 'POST', path, { body });

    // No number on the account yet: a code needs one.
    const withoutNumber = await post('/api/auth/phone/start', { loginTicket });
    expect(withoutNumber.status).toBe(400);
    expect((withoutNumber.body as ErrorBody).error.code).toBe('FAILED_PRECONDITION');
    const phone = '+15550109876';
    const started = await post('/api/auth/phone/start', { loginTicket, phone: '+1 555 010 9876' });
    expect(started.status).toBe(200);
    const code = await newestSmsCode(platform.smsOutboxFile, phone);
    expect((await post('/api/auth/phone/verify', { loginTicket, code })).body).toEqual({ phoneVerified: true });
    // A verified number is not replaced this way.
    const replace = await post('/api/auth/phone/start', { loginTicket, phone: '+15550100000' });
    expect((replace.body as ErrorBody).error.code).toBe('FAILED_PRECONDITION');

    const created = await post('/api/tenants', { loginTicket, name: 'Founders Inc' });
    expect(created.status).toBe(201);
    const { tenantId } = created.body as { tenantId: string };
    const context = await selectAndReadContext(loginTicket, tenantId);
    expect(context.principal).toEqual({ id: signedIn.body.userId, role: 'owner' });
  });

  it('refuses a GitHub account without a verified primary email', async () => {
    github.setAccount({
      id: 9_000_002,
      login: 'unverified',
      name: null,
      emails: [{ email: 'unverified@oauth.example', primary: true, verified: false }],
    });
    const { browser, callback } = await authorize('github');
    const answer = await deliver(browser, callback);
    expect(answer.status).toBe(403);
    expect(answer.body.error.message).toContain('verified email');
  });

  it('answers 404 for an unknown provider, 401 for a callback without the cookie, and JSON with mode=json', async () => {
    const browser = createTestBrowser();
    expect((await browser.get(`${platform.gatewayUrl}/api/auth/oauth/facebook/start`)).status).toBe(404);
    expect((await browser.get(`${platform.gatewayUrl}/api/auth/oauth/facebook/callback?code=a&state=b`)).status).toBe(404);
    const noCookie = await browser.get(`${platform.gatewayUrl}/api/auth/oauth/google/callback?code=a&state=b`);
    expect(noCookie.status).toBe(401);
    const json = await browser.get(`${platform.gatewayUrl}/api/auth/oauth/github/start?mode=json`);
    expect(json.status).toBe(200);
    const body = JSON.parse(json.text) as { authorizationUrl: string; expiresIn: number };
    expect(body.authorizationUrl.startsWith(github.authorizeUrl)).toBe(true);
    expect(body.expiresIn).toBe(600);
    expect(browser.cookie(gatewayHost, bindingCookie)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});
