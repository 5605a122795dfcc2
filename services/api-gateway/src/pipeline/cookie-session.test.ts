import { describe, expect, it } from '@jest/globals';
import { AppError } from '@portcullis/kit';
import { Role } from '@portcullis/proto/common';
import { createCookieSessions } from '../libraries/cookie-sessions.js';
import { passThroughLimits, requestInfo } from '../test-support/pipeline-fakes.js';
import { createAuthenticate, credentialOf } from './authenticate.js';
import type { RequestInfo, ResolvedContext } from './types.js';

const tenantA = '00000000-0000-4000-8000-00000000000a';
const token = 'aaa.bbb.ccc';
const sessions = createCookieSessions({ secure: true, csrfSecret: Buffer.alloc(32, 3) });

function setup() {
  const sessionChecks: string[] = [];
  const authenticate = createAuthenticate({
    ...passThroughLimits,
    verifyAccessToken: (presented) =>
      presented === token
        ? Promise.resolve({
            userId: '00000000-0000-4000-8000-0000000000f1',
            tenantId: tenantA,
            role: Role.USER,
            sessionId: 's1',
            expiresAt: Date.now() + 60_000,
          })
        : Promise.reject(new AppError('UNAUTHENTICATED', 'invalid or expired credential')),
    verifyApiKey: () => Promise.reject(new AppError('INTERNAL', 'not expected')),
    verifyRobotToken: () => Promise.reject(new AppError('INTERNAL', 'not expected')),
    isSessionActive: (sessionId) => {
      sessionChecks.push(sessionId);
      return Promise.resolve(true);
    },
    isValidCsrfToken: sessions.isValidCsrfToken,
    tenants: { resolveContext: () => Promise.reject(new AppError('INTERNAL', 'not expected')) },
    auditDecision: () => Promise.resolve(),
  });
  const resolved = (request: RequestInfo) =>
    ({ request, target: { tenantId: tenantA, tenantName: 'A', plan: 'free', assistantId: '' } }) as ResolvedContext;
  return { run: (request: RequestInfo) => authenticate(resolved(request)), sessionChecks };
}

describe('cookie sessions in the authenticate step', () => {
  it('authenticates a read with the session cookie alone', async () => {
    const { run } = setup();
    const context = await run(requestInfo({ sessionCookie: token }));
    expect(context.credential).toEqual({ kind: 'access_token', sessionId: 's1', via: 'cookie' });
  });

  it('refuses a change without the CSRF token of the session, before the session is even looked up', async () => {
    const { run, sessionChecks } = setup();
    await expect(run(requestInfo({ sessionCookie: token, changesState: true }))).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(
      run(requestInfo({ sessionCookie: token, changesState: true, csrfToken: sessions.csrfTokenFor('another-session') })),
    ).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(sessionChecks).toEqual([]);
    await expect(
      run(requestInfo({ sessionCookie: token, changesState: true, csrfToken: sessions.csrfTokenFor('s1') })),
    ).resolves.toMatchObject({
      credential: { via: 'cookie' },
    });
  });

  it('needs no CSRF token for a bearer token, which a browser never sends by itself', async () => {
    const { run } = setup();
    await expect(run(requestInfo({ authorization: `Bearer ${token}`, changesState: true }))).resolves.toMatchObject({
      credential: { via: 'header' },
    });
  });

  it('refuses two credentials, a cookie among them', () => {
    expect(() => credentialOf({ authorization: `Bearer ${token}`, apiKey: undefined, sessionCookie: token })).toThrow(
      'send exactly one credential',
    );
    expect(() => credentialOf({ authorization: undefined, apiKey: 'pck_x', sessionCookie: token })).toThrow('send exactly one credential');
    expect(() => credentialOf({ authorization: undefined, apiKey: undefined, sessionCookie: 'not a jwt' })).toThrow(AppError);
  });
});
