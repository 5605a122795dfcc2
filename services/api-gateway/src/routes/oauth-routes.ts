import { createHash, randomBytes } from 'node:crypto';
import { AppError, z, type GrpcClient } from '@portcullis/kit';
import { OAuthProvider, type AuthService } from '@portcullis/proto/auth';
import { presentSignIn } from '../http/presenters.js';
import { parseInput, type PublicRoute, type RouteInput } from '../http/route.js';

export interface OAuthRouteDeps {
  auth: Pick<GrpcClient<typeof AuthService>, 'startOAuth' | 'completeOAuth'>;
  /** Secure cookies with the `__Host-` prefix; false only for plain-HTTP local development. */
  secureCookies: boolean;
}

const providers = { google: OAuthProvider.GOOGLE, github: OAuthProvider.GITHUB } as const;

/** 32 random bytes in unpadded base64url. */
const COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/u;
/** Longer than any real callback; the auth service applies the same bound. */
const CALLBACK_QUERY_MAX_LENGTH = 4096;

/**
 * The browser-binding cookie. `__Host-` (Secure, Path=/, no Domain) so no subdomain or plain-HTTP
 * page can plant or overwrite it; browsers refuse that prefix without Secure, hence the plain
 * name in local HTTP development.
 */
export function bindingCookieName(secure: boolean): string {
  return secure ? '__Host-portcullis_oauth' : 'portcullis_oauth';
}

/** What the auth service receives instead of the cookie: SHA-256, base64url. */
export function browserBindingOf(cookieValue: string): string {
  return createHash('sha256').update(cookieValue).digest('base64url');
}

function providerOf(params: Record<string, string>): OAuthProvider {
  const name = params['provider'] ?? '';
  if (!Object.hasOwn(providers, name)) throw new AppError('NOT_FOUND', 'no such sign-in provider');
  return providers[name as keyof typeof providers];
}

function setCookieOf(input: RouteInput): (cookie: string) => void {
  if (!input.setCookie) throw new AppError('INTERNAL', 'this route needs to set cookies');
  return input.setCookie;
}

/**
 * Google and GitHub sign-in, public by nature (the person is not signed in yet):
 *
 * - `GET /api/auth/oauth/:provider/start` sets a fresh random binding cookie (HttpOnly,
 *   SameSite=Lax so it comes back on the provider's top-level redirect) and sends the browser
 *   to the provider; `?mode=json` answers `{authorizationUrl, expiresIn}` instead of a 302.
 * - `GET /api/auth/oauth/:provider/callback` clears the cookie (single use, whatever the
 *   outcome) and hands the raw query string and the cookie's SHA-256 to the auth service, which
 *   checks the signed state, the binding, single use, PKCE and the ID token. The answer is the
 *   same as a password login's, plus `accountCreated`.
 *
 * There is no caller-supplied redirect anywhere: the callback URLs are fixed by the auth
 * service's configuration, so there is nothing to redirect openly.
 */
export function createOAuthRoutes({ auth, secureCookies }: OAuthRouteDeps): PublicRoute[] {
  const cookieName = bindingCookieName(secureCookies);
  const attributes = `Path=/; HttpOnly; SameSite=Lax${secureCookies ? '; Secure' : ''}`;

  return [
    {
      // Nothing is granted here: the binding cookie only ties the coming callback to this browser.
      kind: 'public',
      method: 'get',
      path: '/api/auth/oauth/:provider/start',
      rateLimit: 'oauth',
      summary: 'Start Google or GitHub sign-in: sets the browser-binding cookie and redirects to the provider',
      async handle({ request }, input) {
        const provider = providerOf(input.params);
        const { mode } = parseInput(z.object({ mode: z.enum(['redirect', 'json']).default('redirect') }), input.query);
        const setCookie = setCookieOf(input);
        const value = randomBytes(32).toString('base64url');
        const started = await auth.startOAuth({ provider, browserBinding: browserBindingOf(value) }, { requestId: request.requestId });
        setCookie(`${cookieName}=${value}; Max-Age=${started.expiresInSeconds}; ${attributes}`);
        if (mode === 'json') return { body: { authorizationUrl: started.authorizationUrl, expiresIn: started.expiresInSeconds } };
        return { status: 302, body: null, redirectTo: started.authorizationUrl };
      },
    },
    {
      // Authenticated by the provider's code, the HMAC-signed state and the binding cookie, all checked by the auth service.
      kind: 'public',
      method: 'get',
      path: '/api/auth/oauth/:provider/callback',
      rateLimit: 'oauth',
      summary: 'Finish Google or GitHub sign-in; returns a login ticket and the tenants, like /api/auth/login',
      async handle({ request }, input) {
        const provider = providerOf(input.params);
        // Spent by this request whatever happens next.
        setCookieOf(input)(`${cookieName}=; Max-Age=0; ${attributes}`);
        const value = input.cookies?.[cookieName];
        if (value === undefined || !COOKIE_VALUE.test(value)) {
          throw new AppError('UNAUTHENTICATED', 'the sign-in cookie is missing: start the sign-in again in this browser');
        }
        const callbackQuery = input.rawQuery ?? '';
        if (callbackQuery.length > CALLBACK_QUERY_MAX_LENGTH) throw new AppError('INVALID_ARGUMENT', 'the callback query is too long');
        const result = await auth.completeOAuth(
          { provider, browserBinding: browserBindingOf(value), callbackQuery, clientIp: request.clientIp },
          { requestId: request.requestId },
        );
        return { body: { ...presentSignIn(result), accountCreated: result.accountCreated } };
      },
    },
  ];
}
