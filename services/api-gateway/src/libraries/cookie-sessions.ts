import { createHmac, timingSafeEqual } from 'node:crypto';

export interface CookieSessionOptions {
  /** `__Host-` names and the Secure attribute; false only for plain-HTTP local development. */
  secure: boolean;
  /** The key CSRF tokens are derived with (CSRF_SECRET), the same on every replica. */
  csrfSecret: Buffer;
}

export interface DeliveredTokens {
  accessToken: string;
  refreshToken: string;
  refreshExpiresInSeconds: number;
  sessionId: string;
}

const CSRF_TOKEN = /^[A-Za-z0-9_-]{43}$/u;

/**
 * Browser sessions in cookies: the access token and the refresh token in two HttpOnly,
 * SameSite=Strict cookies (`__Host-` prefixed: Secure, Path=/, no Domain), both living as long
 * as the refresh token — the access token inside still expires by itself, and the client
 * refreshes. Because a browser sends cookies on its own, every state-changing request of a cookie
 * session must carry `X-CSRF-Token`: an HMAC of the session id under CSRF_SECRET (the HMAC-based
 * token pattern), given once with the cookies. It is bound to the session, needs no storage, and
 * a page of another origin can neither read it nor compute it.
 */
export function createCookieSessions({ secure, csrfSecret }: CookieSessionOptions) {
  const names = secure
    ? { access: '__Host-portcullis_session', refresh: '__Host-portcullis_refresh' }
    : { access: 'portcullis_session', refresh: 'portcullis_refresh' };
  const attributes = `Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;

  const csrfTokenFor = (sessionId: string) => createHmac('sha256', csrfSecret).update(`portcullis-csrf:${sessionId}`).digest('base64url');

  return {
    names,
    csrfTokenFor,

    /** Whether `token` is the CSRF token of this session (constant-time). */
    isValidCsrfToken(sessionId: string, token: string | undefined): boolean {
      if (token === undefined || !CSRF_TOKEN.test(token)) return false;
      return timingSafeEqual(Buffer.from(csrfTokenFor(sessionId)), Buffer.from(token));
    },

    /** The Set-Cookie values that deliver a session's tokens, and its CSRF token. */
    deliver(tokens: DeliveredTokens): { cookies: string[]; csrfToken: string } {
      const maxAge = `Max-Age=${tokens.refreshExpiresInSeconds}`;
      return {
        cookies: [
          `${names.access}=${tokens.accessToken}; ${maxAge}; ${attributes}`,
          `${names.refresh}=${tokens.refreshToken}; ${maxAge}; ${attributes}`,
        ],
        csrfToken: csrfTokenFor(tokens.sessionId),
      };
    },

    /** The Set-Cookie values that remove both cookies (logout, a refused refresh). */
    clear(): string[] {
      return [`${names.access}=; Max-Age=0; ${attributes}`, `${names.refresh}=; Max-Age=0; ${attributes}`];
    },
  };
}

export type CookieSessions = ReturnType<typeof createCookieSessions>;

/**
 * The session id (`sid`) in a JWT's payload, read WITHOUT verifying it: only to pick which
 * session a CSRF token must match before a refresh. Undefined for anything malformed.
 */
export function unverifiedSessionIdOf(token: string | undefined): string | undefined {
  const payload = token?.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const sid = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sid?: unknown }).sid;
    return typeof sid === 'string' && /^[A-Za-z0-9_-]{1,64}$/u.test(sid) ? sid : undefined;
  } catch {
    return undefined;
  }
}
