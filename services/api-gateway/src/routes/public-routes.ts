import { AppError, z, type GrpcClient } from '@portcullis/kit';
import type { AuthService } from '@portcullis/proto/auth';
import type { Role } from '@portcullis/proto/common';
import type { DeviceEnrollmentService } from '@portcullis/proto/devices';
import type { TenantRegistryService } from '@portcullis/proto/tenant';
import { isoTime, presentSignIn, roleName } from '../http/presenters.js';
import { parseInput, type PublicRoute, type RouteInput } from '../http/route.js';
import { unverifiedSessionIdOf, type CookieSessions } from '../libraries/cookie-sessions.js';
import { createOAuthRoutes, type OAuthRouteDeps } from './oauth-routes.js';

export interface PublicRouteDeps {
  auth: Pick<
    GrpcClient<typeof AuthService>,
    'signUp' | 'login' | 'selectTenant' | 'inspectLoginTicket' | 'refreshTokens' | 'startPhoneVerification' | 'verifyPhone'
  > &
    OAuthRouteDeps['auth'];
  /** Mark cookies Secure (`__Host-` names); false only for plain-HTTP local development. */
  secureCookies: boolean;
  /** Browser sessions in HttpOnly cookies, with their CSRF tokens. */
  cookieSessions: CookieSessions;
  tenants: Pick<GrpcClient<typeof TenantRegistryService>, 'createTenant'>;
  devices: Pick<GrpcClient<typeof DeviceEnrollmentService>, 'startActivation'>;
  /** Fetches the auth service's JWKS document. */
  fetchJwks(): Promise<unknown>;
}

interface IssuedTokens {
  accessToken: string;
  tokenType: string;
  expiresInSeconds: number;
  refreshToken: string;
  refreshExpiresInSeconds: number;
  tenantId: string;
  role: Role;
  sessionId: string;
}

function presentTokens(tokens: IssuedTokens) {
  return {
    accessToken: tokens.accessToken,
    tokenType: tokens.tokenType,
    expiresIn: tokens.expiresInSeconds,
    refreshToken: tokens.refreshToken,
    refreshExpiresIn: tokens.refreshExpiresInSeconds,
    tenantId: tokens.tenantId,
    role: roleName(tokens.role),
    sessionId: tokens.sessionId,
  };
}

/**
 * The answer of a cookie-delivered sign-in: the tokens go into HttpOnly cookies (never into the
 * body, where a script could read them), the CSRF token for later changes into the body.
 */
function presentCookieSession(tokens: IssuedTokens, cookieSessions: CookieSessions, input: RouteInput) {
  if (!input.setCookie) throw new AppError('INTERNAL', 'this route needs to set cookies');
  const { cookies, csrfToken } = cookieSessions.deliver(tokens);
  for (const cookie of cookies) input.setCookie(cookie);
  return {
    tokenType: 'cookie',
    expiresIn: tokens.expiresInSeconds,
    refreshExpiresIn: tokens.refreshExpiresInSeconds,
    tenantId: tokens.tenantId,
    role: roleName(tokens.role),
    sessionId: tokens.sessionId,
    csrfToken,
  };
}

const delivery = z.enum(['body', 'cookie']).default('body');
const email = z.string().max(254);
const password = z.string().max(256);
const ticket = z.string().min(1).max(128);

/**
 * The complete allow-list of routes that do not pass the whole pipeline. Each one says why.
 * Anything not listed here is a ProtectedRoute.
 */
