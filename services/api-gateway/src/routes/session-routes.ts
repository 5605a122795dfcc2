import { z, type GrpcClient } from '@portcullis/kit';
import type { AuthService, Session } from '@portcullis/proto/auth';
import { isoTime } from '../http/presenters.js';
import { parseInput, type ProtectedRoute, type RouteInput } from '../http/route.js';
import type { CookieSessions } from '../libraries/cookie-sessions.js';
import type { Credential } from '../pipeline/index.js';

export interface SessionRouteDeps {
  auth: Pick<GrpcClient<typeof AuthService>, 'listSessions' | 'revokeSession' | 'revokeAllSessions'>;
  cookieSessions: Pick<CookieSessions, 'clear'>;
}

const sessionOf = (credential: Credential) => (credential.kind === 'access_token' ? credential.sessionId : '');

function presentSession(session: Session, current: string) {
  return {
    sessionId: session.sessionId,
    tenantId: session.tenantId,
    createdAt: isoTime(session.createdAt),
    lastUsedAt: isoTime(session.lastUsedAt),
    clientIp: session.clientIp,
    userAgent: session.userAgent,
    current: session.sessionId === current,
  };
}

/**
 * The signed-in person's own sessions. Every role holds `tenant:read`; each route acts only
 * on the principal's own account, never on another user's sessions.
 */
export function createSessionRoutes({ auth, cookieSessions }: SessionRouteDeps): ProtectedRoute[] {
  const capability = { object: 'tenant', action: 'read' };
  /** A cookie session that ends also loses its cookies. */
  const clearCookies = (credential: Credential, input: RouteInput) => {
    if (credential.kind === 'access_token' && credential.via === 'cookie')
      for (const cookie of cookieSessions.clear()) input.setCookie?.(cookie);
  };
  return [
    {
      kind: 'protected',
      method: 'get',
      path: '/api/auth/sessions',
      capability,
      humansOnly: true,
      summary: 'List your live sessions',
      async handle({ request, principal, credential }) {
        const { sessions } = await auth.listSessions({ userId: principal.id }, { requestId: request.requestId });
        return { body: { sessions: sessions.map((s) => presentSession(s, sessionOf(credential))) } };
      },
    },
    {
      kind: 'protected',
      method: 'delete',
      path: '/api/auth/sessions/:sessionId',
      capability,
      humansOnly: true,
      summary: 'End one of your sessions',
      async handle({ request, principal }, { params }) {
        const { sessionId } = parseInput(z.object({ sessionId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/) }), params);
        await auth.revokeSession({ userId: principal.id, sessionId }, { requestId: request.requestId });
        return { status: 204, body: null };
      },
    },
    {
      kind: 'protected',
      method: 'post',
      path: '/api/auth/logout',
      capability,
      humansOnly: true,
      summary: 'End the session of this access token',
      async handle({ request, principal, credential }, input) {
        await auth.revokeSession({ userId: principal.id, sessionId: sessionOf(credential) }, { requestId: request.requestId });
        clearCookies(credential, input);
        return { status: 204, body: null };
      },
    },
    {
      kind: 'protected',
      method: 'post',
      path: '/api/auth/logout-all',
      capability,
      humansOnly: true,
      summary: 'End every session of your account (log out everywhere)',
      async handle({ request, principal, credential }, input) {
        const { revoked } = await auth.revokeAllSessions({ userId: principal.id }, { requestId: request.requestId });
        clearCookies(credential, input);
        return { body: { revoked } };
      },
    },
  ];
}
