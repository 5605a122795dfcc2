import type { Redis } from 'ioredis';
import type { PendingCode, PhoneCodeStore } from '../libraries/phone-verification.js';

/**
 * Pending phone codes in Redis:
 *   `<prefix>phone-code:<userId>`         hash {hash (HMAC of the code), phone, attempts}, TTL = PHONE_CODE_TTL_SECONDS
 *   `<prefix>phone-code-resend:<userId>`  "1" while another code may not be sent, TTL = PHONE_CODE_RESEND_SECONDS
 *   `<prefix>phone-sends:<counter>`       codes sent today, per `user:<id>` and per `phone:<HMAC of the number>`, TTL one day
 *   `<prefix>phone-failures:<userId>`     wrong codes today, TTL one day
 */
export function phoneCodeKey(keyPrefix: string, userId: string): string {
  return `${keyPrefix}phone-code:${userId}`;
}

export function phoneResendKey(keyPrefix: string, userId: string): string {
  return `${keyPrefix}phone-code-resend:${userId}`;
}

// KEYS[1] code. Counts the attempt and returns {hash, phone, attempts}, or nil when no code is pending.
const COUNT_ATTEMPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
return {redis.call('HGET', KEYS[1], 'hash'), redis.call('HGET', KEYS[1], 'phone'), attempts}`;

// KEYS[1] code; ARGV[1] the hash already matched. Deletes the code only if it is still that one.
const CONSUME = `
if redis.call('HGET', KEYS[1], 'hash') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])`;

// KEYS counters; ARGV[1] window seconds, ARGV[1 + i] the limit of KEYS[i]. Returns -1 when every
// counter was counted, else the milliseconds until the first full counter frees (nothing counted then).
const TAKE_DAILY = `
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[i + 1]) then return math.max(redis.call('PTTL', key), 1) end
end
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, ARGV[1]) end
end
return -1`;

// KEYS[1] counter; ARGV[1] window seconds. Counts one and returns the count.
const COUNT_IN_WINDOW = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count`;

export function createPhoneCodeQueries(redis: Redis, keyPrefix: string): PhoneCodeStore {
  const codeKey = (userId: string) => phoneCodeKey(keyPrefix, userId);
  const resendKey = (userId: string) => phoneResendKey(keyPrefix, userId);
  return {
    async claimSend(userId, seconds) {
      if ((await redis.set(resendKey(userId), '1', 'EX', seconds, 'NX')) === 'OK') return { claimed: true };
      const ttl = await redis.pttl(resendKey(userId));
      return { claimed: false, retryAfterMs: Math.max(ttl, 1) };
    },
    async releaseSend(userId) {
      await redis.del(resendKey(userId));
    },
    async save(userId, { hash, phone }, ttlSeconds) {
      const key = codeKey(userId);
      const replies = await redis.multi().del(key).hset(key, { hash, phone, attempts: '0' }).expire(key, ttlSeconds).exec();
      const failed = replies?.find(([error]) => error !== null);
      if (!replies || failed) throw failed?.[0] ?? new Error('phone code transaction aborted');
    },
    async countAttempt(userId): Promise<PendingCode | undefined> {
      const reply = (await redis.eval(COUNT_ATTEMPT, 1, codeKey(userId))) as [string | null, string | null, number] | null;
      if (!reply) return undefined;
      const [hash, phone, attempts] = reply;
      if (hash === null || phone === null) return undefined;
      return { hash, phone, attempts };
    },
    async consume(userId, hash) {
      return Number(await redis.eval(CONSUME, 1, codeKey(userId), hash)) === 1;
    },
    async discard(userId) {
      await redis.del(codeKey(userId));
    },
    async takeDailySend(counters, windowSeconds) {
      const keys = counters.map(({ key }) => `${keyPrefix}phone-sends:${key}`);
      const limits = counters.map(({ limit }) => limit);
      const reply = Number(await redis.eval(TAKE_DAILY, keys.length, ...keys, windowSeconds, ...limits));
      return reply < 0 ? { taken: true } : { taken: false, retryAfterMs: reply };
    },
    async countFailure(userId, windowSeconds) {
      return Number(await redis.eval(COUNT_IN_WINDOW, 1, `${keyPrefix}phone-failures:${userId}`, windowSeconds));
    },
    async failures(userId) {
      const key = `${keyPrefix}phone-failures:${userId}`;
      const [count, ttl] = await Promise.all([redis.get(key), redis.pttl(key)]);
      return { count: Number(count ?? 0), retryAfterMs: Math.max(ttl, 1) };
    },
  };
}
