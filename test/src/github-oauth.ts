// A GitHub-style OAuth 2.0 server on 127.0.0.1 (node:http): the authorize redirect, the token
// endpoint (client credentials, single-use codes, PKCE S256 required) and the two REST calls a
// sign-in makes, GET /user and GET /user/emails. It answers like GitHub does, including a 200
// with an `error` body for a bad code.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface GithubTestEmail {
  email: string;
  primary: boolean;
  verified: boolean;
}

export interface GithubTestAccount {
  /** GitHub's numeric user id: the stable subject. */
  id: number;
  login: string;
  name: string | null;
  emails: GithubTestEmail[];
}

export interface TestGithubServer {
  /** Base URL; the settings below are under it. */
  url: string;
  authorizeUrl: string;
  tokenUrl: string;
  /** REST API base (GET /user, GET /user/emails). */
  apiUrl: string;
  clientId: string;
  clientSecret: string;
  /** The account the next authorization signs in as. */
  setAccount(account: GithubTestAccount): void;
  /** The next authorization is refused by the "user" (redirect with error=access_denied). */
  denyNext(): void;
  /** What the token endpoint did, in order: `issued`, or the error it answered. */
  tokenOutcomes: string[];
  close(): Promise<void>;
}

export interface GithubServerOptions {
  /** The registered callback URL; authorization requests naming another are refused. */
  redirectUri: string;
  clientId?: string;
  clientSecret?: string;
  account?: GithubTestAccount;
}

interface PendingCode {
  challenge: string;
  redirectUri: string;
  account: GithubTestAccount;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Answers JSON; returns true so handlers can `return send(...)`. */
function send(res: ServerResponse, status: number, body: unknown): true {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
  return true;
}

/** client_id/client_secret from the form (client_secret_post) or HTTP Basic (client_secret_basic). */
function clientCredentials(req: IncomingMessage, form: URLSearchParams): { id: string | null; secret: string | null } {
  const header = req.headers.authorization ?? '';
  if (header.startsWith('Basic ')) {
    const [id = '', secret = ''] = Buffer.from(header.slice(6), 'base64').toString('utf8').split(':');
    return { id: decodeURIComponent(id), secret: decodeURIComponent(secret) };
  }
  return { id: form.get('client_id'), secret: form.get('client_secret') };
}

export async function startGithubOAuthServer(options: GithubServerOptions): Promise<TestGithubServer> {
  const clientId = options.clientId ?? `Iv1.${randomBytes(8).toString('hex')}`;
  const clientSecret = options.clientSecret ?? randomBytes(20).toString('hex');
  let account: GithubTestAccount = options.account ?? {
    id: 583231,
    login: 'octocat',
    name: 'The Octocat',
    emails: [{ email: 'octocat@example.com', primary: true, verified: true }],
  };
  let deny = false;
  const codes = new Map<string, PendingCode>();
  const tokens = new Map<string, GithubTestAccount>();
  const tokenOutcomes: string[] = [];

  const authorize = (url: URL, res: ServerResponse) => {
    const params = url.searchParams;
    if (params.get('client_id') !== clientId) return send(res, 404, { message: 'unknown client' });
    const redirectUri = params.get('redirect_uri') ?? options.redirectUri;
    if (redirectUri !== options.redirectUri)
      return send(res, 400, { message: 'The redirect_uri is not associated with this application.' });
    const back = new URL(redirectUri);
    const state = params.get('state');
    if (state !== null) back.searchParams.set('state', state);
    if (deny) {
      deny = false;
      back.searchParams.set('error', 'access_denied');
      back.searchParams.set('error_description', 'The user has denied your application access.');
    } else {
      const challenge = params.get('code_challenge');
      if (params.get('code_challenge_method') !== 'S256' || !challenge) return send(res, 400, { message: 'PKCE (S256) is required' });
      const code = randomBytes(10).toString('hex');
      codes.set(code, { challenge, redirectUri, account: structuredClone(account) });
      back.searchParams.set('code', code);
    }
    res.writeHead(302, { location: back.href });
    res.end();
    return true;
  };

  const accessToken = async (req: IncomingMessage, res: ServerResponse) => {
    const text = await readBody(req);
    const form = (req.headers['content-type'] ?? '').includes('application/json')
      ? new URLSearchParams(JSON.parse(text) as Record<string, string>)
      : new URLSearchParams(text);
    const asJson = (req.headers.accept ?? '').includes('application/json');
    const answer = (body: Record<string, string>): true => {
      // GitHub answers errors with 200 too.
      if (asJson) return send(res, 200, body);
      res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' });
      res.end(new URLSearchParams(body).toString());
      return true;
    };
    const refuse = (error: string): true => {
      tokenOutcomes.push(error);
      return answer({ error, error_description: error.replaceAll('_', ' ') });
    };
    const credentials = clientCredentials(req, form);
    if (credentials.id !== clientId || credentials.secret !== clientSecret) return refuse('incorrect_client_credentials');
    const code = form.get('code') ?? '';
    const pending = codes.get(code);
    // Single use: gone whether or not what follows checks out.
    codes.delete(code);
    if (!pending) return refuse('bad_verification_code');
    const redirectUri = form.get('redirect_uri');
    if (redirectUri !== null && redirectUri !== pending.redirectUri) return refuse('redirect_uri_mismatch');
    const verifier = form.get('code_verifier') ?? '';
    if (createHash('sha256').update(verifier).digest('base64url') !== pending.challenge) return refuse('bad_verification_code');
    const token = `gho_${randomBytes(18).toString('base64url')}`;
    tokens.set(token, pending.account);
    tokenOutcomes.push('issued');
    return answer({ access_token: token, scope: 'read:user,user:email', token_type: 'bearer' });
  };

  const api = (req: IncomingMessage, res: ServerResponse, path: string) => {
    const header = req.headers.authorization ?? '';
    const token = header.replace(/^(?:Bearer|token) /u, '');
    const owner = tokens.get(token);
    if (!owner) return send(res, 401, { message: 'Bad credentials' });
    if (path === '/user') return send(res, 200, { id: owner.id, login: owner.login, name: owner.name, email: null });
    return send(
      res,
      200,
      owner.emails.map((e) => ({ ...e, visibility: e.primary ? 'private' : null })),
    );
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const route = `${req.method ?? 'GET'} ${url.pathname}`;
    let handled: Promise<unknown>;
    if (route === 'GET /login/oauth/authorize') handled = Promise.resolve(authorize(url, res));
    else if (route === 'POST /login/oauth/access_token') handled = accessToken(req, res);
    else if (route === 'GET /user' || route === 'GET /user/emails') handled = Promise.resolve(api(req, res, url.pathname));
    else handled = Promise.resolve(send(res, 404, { message: 'Not Found' }));
    handled.catch(() => {
      send(res, 500, { message: 'fixture failure' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    authorizeUrl: `${url}/login/oauth/authorize`,
    tokenUrl: `${url}/login/oauth/access_token`,
    apiUrl: url,
    clientId,
    clientSecret,
    tokenOutcomes,
    setAccount(next) {
      account = next;
    },
    denyNext() {
      deny = true;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
