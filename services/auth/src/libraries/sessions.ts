import { randomUUID } from 'node:crypto';
import { AppError, requireUuid, type Logger } from '@portcullis/kit';
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
   * Deletes the session when it belongs to the user and removes it from the user's set; true
   * when a live session was deleted.
   */
  remove(sessionId: string, userId: string): Promise<boolean>;
}

export interface SessionsDeps {
  store: SessionStore;
  refreshTokens: Pick<RefreshTokenStore, 'insert' | 'revokeFamilies'>;
  /** REFRESH_TOKEN_TTL_SECONDS: lifetime of a session and of each of its refresh tokens. */
  ttlSeconds: number;
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
 * revokes its refresh tokens.
 */
export function createSessions({ store, refreshTokens, ttlSeconds, logger, now = Date.now }: SessionsDeps) {
  /** Deletes the session (if it is this user's) and revokes its family; true when it was live. */
  const end = async (sessionId: string, userId: string): Promise<boolean> => {
    const removed = await store.remove(sessionId, userId);
    await refreshTokens.revokeFamilies(userId, [sessionId]);
    return removed;
  };

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
      if (!(await end(sessionId, userId))) throw sessionNotFound();
      logger.info({ userId, sessionId }, 'session revoked');
    },

    /** Ends every session of the user; returns how many were live. */
    async revokeAll(userIdInput: string): Promise<number> {
      const userId = requireUuid(userIdInput, 'user_id');
      const sessionIds = await store.idsForUser(userId);
      const removed = await Promise.all(sessionIds.map((sessionId) => store.remove(sessionId, userId)));
      await refreshTokens.revokeFamilies(userId, sessionIds);
      const revoked = removed.filter(Boolean).length;
      logger.info({ userId, revoked }, 'all sessions revoked');
      return revoked;
    },
  };
}

export type Sessions = ReturnType<typeof createSessions>;
