import type { Redis } from 'ioredis';
import type { SessionRecord, SessionStore } from '../libraries/sessions.js';

/**
 * Sessions in Redis. The contract the gateway relies on:
 *   `<prefix>session:<sid>`        hash {userId, tenantId, createdAt, lastUsedAt, clientIp, userAgent}
 *                                  (times ISO 8601), TTL = REFRESH_TOKEN_TTL_SECONDS, restarted on refresh;
 *                                  an access token whose sid has no such key is revoked.
 *   `<prefix>user-sessions:<uid>`  set of the user's session ids (may hold ended ones until listed).
 */
export function sessionKey(keyPrefix: string, sessionId: string): string {
  return `${keyPrefix}session:${sessionId}`;
}

export function userSessionsKey(keyPrefix: string, userId: string): string {
  return `${keyPrefix}user-sessions:${userId}`;
}

// KEYS[1] session, KEYS[2] user set; ARGV userId, sessionId, lastUsedAt, ttl.
// Only an existing session of this user is touched: a deleted session is never brought back.
const TOUCH = `
if redis.call('HGET', KEYS[1], 'userId') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'lastUsedAt', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1`;

// KEYS[1] session, KEYS[2] user set; ARGV userId, sessionId. Answers the deleted session's
// tenant id, or false (nil) when no session of this user was deleted.
const REMOVE = `
redis.call('SREM', KEYS[2], ARGV[2])
if redis.call('HGET', KEYS[1], 'userId') ~= ARGV[1] then return false end
local tenantId = redis.call('HGET', KEYS[1], 'tenantId')
redis.call('DEL', KEYS[1])
return tenantId`;

function recordOf(sessionId: string, fields: Record<string, string>): SessionRecord | undefined {
  const { userId, tenantId, createdAt, lastUsedAt, clientIp = '', userAgent = '' } = fields;
  if (userId === undefined || tenantId === undefined || createdAt === undefined || lastUsedAt === undefined) return undefined;
  return { sessionId, userId, tenantId, createdAt: new Date(createdAt), lastUsedAt: new Date(lastUsedAt), clientIp, userAgent };
}

export function createSessionQueries(redis: Redis, keyPrefix: string): SessionStore {
  const setKey = (userId: string) => userSessionsKey(keyPrefix, userId);
  const key = (sessionId: string) => sessionKey(keyPrefix, sessionId);

  return {
    async create(session, ttlSeconds) {
      const replies = await redis
        .multi()
        .hset(key(session.sessionId), {
          userId: session.userId,
          tenantId: session.tenantId,
          createdAt: session.createdAt.toISOString(),
          lastUsedAt: session.lastUsedAt.toISOString(),
          clientIp: session.clientIp,
          userAgent: session.userAgent,
        })
        .expire(key(session.sessionId), ttlSeconds)
        .sadd(setKey(session.userId), session.sessionId)
        // Every member expires within ttlSeconds of its last use, so the set outlives them all.
        .expire(setKey(session.userId), ttlSeconds)
        .exec();
      // A transaction reports per-command failures in its replies instead of rejecting.
      if (!replies) throw new Error('session transaction was discarded');
      for (const [error] of replies) if (error) throw error;
    },

    async listForUser(userId) {
      const sessionIds = await redis.smembers(setKey(userId));
      if (sessionIds.length === 0) return [];
      const pipeline = redis.pipeline();
      for (const sessionId of sessionIds) pipeline.hgetall(key(sessionId));
      const replies = (await pipeline.exec()) ?? [];
      const live: SessionRecord[] = [];
      const dangling: string[] = [];
      sessionIds.forEach((sessionId, index) => {
        const [error, fields] = replies[index] ?? [];
        if (error) throw error;
        const record = recordOf(sessionId, (fields ?? {}) as Record<string, string>);
        if (record?.userId === userId) live.push(record);
        else dangling.push(sessionId);
      });
      if (dangling.length > 0) await redis.srem(setKey(userId), ...dangling);
      return live;
    },

    idsForUser(userId) {
      return redis.smembers(setKey(userId));
    },

    async touch(sessionId, userId, lastUsedAt, ttlSeconds) {
      const touched = await redis.eval(TOUCH, 2, key(sessionId), setKey(userId), userId, sessionId, lastUsedAt.toISOString(), ttlSeconds);
      return touched === 1;
    },

    async remove(sessionId, userId) {
      const tenantId = await redis.eval(REMOVE, 2, key(sessionId), setKey(userId), userId, sessionId);
      return typeof tenantId === 'string' ? tenantId : undefined;
    },
  };
}
