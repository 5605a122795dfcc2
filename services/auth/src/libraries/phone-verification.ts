import { createHmac, hkdfSync, randomInt, timingSafeEqual } from 'node:crypto';
import { AppError, type Logger } from '@portcullis/kit';
import { maskPhone, requirePhone } from './credentials.js';
import type { LoginTickets } from './login-tickets.js';
import type { SmsSender } from './sms-senders.js';

/** What phone verification needs from the users table. */
export interface PhoneStore {
  /** The account's phone number and whether it is verified; undefined when there is no such user. */
  findPhone(userId: string): Promise<{ phone: string | null; verified: boolean } | undefined>;
  /** Sets the number of an account whose number is not verified; false when it is (or the user is gone). */
  setUnverifiedPhone(userId: string, phone: string): Promise<boolean>;
  /** Marks the phone verified if it is still `phone`; false when the row no longer matches. */
  markPhoneVerified(userId: string, phone: string): Promise<boolean>;
}

/** A pending code: only its HMAC, the number it was sent to, and the attempts counted so far. */
export interface PendingCode {
  hash: string;
  phone: string;
  attempts: number;
}

/** Where pending codes and the resend throttle live (Redis in production). */
export interface PhoneCodeStore {
  /** Takes the user's send slot for `seconds`; when it is still taken, how long until it frees. */
  claimSend(userId: string, seconds: number): Promise<{ claimed: true } | { claimed: false; retryAfterMs: number }>;
  releaseSend(userId: string): Promise<void>;
  /** Replaces any pending code of the user with this one (attempts 0), expiring after `ttlSeconds`. */
  save(userId: string, code: { hash: string; phone: string }, ttlSeconds: number): Promise<void>;
  /** Atomically counts one attempt on the pending code and returns it (attempts include this one). */
  countAttempt(userId: string): Promise<PendingCode | undefined>;
  /** Deletes the pending code if it is still the one with `hash`; true for the one caller that did. */
  consume(userId: string, hash: string): Promise<boolean>;
  discard(userId: string): Promise<void>;
  /**
   * Counts one SMS against every counter (each capped at its `limit` per window that starts
   * with its first count), atomically: either all are counted or, when one is at its cap, none
   * is and the answer says how long until that cap frees.
   */
  takeDailySend(
    counters: readonly { key: string; limit: number }[],
    windowSeconds: number,
  ): Promise<{ taken: true } | { taken: false; retryAfterMs: number }>;
  /** Counts one wrong code of the user in the window; returns the count including this one. */
  countFailure(userId: string, windowSeconds: number): Promise<number>;
  /** Wrong codes of the user in the current window, and how long until the window ends. */
  failures(userId: string): Promise<{ count: number; retryAfterMs: number }>;
}

export interface PhoneVerificationDeps {
  tickets: Pick<LoginTickets, 'inspect'>;
  users: PhoneStore;
  codes: PhoneCodeStore;
  sender: SmsSender;
  /** Key of the code HMACs (32 bytes). */
  codeKey: Buffer;
  ttlSeconds: number;
  resendSeconds: number;
  maxAttempts: number;
  /** Most codes sent to one account in one day. */
  maxSendsPerDay: number;
  /**
   * Most codes sent to one phone number in one day, across accounts. Larger than the account
   * cap, so that one account alone cannot use up someone else's number for the day.
   */
  maxSendsPerNumberPerDay: number;
  /** Most wrong codes per account in one day, across all its codes. */
  maxFailuresPerDay: number;
  logger: Logger;
  /** Six digits; crypto.randomInt unless a test fixes it. */
  generateCode?: () => string;
}

const CODE_SHAPE = /^\d{6}$/u;

export function randomCode(): string {
  return randomInt(0, 1_000_000).toString().padStart(6, '0');
}

/** HMAC-SHA256 of the code, bound to the user and the number it was sent to; hex. */
export function hashCode(key: Buffer, userId: string, phone: string, code: string): string {
  return createHmac('sha256', key).update(`${userId}\n${phone}\n${code}`).digest('hex');
}

function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && timingSafeEqual(left, right);
}

const noPendingCode = () => new AppError('FAILED_PRECONDITION', 'no verification code is pending; request a new one');
const DAY_SECONDS = 86_400;

const retryAfter = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

const alreadyVerified = () => new AppError('FAILED_PRECONDITION', 'the phone number is already verified');

/**
 * Phone verification by SMS code. The login ticket authenticates both steps (and stays
 * usable). A code is six random digits; only its HMAC is stored, for `ttlSeconds`. A new code
 * may be requested every `resendSeconds` and replaces the previous one. Every attempt counts
 * before the comparison (constant-time); after `maxAttempts` wrong ones the code is dead. The
 * right code is spent once and marks the phone verified.
 *
 * Daily caps bound what one account, or many accounts sharing a number, can cost and try
 * (SMS pumping, code guessing across fresh codes): `maxSendsPerDay` codes per account,
 * `maxSendsPerNumberPerDay` per phone number, `maxFailuresPerDay` wrong codes per account. A send the provider then fails
 * still counts.
 */
