import type { Redis } from 'ioredis';
import type { PendingCode, PhoneCodeStore } from '../libraries/phone-verification.js';

/**
 * Pending phone codes in Redis:
 *   `<prefix>phone-code:<userId>`         hash {hash (HMAC of the code), phone, attempts}, TTL = PHONE_CODE_TTL_SECONDS
 *   `<prefix>phone-code-resend:<userId>`  "1" while another code may not be sent, TTL = PHONE_CODE_RESEND_SECONDS
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
  };
}
