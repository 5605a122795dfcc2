import { AppError, type Logger } from '@portcullis/kit';
import * as client from 'openid-client';
import type { OAuthProviderName } from './oauth-state.js';

/** Who the provider says signed in. */
export interface ProviderIdentity {
  /** The provider's stable account id (Google `sub`, GitHub numeric user id). */
  subject: string;
  /** Undefined when the provider gave none. */
  email: string | undefined;
  /** True only when the provider vouches that the person controls `email`. */
  emailVerified: boolean;
  /** May be empty. */
  displayName: string;
}

export interface AuthorizationRequest {
  state: string;
  codeChallenge: string;
  /** Sent only by providers that use one (OpenID Connect). */
  nonce: string | undefined;
}

export interface CallbackRedemption {
  /** The callback's query parameters as the browser brought them. */
  callbackQuery: URLSearchParams;
  codeVerifier: string;
  /** The state this sign-in was started with. */
  state: string;
  nonce: string | undefined;
}

/** One sign-in provider: where to send the browser, and how to redeem its callback. */
export interface OAuthProviderClient {
  readonly name: OAuthProviderName;
  /** Whether the authorization request carries a nonce that the ID token must echo. */
  readonly usesNonce: boolean;
  /** The exact redirect_uri registered with the provider. */
  readonly redirectUri: string;
  authorizationUrl(request: AuthorizationRequest): Promise<URL>;
  /** Redeems the code (PKCE) and returns the verified identity; AppError on any failure. */
  redeem(redemption: CallbackRedemption): Promise<ProviderIdentity>;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** True for the hostnames of this machine (as URL.hostname writes them). */
export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname.toLowerCase());
}

/** https:// anywhere; http:// only to a loopback host and only when insecure loopback is allowed. */
export function isAllowedEndpoint(url: URL, allowInsecureLoopback: boolean): boolean {
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && allowInsecureLoopback && isLoopbackHost(url.hostname);
}

/** The callback URL of a provider under the gateway's public base URL. */
export function callbackUrl(redirectBaseUrl: string, provider: OAuthProviderName): string {
  return `${redirectBaseUrl.replace(/\/+$/u, '')}/api/auth/oauth/${provider}/callback`;
}

/** The part of fetch the providers use (tests may pass their own). */
export type Fetch = (url: string, init: RequestInit) => Promise<Response>;

/**
 * Every request to a provider goes through this: https only, except plain http to loopback
 * when allowed (development and tests). Discovered endpoints are held to the same rule, so a
 * discovery document cannot point the service at an arbitrary http:// address.
 */
export function guardedFetch(fetchImpl: Fetch, allowInsecureLoopback: boolean): Fetch {
  return (url, init) => {
    if (!isAllowedEndpoint(new URL(url), allowInsecureLoopback)) {
      return Promise.reject(new AppError('UPSTREAM_FAILED', `refusing a non-https provider endpoint (${new URL(url).origin})`));
    }
    return fetchImpl(url, init);
  };
}

/** openid-client's fetch hook over a guarded fetch. */
function customFetchOf(fetchImpl: Fetch, allowInsecureLoopback: boolean): client.CustomFetch {
  const guarded = guardedFetch(fetchImpl, allowInsecureLoopback);
  return (url, { body, ...options }) => guarded(url, body === undefined ? options : { ...options, body });
}

/** Provider errors that mean "this sign-in does not check out" rather than "the provider is unreachable". */
const REFUSAL_CODES = new Set<string>([
  'OAUTH_JWT_CLAIM_COMPARISON_FAILED',
  'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED',
  'OAUTH_JWT_TIMESTAMP_CHECK_FAILED',
  'OAUTH_INVALID_RESPONSE',
  'OAUTH_PARSE_ERROR',
  'OAUTH_KEY_SELECTION_FAILED',
]);

/**
 * Turns whatever the provider exchange threw into an AppError. Only the error's class, code and
 * OAuth error code are logged: causes may hold response bodies (tokens, claims).
 */
