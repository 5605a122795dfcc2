import type { Redis } from 'ioredis';
import type { TicketIndex } from '../libraries/login-tickets.js';

/** `<prefix>user-login-tickets:<userId>`: set of the Redis keys of the user's outstanding login tickets. */
export function userTicketsKey(keyPrefix: string, userId: string): string {
  return `${keyPrefix}user-login-tickets:${userId}`;
}

// KEYS[1] the user's ticket set. Deletes every ticket key in it, then the set; returns how
// many tickets still existed. Atomic, so a ticket is either ended or was never indexed.
const REVOKE_ALL = `
local ended = 0
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  ended = ended + redis.call('DEL', key)
end
redis.call('DEL', KEYS[1])
return ended`;

/** The per-user ticket index in Redis. The set's TTL is restarted with each ticket, so it outlives them all. */
export function createTicketIndexQueries(redis: Redis, keyPrefix: string): TicketIndex {
  return {
    async add(userId, ticketKey, ttlSeconds) {
      const key = userTicketsKey(keyPrefix, userId);
      const replies = await redis.multi().sadd(key, ticketKey).expire(key, ttlSeconds).exec();
      if (!replies) throw new Error('ticket index transaction was discarded');
      for (const [error] of replies) if (error) throw error;
    },
    async revokeAll(userId) {
      return Number(await redis.eval(REVOKE_ALL, 1, userTicketsKey(keyPrefix, userId)));
    },
  };
}
