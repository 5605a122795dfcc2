// A real OpenID Connect provider (panva's oidc-provider) on 127.0.0.1, standing in for Google:
// discovery, authorization code + PKCE (required), ID tokens signed with its own RS256 key.
// Login and consent finish at once, as whichever account the test chose.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';

export interface OidcTestAccount {
  /** The `sub` claim. */
  sub: string;
  email?: string | undefined;
  /** The `email_verified` claim (omitted when undefined). */
  emailVerified?: boolean | undefined;
  name?: string | undefined;
}

export interface TestOidcProvider {
  /** The issuer (discovery at `<issuer>/.well-known/openid-configuration`). */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /**
   * The account the next sign-in finishes as. The provider keeps a session per browser (its
   * cookies), so switch accounts with a fresh browser.
   */
  setAccount(account: OidcTestAccount): void;
  /** Errors the provider reported (server_error and friends), for debugging failed tests. */
  errors: string[];
  close(): Promise<void>;
}

export interface OidcProviderOptions {
  /** The one redirect URI the client may use (the auth service's callback). */
  redirectUri: string;
  clientId?: string;
  clientSecret?: string;
  account?: OidcTestAccount;
}

const INTERACTION_PATH = /^\/interaction\/([A-Za-z0-9_-]+)(?:\?|$)/u;

export async function startOidcProvider(options: OidcProviderOptions): Promise<TestOidcProvider> {
  // Loaded on demand: only the tests that sign in with it pay for it.
  const { default: Provider } = await import('oidc-provider');
  const clientId = options.clientId ?? 'portcullis-test-client';
  const clientSecret = options.clientSecret ?? randomBytes(24).toString('base64url');
  const accounts = new Map<string, OidcTestAccount>();
  let current: OidcTestAccount = options.account ?? { sub: 'google-user-1', email: 'ada@example.com', emailVerified: true, name: 'Ada' };
  accounts.set(current.sub, current);
  const errors: string[] = [];

  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingKey = { ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: 'test-key' };

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [options.redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    pkce: { required: () => true },
    ttl: { AuthorizationCode: 60, Interaction: 600, Grant: 600, Session: 600, AccessToken: 600, IdToken: 600 },
    features: { devInteractions: { enabled: false } },
    // Like Google: the email claims are in the ID token itself, not only at userinfo.
    conformIdTokenClaims: false,
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    findAccount(_ctx: unknown, sub: string) {
      const account = accounts.get(sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        claims() {
          return Promise.resolve({
            sub,
            ...(account.email === undefined ? {} : { email: account.email }),
            ...(account.emailVerified === undefined ? {} : { email_verified: account.emailVerified }),
            ...(account.name === undefined ? {} : { name: account.name }),
          });
        },
      };
    },
  });
  for (const event of ['server_error', 'authorization.error', 'grant.error']) {
    provider.on(event, (_ctx: unknown, error: unknown) => errors.push(`${event}: ${String(error)}`));
  }

  /** Login and consent in one step: the chosen account, every requested scope granted. */
  const interact = async (req: IncomingMessage, res: ServerResponse) => {
    const details = await provider.interactionDetails(req, res);
    const accountId = current.sub;
    const grant = details.grantId
      ? ((await provider.Grant.find(details.grantId)) ?? new provider.Grant({ accountId, clientId }))
      : new provider.Grant({ accountId, clientId });
    grant.addOIDCScope(typeof details.params['scope'] === 'string' ? details.params['scope'] : 'openid');
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } }, { mergeWithLastSubmission: false });
  };

  const handle = provider.callback();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'GET' && INTERACTION_PATH.test(req.url ?? '')) {
      interact(req, res).catch((error: unknown) => {
        errors.push(`interaction: ${String(error)}`);
        res.statusCode = 500;
        res.end('interaction failed');
      });
      return;
    }
    handle(req, res);
  });

  return {
    issuer,
    clientId,
    clientSecret,
    errors,
    setAccount(account) {
      current = account;
      accounts.set(account.sub, account);
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