export function providerFailure(provider: OAuthProviderName, error: unknown, logger: Logger): AppError {
  if (error instanceof AppError) return error;
  const refused = (reason: string) =>
    new AppError('UNAUTHENTICATED', `${provider} sign-in could not be verified (${reason}); start it again`);
  if (error instanceof client.ResponseBodyError) {
    logger.info({ provider, oauthError: error.error, status: error.status }, 'provider refused the authorization code');
    if (error.status >= 500) return new AppError('UPSTREAM_FAILED', `${provider} is not answering properly; try again later`);
    return refused(safeErrorCode(error.error));
  }
  if (error instanceof client.AuthorizationResponseError) {
    logger.info({ provider, oauthError: error.error }, 'provider returned an authorization error');
    return refused(safeErrorCode(error.error));
  }
  if (error instanceof client.ClientError && error.code !== undefined && REFUSAL_CODES.has(error.code)) {
    logger.info({ provider, code: error.code, message: error.message }, 'provider response failed verification');
    return refused('the provider response did not verify');
  }
  const name = error instanceof Error ? error.name : typeof error;
  const code = error instanceof client.ClientError ? error.code : undefined;
  logger.warn({ provider, errorName: name, code }, 'provider exchange failed');
  return new AppError('UPSTREAM_FAILED', `${provider} could not be reached; try again later`);
}

/** An OAuth error code fit to repeat in a message (they are short snake_case tokens). */
export function safeErrorCode(value: unknown): string {
  return typeof value === 'string' && /^[a-z_]{1,64}$/u.test(value) ? value : 'unknown_error';
}

export interface ProviderCommonConfig {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  allowInsecureLoopback: boolean;
  /** Per-request timeout towards the provider. */
  timeoutSeconds: number;
  logger: Logger;
  fetch?: Fetch;
}

function configure(config: client.Configuration, common: ProviderCommonConfig): client.Configuration {
  config.timeout = common.timeoutSeconds;
  config[client.customFetch] = customFetchOf(common.fetch ?? fetch, common.allowInsecureLoopback);
  // openid-client's own https check is replaced by guardedFetch, which allows only loopback http.
  // eslint-disable-next-line @typescript-eslint/no-deprecated -- deprecated only as a warning sign; used for loopback in development and tests
  if (common.allowInsecureLoopback) client.allowInsecureRequests(config);
  return config;
}

function callbackUrlOf(redirectUri: string, query: URLSearchParams): URL {
  const url = new URL(redirectUri);
  url.search = query.toString();
  return url;
}

export interface GoogleConfig extends ProviderCommonConfig {
  /** OpenID Connect issuer, e.g. https://accounts.google.com; endpoints are discovered. */
  issuer: string;
}

/**
 * Google (or any OpenID Connect provider): discovery on first use (retried after a failure,
 * cached after success), authorization code + PKCE S256 + nonce, and the ID token validated by
 * openid-client (issuer, audience, expiry, nonce). The email counts only with
 * `email_verified === true`.
 */
export function createGoogleProvider(settings: GoogleConfig): OAuthProviderClient {
  const { clientId, clientSecret, redirectUri, logger } = settings;
  let discovered: Promise<client.Configuration> | undefined;
  const configuration = (): Promise<client.Configuration> => {
    discovered ??= client
      .discovery(new URL(settings.issuer), clientId, clientSecret, undefined, {
        [client.customFetch]: customFetchOf(settings.fetch ?? fetch, settings.allowInsecureLoopback),
        timeout: settings.timeoutSeconds,
        // eslint-disable-next-line @typescript-eslint/no-deprecated -- as in configure(): loopback development and tests only
        execute: settings.allowInsecureLoopback ? [client.allowInsecureRequests] : [],
      })
      .then((config) => configure(config, settings))
      .catch((error: unknown) => {
        discovered = undefined;
        throw providerFailure('google', error, logger);
      });
    return discovered;
  };

  return {
    name: 'google',
    usesNonce: true,
    redirectUri,
    async authorizationUrl({ state, codeChallenge, nonce }) {
      if (nonce === undefined) throw new AppError('INTERNAL', 'google sign-in needs a nonce');
      return client.buildAuthorizationUrl(await configuration(), {
        redirect_uri: redirectUri,
        response_type: 'code',
        scope: 'openid email profile',
        state,
        nonce,
        code_challenge: codeChallenge,
        code_challenge_method: 'S256',
      });
    },
    async redeem({ callbackQuery, codeVerifier, state, nonce }) {
      if (nonce === undefined) throw new AppError('INTERNAL', 'google sign-in needs a nonce');
      const config = await configuration();
      try {
        const tokens = await client.authorizationCodeGrant(config, callbackUrlOf(redirectUri, callbackQuery), {
          pkceCodeVerifier: codeVerifier,
          expectedState: state,
          expectedNonce: nonce,
          idTokenExpected: true,
        });
        const claims = tokens.claims();
        if (!claims) throw new AppError('UNAUTHENTICATED', 'google returned no ID token; start the sign-in again');
        const email = typeof claims.email === 'string' ? claims.email : undefined;
        return {
          subject: claims.sub,
          email,
          emailVerified: claims.email_verified === true,
          displayName: typeof claims.name === 'string' ? claims.name : '',
        };
      } catch (error) {
        throw providerFailure('google', error, logger);
      }
    },
  };
}