export function createPhoneVerification(deps: PhoneVerificationDeps) {
  const {
    tickets,
    users,
    codes,
    sender,
    codeKey,
    ttlSeconds,
    resendSeconds,
    maxAttempts,
    maxSendsPerDay,
    maxSendsPerNumberPerDay,
    maxFailuresPerDay,
    logger,
  } = deps;
  /** The per-number counter is keyed by an HMAC of the number, so Redis holds no phone numbers. */
  const phoneCounter = (phone: string) => `phone:${createHmac('sha256', codeKey).update(`daily sends\n${phone}`).digest('hex')}`;
  const generateCode = deps.generateCode ?? randomCode;

  const accountOf = async (ticket: string) => {
    const userId = await tickets.inspect(ticket);
    const account = await users.findPhone(userId);
    if (!account) throw new AppError('UNAUTHENTICATED', 'invalid or expired login ticket');
    return { userId, ...account };
  };

  return {
    /** Whether the user's phone number is verified (false for an unknown user). */
    async isVerified(userId: string): Promise<boolean> {
      return (await users.findPhone(userId))?.verified ?? false;
    },

    /**
     * Sends a code to the account's number; `newPhone` (E.164) first sets that number, for an
     * account that has none (Google/GitHub sign-in) or whose number is not verified yet.
     */
    async start(ticket: string, newPhone = ''): Promise<{ phoneMasked: string; codeExpiresInSeconds: number; resendAfterSeconds: number }> {
      const requested = newPhone.length > 0 ? requirePhone(newPhone) : undefined;
      const account = await accountOf(ticket);
      const { userId, verified } = account;
      if (verified) throw alreadyVerified();
      let { phone } = account;
      if (requested !== undefined && requested !== phone) {
        if (!(await users.setUnverifiedPhone(userId, requested))) throw alreadyVerified();
        // A code sent to the previous number must not verify the new one.
        await codes.discard(userId);
        phone = requested;
      }
      if (phone === null) throw new AppError('FAILED_PRECONDITION', 'the account has no phone number');
      const slot = await codes.claimSend(userId, resendSeconds);
      if (!slot.claimed) {
        const seconds = Math.max(1, Math.ceil(slot.retryAfterMs / 1000));
        throw new AppError('RATE_LIMITED', `a code was sent recently; request another in ${seconds} seconds`, {
          details: { retryAfterSeconds: seconds },
        });
      }
      const daily = await codes.takeDailySend(
        [
          { key: `user:${userId}`, limit: maxSendsPerDay },
          { key: phoneCounter(phone), limit: maxSendsPerNumberPerDay },
        ],
        DAY_SECONDS,
      );
      if (!daily.taken) {
        await codes.releaseSend(userId).catch(() => undefined);
        logger.warn({ userId, phone: maskPhone(phone) }, 'daily verification SMS limit reached');
        throw new AppError('RATE_LIMITED', 'the daily limit of verification codes is reached; try again later', {
          details: { retryAfterSeconds: retryAfter(daily.retryAfterMs) },
        });
      }
      const code = generateCode();
      await codes.save(userId, { hash: hashCode(codeKey, userId, phone, code), phone }, ttlSeconds);
      try {
        await sender.send(phone, code);
      } catch (error) {
        // Nothing was delivered: forget the code and let the user ask again at once.
        await codes.discard(userId).catch(() => undefined);
        await codes.releaseSend(userId).catch(() => undefined);
        logger.warn({ userId, err: error }, 'verification SMS not sent');
        throw error instanceof AppError
          ? error
          : new AppError('UPSTREAM_FAILED', 'the verification SMS could not be sent', { cause: error });
      }
      logger.info({ userId, phone: maskPhone(phone) }, 'phone verification code sent');
      return { phoneMasked: maskPhone(phone), codeExpiresInSeconds: ttlSeconds, resendAfterSeconds: resendSeconds };
    },

    async verify(ticket: string, code: string): Promise<void> {
      if (!CODE_SHAPE.test(code)) throw new AppError('INVALID_ARGUMENT', 'code must be 6 digits', { details: { field: 'code' } });
      const { userId, phone, verified } = await accountOf(ticket);
      if (verified) throw alreadyVerified();
      const failed = await codes.failures(userId);
      if (failed.count >= maxFailuresPerDay) {
        throw new AppError('RATE_LIMITED', 'too many wrong codes today; try again later', {
          details: { retryAfterSeconds: retryAfter(failed.retryAfterMs) },
        });
      }
      const pending = await codes.countAttempt(userId);
      if (!pending) throw noPendingCode();
      if (pending.attempts > maxAttempts || pending.phone !== phone) {
        await codes.discard(userId);
        throw noPendingCode();
      }
      if (!sameHash(hashCode(codeKey, userId, pending.phone, code), pending.hash)) {
        await codes.countFailure(userId, DAY_SECONDS);
        const left = maxAttempts - pending.attempts;
        logger.info({ userId, attemptsLeft: left }, 'wrong phone verification code');
        if (left <= 0) {
          await codes.discard(userId);
          throw new AppError('INVALID_ARGUMENT', 'wrong code; it is no longer valid, request a new one', {
            details: { field: 'code', attemptsLeft: 0 },
          });
        }
        throw new AppError('INVALID_ARGUMENT', 'wrong code', { details: { field: 'code', attemptsLeft: left } });
      }
      // Single use: of two requests with the right code, only one spends it.
      if (!(await codes.consume(userId, pending.hash))) throw noPendingCode();
      if (!(await users.markPhoneVerified(userId, pending.phone))) throw noPendingCode();
      logger.info({ userId }, 'phone number verified');
    },
  };
}

export type PhoneVerification = ReturnType<typeof createPhoneVerification>;

/** The code-HMAC key, derived (HKDF-SHA256) from AUTH_SIGNING_KEY_SECRET so no other secret is needed. */
export function deriveCodeKey(secret: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'portcullis-auth phone verification codes', 32));
}
