import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { createCookieSessions, unverifiedSessionIdOf } from './cookie-sessions.js';

const secret = Buffer.alloc(32, 1);
const jwtWith = (payload: unknown) => `e30.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.c2ln`;

describe('cookie sessions', () => {
  it('delivers both tokens in HttpOnly SameSite=Strict __Host- cookies and a CSRF token for the session', () => {
    const sessions = createCookieSessions({ secure: true, csrfSecret: secret });
    const { cookies, csrfToken } = sessions.deliver({
      accessToken: 'a.b.c',
      refreshToken: 'r1',
      refreshExpiresInSeconds: 3600,
      sessionId: 's1',
    });
    expect(cookies).toEqual([
      '__Host-portcullis_session=a.b.c; Max-Age=3600; Path=/; HttpOnly; SameSite=Strict; Secure',
      '__Host-portcullis_refresh=r1; Max-Age=3600; Path=/; HttpOnly; SameSite=Strict; Secure',
    ]);
    expect(sessions.isValidCsrfToken('s1', csrfToken)).toBe(true);
    expect(sessions.clear().every((cookie) => cookie.includes('Max-Age=0'))).toBe(true);
  });

  it('names cookies without the __Host- prefix or Secure only for plain-HTTP development', () => {
    const sessions = createCookieSessions({ secure: false, csrfSecret: secret });
    expect(sessions.names).toEqual({ access: 'portcullis_session', refresh: 'portcullis_refresh' });
    expect(sessions.clear().some((cookie) => cookie.includes('Secure'))).toBe(false);
  });

  it("refuses another session's token, a token made with another secret, and anything malformed", () => {
    const sessions = createCookieSessions({ secure: true, csrfSecret: secret });
    const other = createCookieSessions({ secure: true, csrfSecret: Buffer.alloc(32, 2) });
    expect(sessions.isValidCsrfToken('s1', sessions.csrfTokenFor('s2'))).toBe(false);
    expect(sessions.isValidCsrfToken('s1', other.csrfTokenFor('s1'))).toBe(false);
    expect(sessions.isValidCsrfToken('s1', undefined)).toBe(false);
    expect(sessions.isValidCsrfToken('s1', '')).toBe(false);
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (token) => {
        expect(sessions.isValidCsrfToken('s1', token)).toBe(token === sessions.csrfTokenFor('s1'));
      }),
    );
  });

  it('reads the session id of a JWT payload, and nothing from malformed input', () => {
    expect(unverifiedSessionIdOf(jwtWith({ sid: 'abc_1-2' }))).toBe('abc_1-2');
    expect(unverifiedSessionIdOf(jwtWith({ sid: 'a b' }))).toBeUndefined();
    expect(unverifiedSessionIdOf(jwtWith({ sid: 7 }))).toBeUndefined();
    expect(unverifiedSessionIdOf('only-one-part')).toBeUndefined();
    expect(unverifiedSessionIdOf('x.%%%.y')).toBeUndefined();
    expect(unverifiedSessionIdOf(undefined)).toBeUndefined();
  });
});
