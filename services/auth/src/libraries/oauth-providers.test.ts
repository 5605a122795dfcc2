import { describe, expect, it } from '@jest/globals';
import { createLogger } from '@portcullis/kit';
import { callbackUrl, createGithubProvider, guardedFetch, isAllowedEndpoint, type Fetch } from './oauth-providers.js';

const logger = createLogger({ name: 'oauth-providers-test', level: 'silent' });

describe('provider endpoints', () => {
  it.each([
    ['https://accounts.google.com', false, true],
    ['http://accounts.google.com', true, false],
    ['http://127.0.0.1:9000', false, false],
    ['http://127.0.0.1:9000', true, true],
    ['http://localhost:9000', true, true],
    ['http://[::1]:9000', true, true],
    ['http://10.0.0.1', true, false],
    ['ftp://127.0.0.1', true, false],
  ])('%s with insecure loopback %s → allowed %s', (url, insecure, allowed) => {
    expect(isAllowedEndpoint(new URL(url), insecure)).toBe(allowed);
  });

  it('refuses to send anything to a disallowed endpoint', async () => {
    const sent: string[] = [];
    const guarded = guardedFetch((url) => {
      sent.push(url);
      return Promise.resolve(new Response('{}'));
    }, true);
    await expect(guarded('http://metadata.internal/latest', {})).rejects.toMatchObject({ code: 'UPSTREAM_FAILED' });
    await guarded('http://127.0.0.1:1/x', {});
    expect(sent).toEqual(['http://127.0.0.1:1/x']);
  });

  it('puts callbacks under the gateway base URL', () => {
    expect(callbackUrl('https://console.example.com/', 'github')).toBe('https://console.example.com/api/auth/oauth/github/callback');
  });
});

interface GithubBehaviour {
  token: { status: number; body: unknown };
  userStatus: number;
  emails: unknown;
}

/** GitHub's token endpoint and API, answered in memory. */
function fakeGithub(behaviour: GithubBehaviour) {
  const requests: { url: string; body: string; authorization: string | undefined }[] = [];
  const json = (status: number, body: unknown) =>
    new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  const fetchImpl: Fetch = (url, init) => {
    const headers = new Headers(init.headers);
    requests.push({
      url,
      body: init.body instanceof URLSearchParams ? init.body.toString() : typeof init.body === 'string' ? init.body : '',
      authorization: headers.get('authorization') ?? undefined,
    });
    const path = new URL(url).pathname;
    if (path === '/login/oauth/access_token') return Promise.resolve(json(behaviour.token.status, behaviour.token.body));
    if (path === '/user') return Promise.resolve(json(behaviour.userStatus, { id: 4242, login: 'ada', name: null }));
    if (path === '/user/emails') return Promise.resolve(json(200, behaviour.emails));
    return Promise.resolve(json(404, {}));
  };
  const provider = createGithubProvider({
    clientId: 'gh-client',
    clientSecret: 'gh-secret',
    redirectUri: 'https://console.example.com/api/auth/oauth/github/callback',
    authorizeUrl: 'https://github.com/login/oauth/authorize',
    tokenUrl: 'https://github.com/login/oauth/access_token',
    apiUrl: 'https://api.github.com',
    allowInsecureLoopback: false,
    timeoutSeconds: 5,
    logger,
    fetch: fetchImpl,
  });
  const redeem = () =>
    provider.redeem({
      callbackQuery: new URLSearchParams({ code: 'the-code', state: 'the-state' }),
      codeVerifier: 'v'.repeat(43),
      state: 'the-state',
      nonce: undefined,
    });
  return { provider, requests, redeem };
}

const okToken = { status: 200, body: { access_token: 'gho_token', token_type: 'bearer', scope: 'read:user,user:email' } };

describe('github provider', () => {
  it('builds the authorization URL with PKCE S256 and the scopes it needs', async () => {
    const { provider } = fakeGithub({ token: okToken, userStatus: 200, emails: [] });
    const url = await provider.authorizationUrl({ state: 's', codeChallenge: 'c', nonce: undefined });
    expect(url.origin + url.pathname).toBe('https://github.com/login/oauth/authorize');
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      client_id: 'gh-client',
      redirect_uri: 'https://console.example.com/api/auth/oauth/github/callback',
      scope: 'read:user user:email',
      state: 's',
      code_challenge: 'c',
      code_challenge_method: 'S256',
    });
  });

  it('redeems the code with the verifier and takes the numeric id and the verified primary email', async () => {
    const { redeem, requests } = fakeGithub({
      token: okToken,
      userStatus: 200,
      emails: [
        { email: 'other@example.com', primary: false, verified: true },
        { email: 'ada@example.com', primary: true, verified: true },
      ],
    });
    await expect(redeem()).resolves.toEqual({ subject: '4242', email: 'ada@example.com', emailVerified: true, displayName: 'ada' });
    const token = new URLSearchParams(requests[0]?.body);
    expect(Object.fromEntries(token)).toMatchObject({
      grant_type: 'authorization_code',
      code: 'the-code',
      code_verifier: 'v'.repeat(43),
      client_id: 'gh-client',
      client_secret: 'gh-secret',
      redirect_uri: 'https://console.example.com/api/auth/oauth/github/callback',
    });
    expect(requests.slice(1).map((r) => [r.url, r.authorization])).toEqual([
      ['https://api.github.com/user', 'Bearer gho_token'],
      ['https://api.github.com/user/emails', 'Bearer gho_token'],
    ]);
  });

  it('does not vouch for an unverified primary email, even when another address is verified', async () => {
    const { redeem } = fakeGithub({
      token: okToken,
      userStatus: 200,
      emails: [
        { email: 'ada@example.com', primary: true, verified: false },
        { email: 'other@example.com', primary: false, verified: true },
      ],
    });
    await expect(redeem()).resolves.toMatchObject({ email: 'ada@example.com', emailVerified: false });
  });

  it('refuses a code GitHub rejects (GitHub answers 200 with an error body)', async () => {
    const { redeem } = fakeGithub({ token: { status: 200, body: { error: 'bad_verification_code' } }, userStatus: 200, emails: [] });
    await expect(redeem()).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('refuses an invalid_grant from the token endpoint, and reports an outage as UPSTREAM_FAILED', async () => {
    await expect(
      fakeGithub({ token: { status: 400, body: { error: 'invalid_grant' } }, userStatus: 200, emails: [] }).redeem(),
    ).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      message: expect.stringContaining('invalid_grant'),
    });
    await expect(fakeGithub({ token: { status: 502, body: 'bad gateway' }, userStatus: 200, emails: [] }).redeem()).rejects.toMatchObject({
      code: 'UPSTREAM_FAILED',
    });
  });

  it('refuses when the API rejects the token, and an unexpected email list', async () => {
    await expect(fakeGithub({ token: okToken, userStatus: 401, emails: [] }).redeem()).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(fakeGithub({ token: okToken, userStatus: 200, emails: { message: 'nope' } }).redeem()).rejects.toMatchObject({
      code: 'UPSTREAM_FAILED',
    });
  });
});