export interface GithubConfig extends ProviderCommonConfig {
  authorizeUrl: string;
  tokenUrl: string;
  /** REST API base, e.g. https://api.github.com. */
  apiUrl: string;
}

interface GithubUser {
  id: number;
  login: string;
  name: string | null;
}

interface GithubEmail {
  email: string;
  primary: boolean;
  verified: boolean;
}

function isGithubUser(value: unknown): value is GithubUser {
  if (typeof value !== 'object' || value === null) return false;
  const { id, login, name } = value as Record<string, unknown>;
  return (
    Number.isSafeInteger(id) &&
    (id as number) > 0 &&
    typeof login === 'string' &&
    (name === null || name === undefined || typeof name === 'string')
  );
}

function isGithubEmails(value: unknown): value is GithubEmail[] {
  return (
    Array.isArray(value) &&
    value.every((entry: unknown) => {
      if (typeof entry !== 'object' || entry === null) return false;
      const { email, primary, verified } = entry as Record<string, unknown>;
      return typeof email === 'string' && typeof primary === 'boolean' && typeof verified === 'boolean';
    })
  );
}

/**
 * GitHub: plain OAuth 2.0 (no ID token), so the Configuration is built from static metadata.
 * Authorization code + PKCE S256; the identity comes from GET /user (the numeric id is the
 * subject: logins can be renamed) and GET /user/emails, where only the primary address counts
 * and only when GitHub marks it verified.
 */
export function createGithubProvider(settings: GithubConfig): OAuthProviderClient {
  const { clientId, clientSecret, redirectUri, logger } = settings;
  const authorize = new URL(settings.authorizeUrl);
  const config = configure(
    new client.Configuration(
      { issuer: authorize.origin, authorization_endpoint: settings.authorizeUrl, token_endpoint: settings.tokenUrl },
      clientId,
      { client_secret: clientSecret },
      client.ClientSecretPost(clientSecret),
    ),
    settings,
  );
  const apiFetch = guardedFetch(settings.fetch ?? fetch, settings.allowInsecureLoopback);
  const api = async (path: string, accessToken: string): Promise<unknown> => {
    const response = await apiFetch(`${settings.apiUrl.replace(/\/+$/u, '')}${path}`, {
      headers: {
        accept: 'application/vnd.github+json',
        authorization: `Bearer ${accessToken}`,
        'user-agent': 'portcullis-auth',
        'x-github-api-version': '2022-11-28',
      },
      redirect: 'error',
      signal: AbortSignal.timeout(settings.timeoutSeconds * 1000),
    });
    if (response.status === 401 || response.status === 403) {
      throw new AppError('UNAUTHENTICATED', `github refused the access token at ${path}; start the sign-in again`);
    }
    if (!response.ok) throw new AppError('UPSTREAM_FAILED', `github answered ${response.status} at ${path}; try again later`);
    return response.json();
  };

  return {
    name: 'github',
    usesNonce: false,
    redirectUri,
    authorizationUrl({ state, codeChallenge }) {
      return Promise.resolve(
        client.buildAuthorizationUrl(config, {
          redirect_uri: redirectUri,
          scope: 'read:user user:email',
          state,
          code_challenge: codeChallenge,
          code_challenge_method: 'S256',
        }),
      );
    },
    async redeem({ callbackQuery, codeVerifier, state }) {
      try {
        const tokens = await client.authorizationCodeGrant(config, callbackUrlOf(redirectUri, callbackQuery), {
          pkceCodeVerifier: codeVerifier,
          expectedState: state,
        });
        const user = await api('/user', tokens.access_token);
        if (!isGithubUser(user)) throw new AppError('UPSTREAM_FAILED', 'github returned an unexpected user document');
        const emails = await api('/user/emails', tokens.access_token);
        if (!isGithubEmails(emails)) throw new AppError('UPSTREAM_FAILED', 'github returned an unexpected email list');
        const primary = emails.find((entry) => entry.primary);
        return {
          subject: String(user.id),
          email: primary?.email,
          emailVerified: primary?.verified === true,
          displayName: user.name ?? user.login,
        };
      } catch (error) {
        throw providerFailure('github', error, logger);
      }
    },
  };
}