export function createPublicRoutes({ auth, tenants, devices, fetchJwks, secureCookies, cookieSessions }: PublicRouteDeps): PublicRoute[] {
  return [
    {
      // Anyone may create an account; it holds no tenant rights until a tenant is created or joined.
      kind: 'public',
      method: 'post',
      path: '/api/auth/signup',
      rateLimit: 'signIn',
      summary: 'Create an account (email + phone + password); the phone must be verified before creating a tenant',
      async handle({ request }, { body }) {
        const input = parseInput(
          z.object({ email, password, phone: z.string().min(1).max(32), displayName: z.string().max(100).default('') }),
          body,
        );
        const { userId } = await auth.signUp(input, { requestId: request.requestId });
        return { status: 201, body: { userId } };
      },
    },
    {
      // Credentials are verified by the auth service; the answer is a ticket, not a tenant token.
      kind: 'public',
      method: 'post',
      path: '/api/auth/login',
      rateLimit: 'signIn',
      summary: 'Verify email + password; returns a single-use login ticket and the tenants of the account',
      async handle({ request }, { body }) {
        const input = parseInput(z.object({ email, password }), body);
        const result = await auth.login({ ...input, clientIp: request.clientIp }, { requestId: request.requestId });
        return { body: presentSignIn(result) };
      },
    },
    {
      // Authenticated by the login ticket, which the auth service consumes.
      kind: 'public',
      method: 'post',
      path: '/api/auth/select-tenant',
      rateLimit: 'signIn',
      summary: 'Exchange a login ticket for an access token bound to one tenant (in the body, or a cookie session with delivery: "cookie")',
      async handle({ request }, routeInput) {
        const { delivery: deliverTo, ...input } = parseInput(
          z.object({ loginTicket: ticket, tenantId: z.uuid(), delivery }),
          routeInput.body,
        );
        const result = await auth.selectTenant(
          { ...input, clientIp: request.clientIp, userAgent: request.userAgent },
          { requestId: request.requestId },
        );
        return { body: deliverTo === 'cookie' ? presentCookieSession(result, cookieSessions, routeInput) : presentTokens(result) };
      },
    },
    {
      // Authenticated by the login ticket (not consumed); the code goes only to the account's own phone, at most once per resend
      // window. `phone` sets the number first, for an account without one (Google/GitHub) or with an unverified one.
      kind: 'public',
      method: 'post',
      path: '/api/auth/phone/start',
      rateLimit: 'sms',
      summary: "Send a 6-digit verification code by SMS to the signed-in account's phone number (optionally setting it first)",
      async handle({ request }, { body }) {
        const input = parseInput(z.object({ loginTicket: ticket, phone: z.string().max(32).default('') }), body);
        const started = await auth.startPhoneVerification(input, { requestId: request.requestId });
        return {
          body: { phone: started.phoneMasked, codeExpiresIn: started.codeExpiresInSeconds, resendAfter: started.resendAfterSeconds },
        };
      },
    },
    {
      // Authenticated by the login ticket (not consumed); the auth service caps the attempts per code.
      kind: 'public',
      method: 'post',
      path: '/api/auth/phone/verify',
      rateLimit: 'sms',
      summary: 'Confirm the SMS code; marks the phone number verified',
      async handle({ request }, { body }) {
        const input = parseInput(z.object({ loginTicket: ticket, code: z.string().regex(/^\d{6}$/u) }), body);
        const { phoneVerified } = await auth.verifyPhone(input, { requestId: request.requestId });
        return { body: { phoneVerified } };
      },
    },
    {
      // Authenticated by the refresh token itself, which the auth service spends (reuse ends the session).
      kind: 'public',
      method: 'post',
      path: '/api/auth/refresh',
      rateLimit: 'signIn',
      summary: 'Exchange a refresh token for new tokens; with delivery: "cookie", the cookie session\'s (X-CSRF-Token required)',
      async handle({ request }, routeInput) {
        const input = parseInput(
          z.union([
            z.object({ refreshToken: z.string().min(1).max(128), delivery: z.literal('body').default('body') }),
            z.object({ delivery: z.literal('cookie') }),
          ]),
          routeInput.body,
        );
        if ('refreshToken' in input) {
          return { body: presentTokens(await auth.refreshTokens({ refreshToken: input.refreshToken }, { requestId: request.requestId })) };
        }
        // A cookie session: the refresh token is the cookie's, and the request must carry the
        // session's CSRF token, so no other origin can make the browser rotate its tokens.
        const cookies = routeInput.cookies ?? {};
        const sessionId = unverifiedSessionIdOf(cookies[cookieSessions.names.access]);
        const refreshToken = cookies[cookieSessions.names.refresh];
        if (sessionId === undefined || refreshToken === undefined || refreshToken === '') {
          throw new AppError('UNAUTHENTICATED', 'no cookie session to refresh; sign in again');
        }
        if (!cookieSessions.isValidCsrfToken(sessionId, request.csrfToken)) {
          throw new AppError(
            'PERMISSION_DENIED',
            'missing or invalid CSRF token: send X-CSRF-Token with every change made in a cookie session',
          );
        }
        const clear = () => {
          for (const cookie of cookieSessions.clear()) routeInput.setCookie?.(cookie);
        };
        const result = await auth
          .refreshTokens({ refreshToken: refreshToken.slice(0, 128) }, { requestId: request.requestId })
          .catch((error: unknown) => {
            clear();
            throw error;
          });
        if (result.sessionId !== sessionId) {
          clear();
          throw new AppError('UNAUTHENTICATED', 'the session cookies do not belong together; sign in again');
        }
        return { body: presentCookieSession(result, cookieSessions, routeInput) };
      },
    },
    {
      // No tenant exists yet to authorize against: authenticated by the login ticket, refused until the account's
      // phone is verified; the creator becomes owner.
      kind: 'public',
      method: 'post',
      path: '/api/tenants',
      rateLimit: 'signIn',
      summary: 'Create a tenant; the signed-in account becomes its owner',
      async handle({ request }, { body }) {
        const input = parseInput(z.object({ loginTicket: ticket, name: z.string().min(1).max(100) }), body);
        const { userId, phoneVerified } = await auth.inspectLoginTicket(
          { loginTicket: input.loginTicket },
          { requestId: request.requestId },
        );
        if (!phoneVerified) throw new AppError('FAILED_PRECONDITION', 'verify your phone number before creating a tenant');
        const { tenant } = await tenants.createTenant({ name: input.name, ownerUserId: userId }, { requestId: request.requestId });
        if (!tenant) throw new AppError('INTERNAL', 'tenant registry returned no tenant');
        return { status: 201, body: { tenantId: tenant.id, name: tenant.name, role: 'owner' } };
      },
    },
    {
      // A device has no credential before activation; the code it gets is useless until a signed-in user binds it.
      kind: 'public',
      method: 'post',
      path: '/api/devices/activations',
      rateLimit: 'activationStart',
      summary: "Start a device activation on the assistant of the request's domain; returns a 6-character code",
      async handle({ request, resolveContext }, { body }) {
        const input = parseInput(z.object({ deviceName: z.string().min(1).max(100) }), body);
        const { target } = await resolveContext();
        if (!target?.assistantId) throw new AppError('INVALID_ARGUMENT', "send this to the assistant's domain or set X-Assistant-Id");
        const started = await devices.startActivation(
          { tenantId: target.tenantId, assistantId: target.assistantId, deviceName: input.deviceName },
          { requestId: request.requestId },
        );
        return { status: 201, body: { sessionId: started.sessionId, code: started.code, expiresAt: isoTime(started.expiresAt) } };
      },
    },
    // Google/GitHub sign-in: start (sets the browser-binding cookie, redirects to the provider) and callback
    // (authenticated by the provider's code, the signed state and that cookie; the auth service does every check).
    ...createOAuthRoutes({ auth, secureCookies }),
    {
      // Public keys only.
      kind: 'public',
      method: 'get',
      path: '/.well-known/jwks.json',
      rateLimit: 'none',
      summary: 'Public keys that verify Portcullis access tokens',
      async handle() {
        return { body: await fetchJwks() };
      },
    },
  ];
}
