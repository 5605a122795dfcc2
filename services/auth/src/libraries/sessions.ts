import { randomUUID } from 'node:crypto';
import { AppError, requireUuid, type AuditPublisher, type Logger } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind } from '@portcullis/proto/common';
import { generateRefreshToken, type RefreshTokenStore } from './refresh-tokens.js';

/** A signed-in session: one tenant selection and the refresh-token family it started. */
export interface SessionRecord {
  sessionId: string;
  userId: string;
  tenantId: string;
  createdAt: Date;
  lastUsedAt: Date;
  /** Empty when the gateway did not say. */
  clientIp: string;
  userAgent: string;
}

/** Where live sessions are kept (Redis): a session exists exactly as long as its key does. */
export interface SessionStore {
  /** Stores the session with a TTL and adds it to the user's set of sessions. */
  create(session: SessionRecord, ttlSeconds: number): Promise<void>;
  /** The user's live sessions; set members whose session is gone are dropped from the set. */
  listForUser(userId: string): Promise<SessionRecord[]>;
  /** Every session id in the user's set, live or not. */
  idsForUser(userId: string): Promise<string[]>;
  /**
   * Sets lastUsedAt and restarts the TTL of the user's live session; false when the session
   * does not exist (ended or expired) or belongs to someone else. Never recreates a session.
   */
  touch(sessionId: string, userId: string, lastUsedAt: Date, ttlSeconds: number): Promise<boolean>;
  /**
   * Deletes the session when it belongs to the user and removes it from the user's set; the
   * tenant of the live session it deleted, undefined when there was none.
   */
  remove(sessionId: string, userId: string): Promise<string | undefined>;
}

export interface SessionsDeps {
  store: SessionStore;
  refreshTokens: Pick<RefreshTokenStore, 'insert' | 'revokeFamilies'>;
  /** REFRESH_TOKEN_TTL_SECONDS: lifetime of a session and of each of its refresh tokens. */
  ttlSeconds: number;
  /** Where revocations are recorded (`auth.session_revoked`), once the session is gone. */
  audit: Pick<AuditPublisher, 'publish'>;
  logger: Logger;
  now?: () => number;
}

export interface OpenSessionInput {
  userId: string;
  tenantId: string;
  clientIp: string;
  userAgent: string;
}

export interface OpenedSession {
  sessionId: string;
  refreshToken: string;
  refreshExpiresInSeconds: number;
}

const sessionNotFound = () => new AppError('NOT_FOUND', 'session not found');

/**
 * Sessions and their refresh-token families. Ending a session deletes its Redis key first —
 * from then on every access token carrying its `sid` is refused by the gateway — and then
 * revokes its refresh tokens. A session the user revokes is recorded in its tenant's audit trail
 * (`auth.session_revoked`) once it is gone.
 */
export function createSessions({ store, refreshTokens, ttlSeconds, audit, logger, now = Date.now }: SessionsDeps) {
  /** Deletes the session (if it is this user's) and revokes its family; the tenant of the live session ended. */
  const endSession = async (sessionId: string, userId: string): Promise<string | undefined> => {
    const tenantId = await store.remove(sessionId, userId);
    await refreshTokens.revokeFamilies(userId, [sessionId]);
    return tenantId;
  };

  /** The user ended the session themselves: the user is the principal, in the session's tenant. */
  const recordRevoked = (userId: string, ended: { sessionId: string; tenantId: string }, reason: string) =>
    audit.publish({
      tenantId: ended.tenantId,
      kind: 'auth.session_revoked',
      principal: { kind: PrincipalKind.USER, id: userId, tenantId: ended.tenantId },
      object: 'sessions',
      action: 'revoke',
      outcome: Outcome.SUCCESS,
      reason,
      attributes: { session_id: ended.sessionId },
    });

  /** Deletes the session (if it is this user's) and revokes its family; true when it was live. */
  const end = async (sessionId: string, userId: string): Promise<boolean> => (await endSession(sessionId, userId)) !== undefined;

  return {
    /** Starts a session with the first refresh token of a new family (family = session). */
    async open({ userId, tenantId, clientIp, userAgent }: OpenSessionInput): Promise<OpenedSession> {
      const sessionId = randomUUID();
      const { token, tokenHash } = generateRefreshToken();
      // Token first: a token without its session is useless, a session without a token would
      // linger in the list.
      await refreshTokens.insert({ tokenHash, familyId: sessionId, sessionId, userId, tenantId }, ttlSeconds);
      const at = new Date(now());
      await store.create({ sessionId, userId, tenantId, createdAt: at, lastUsedAt: at, clientIp, userAgent }, ttlSeconds);
      return { sessionId, refreshToken: token, refreshExpiresInSeconds: ttlSeconds };
    },

    /** Marks a refresh; false when the session no longer exists. */
    touch(sessionId: string, userId: string): Promise<boolean> {
      return store.touch(sessionId, userId, new Date(now()), ttlSeconds);
    },

    end,

    /** The user's live sessions, newest first. */
    async list(userIdInput: string): Promise<SessionRecord[]> {
      const userId = requireUuid(userIdInput, 'user_id');
      const sessions = await store.listForUser(userId);
      return sessions.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
    },

    /** Ends one of the user's own sessions; NOT_FOUND for anyone else's or an ended one. */
    async revoke(userIdInput: string, sessionIdInput: string): Promise<void> {
      const userId = requireUuid(userIdInput, 'user_id');
      const sessionId = requireUuid(sessionIdInput, 'session_id');
      const tenantId = await endSession(sessionId, userId);
      if (tenantId === undefined) throw sessionNotFound();
      logger.info({ userId, sessionId }, 'session revoked');
      await recordRevoked(userId, { sessionId, tenantId }, 'signed out');
    },

    /**
     * Ends every session of the user; returns how many were live. Each live one is recorded in
     * its own tenant's trail, with `reason` (default: the user signed out everywhere).
     */
    async revokeAll(userIdInput: string, reason = 'signed out everywhere'): Promise<number> {
      const userId = requireUuid(userIdInput, 'user_id');
      const sessionIds = await store.idsForUser(userId);
      const tenants = await Promise.all(sessionIds.map((sessionId) => store.remove(sessionId, userId)));
      await refreshTokens.revokeFamilies(userId, sessionIds);
      const ended = sessionIds.flatMap((sessionId, index) => {
        const tenantId = tenants[index];
        return tenantId === undefined ? [] : [{ sessionId, tenantId }];
      });
      logger.info({ userId, revoked: ended.length }, 'all sessions revoked');
      await Promise.all(ended.map((session) => recordRevoked(userId, session, reason)));
      return ended.length;
    },
  };
}

export type Sessions = ReturnType<typeof createSessions>;
