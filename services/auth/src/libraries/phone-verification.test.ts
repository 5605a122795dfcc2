import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { AppError, createLogger } from '@portcullis/kit';
import { fakeClock, memoryPhoneCodeStore } from '../test-support/memory-stores.js';
import { createPhoneVerification, hashCode, randomCode, type PhoneStore } from './phone-verification.js';

const TICKET = 'ticket-of-ada';
const USER = 'user-ada';
const PHONE = '+8613800138000';

function setup({
  maxAttempts = 3,
  failSend = false,
  maxSendsPerDay = 10,
  maxSendsPerNumberPerDay = 30,
  maxFailuresPerDay = 20,
  user = USER,
  clock = fakeClock(),
  codes = memoryPhoneCodeStore(clock),
  codeKey = randomBytes(32),
} = {}) {
  const lines: string[] = [];
  const logger = createLogger({ name: 'phone-test', level: 'debug', destination: { write: (line: string) => void lines.push(line) } });
  const account = { phone: PHONE as string | null, verified: false };
  const users: PhoneStore = {
    findPhone: (userId) => Promise.resolve(userId === user ? { ...account } : undefined),
    setUnverifiedPhone(userId, phone) {
      const allowed = userId === user && !account.verified;
      if (allowed) account.phone = phone;
      return Promise.resolve(allowed);
    },
    markPhoneVerified(userId, phone) {
      const matches = userId === user && account.phone === phone;
      if (matches) account.verified = true;
      return Promise.resolve(matches);
    },
  };
  const sent: { phone: string; code: string }[] = [];
  let next = 0;
  const fixedCodes = ['111111', '222222', '333333', '444444'];
  const phone = createPhoneVerification({
    tickets: {
      inspect: (ticket) =>
        ticket === TICKET ? Promise.resolve(user) : Promise.reject(new AppError('UNAUTHENTICATED', 'invalid or expired login ticket')),
    },
    users,
    codes: codes.store,
    sender: {
      send(to, code) {
        if (failSend) return Promise.reject(new Error('provider down'));
        sent.push({ phone: to, code });
        return Promise.resolve();
      },
    },
    codeKey,
    ttlSeconds: 300,
    resendSeconds: 60,
    maxAttempts,
    maxSendsPerDay,
    maxSendsPerNumberPerDay,
    maxFailuresPerDay,
    logger,
    generateCode: () => fixedCodes[next++ % fixedCodes.length] ?? '000000',
  });
  return { clock, codes, account, sent, phone, lines, codeKey };
}

describe('phone verification', () => {
  it('sends a code to the account phone and stores only its HMAC', async () => {
    const { phone, sent, codes, codeKey } = setup();
    await expect(phone.start(TICKET)).resolves.toEqual({
      phoneMasked: '+86*******8000',
      codeExpiresInSeconds: 300,
      resendAfterSeconds: 60,
    });
    expect(sent).toEqual([{ phone: PHONE, code: '111111' }]);
    expect(codes.pending(USER)).toEqual({
      hash: hashCode(codeKey, USER, PHONE, '111111'),
      phone: PHONE,
      attempts: 0,
      expiresAt: expect.any(Number),
    });
    expect(codes.pending(USER)?.hash).not.toContain('111111');
  });

  it('verifies the right code once and marks the phone verified', async () => {
    const { phone, account } = setup();
    await phone.start(TICKET);
    await expect(phone.isVerified(USER)).resolves.toBe(false);
    await phone.verify(TICKET, '111111');
    expect(account.verified).toBe(true);
    await expect(phone.isVerified(USER)).resolves.toBe(true);
    await expect(phone.verify(TICKET, '111111')).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
    await expect(phone.start(TICKET)).rejects.toMatchObject({
      code: 'FAILED_PRECONDITION',
      message: 'the phone number is already verified',
    });
  });

  it('counts wrong codes and kills the code after the cap, so even the right one then fails', async () => {
    const { phone, account, codes } = setup({ maxAttempts: 3 });
    await phone.start(TICKET);
    await expect(phone.verify(TICKET, '999999')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { attemptsLeft: 2 } });
    await expect(phone.verify(TICKET, '999998')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { attemptsLeft: 1 } });
    await expect(phone.verify(TICKET, '999997')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { attemptsLeft: 0 } });
    expect(codes.pending(USER)).toBeUndefined();
    await expect(phone.verify(TICKET, '111111')).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
    expect(account.verified).toBe(false);
  });

  it('refuses a code after its TTL', async () => {
    const { phone, clock, account } = setup();
    await phone.start(TICKET);
    clock.advance(300_000);
    await expect(phone.verify(TICKET, '111111')).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
    expect(account.verified).toBe(false);
  });

  it('throttles resends, then a new code replaces the old one', async () => {
    const { phone, clock, sent } = setup();
    await phone.start(TICKET);
    clock.advance(59_000);
    await expect(phone.start(TICKET)).rejects.toMatchObject({ code: 'RATE_LIMITED', details: { retryAfterSeconds: 1 } });
    expect(sent).toHaveLength(1);
    clock.advance(1_000);
    await phone.start(TICKET);
    expect(sent.map((m) => m.code)).toEqual(['111111', '222222']);
    await expect(phone.verify(TICKET, '111111')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(phone.verify(TICKET, '222222')).resolves.toBeUndefined();
  });

  it('keeps no code and frees the resend slot when sending fails', async () => {
    const { phone, codes } = setup({ failSend: true });
    await expect(phone.start(TICKET)).rejects.toMatchObject({ code: 'UPSTREAM_FAILED' });
    expect(codes.pending(USER)).toBeUndefined();
    await expect(codes.store.claimSend(USER, 60)).resolves.toEqual({ claimed: true });
  });

  it('refuses a code of the wrong shape without counting it, and an invalid ticket', async () => {
    const { phone, codes } = setup();
    await phone.start(TICKET);
    await expect(phone.verify(TICKET, '12345')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'code' } });
    expect(codes.pending(USER)?.attempts).toBe(0);
    await expect(phone.start('someone-else')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(phone.verify('someone-else', '111111')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('refuses an account without a phone number', async () => {
    const { phone, account } = setup();
    account.phone = null;
    await expect(phone.start(TICKET)).rejects.toMatchObject({ code: 'FAILED_PRECONDITION', message: 'the account has no phone number' });
  });

  it('never logs the code or the full number', async () => {
    const { phone, lines } = setup();
    await phone.start(TICKET);
    await phone.verify(TICKET, '999999').catch(() => undefined);
    const log = lines.join('');
    expect(log).toContain('phone verification code sent');
    expect(log).not.toContain('111111');
    expect(log).not.toContain(PHONE);
  });

  it('caps the codes sent to one account per day, then frees the cap after the day', async () => {
    const { phone, clock, sent } = setup({ maxSendsPerDay: 2 });
    await phone.start(TICKET);
    clock.advance(60_000);
    await phone.start(TICKET);
    clock.advance(60_000);
    const refused = await phone.start(TICKET).catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 'RATE_LIMITED', message: 'the daily limit of verification codes is reached; try again later' });
    expect((refused as AppError).details).toEqual({ retryAfterSeconds: 86_400 - 120 });
    expect(sent).toHaveLength(2);
    // The refused request did not take the resend slot: once the day is over a code goes out at once.
    clock.advance(86_400_000);
    await phone.start(TICKET);
    expect(sent).toHaveLength(3);
  });

  it('caps the codes sent to one phone number across accounts, above what one account may send', async () => {
    const clock = fakeClock();
    const codes = memoryPhoneCodeStore(clock);
    const codeKey = randomBytes(32);
    const limits = { maxSendsPerDay: 2, maxSendsPerNumberPerDay: 3, clock, codes, codeKey };
    const first = setup({ ...limits, user: 'user-one' });
    const second = setup({ ...limits, user: 'user-two' });
    await first.phone.start(TICKET);
    clock.advance(60_000);
    await first.phone.start(TICKET);
    clock.advance(60_000);
    // One account alone is stopped by its own cap and leaves the number usable for others.
    await expect(first.phone.start(TICKET)).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    await second.phone.start(TICKET);
    clock.advance(60_000);
    await expect(second.phone.start(TICKET)).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    expect([first.sent.length, second.sent.length]).toEqual([2, 1]);
  });

  it('caps wrong codes per account per day across fresh codes', async () => {
    const { phone, clock, account } = setup({ maxAttempts: 3, maxFailuresPerDay: 4 });
    await phone.start(TICKET);
    for (const wrong of ['900001', '900002', '900003']) await phone.verify(TICKET, wrong).catch(() => undefined);
    clock.advance(60_000);
    await phone.start(TICKET);
    await expect(phone.verify(TICKET, '900004')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    // Four wrong codes today: even the right code of the live code is refused until the day ends.
    await expect(phone.verify(TICKET, '222222')).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    expect(account.verified).toBe(false);
    clock.advance(86_400_000);
    await phone.start(TICKET);
    await expect(phone.verify(TICKET, '333333')).resolves.toBeUndefined();
    expect(account.verified).toBe(true);
  });

  it('sets a number for an account without one (Google/GitHub sign-in), then verifies it', async () => {
    const { phone, account, sent } = setup();
    account.phone = null;
    await expect(phone.start(TICKET, '+44 20 7946 0958')).resolves.toMatchObject({ phoneMasked: '+44******0958' });
    expect(account.phone).toBe('+442079460958');
    expect(sent).toEqual([{ phone: '+442079460958', code: '111111' }]);
    await phone.verify(TICKET, '111111');
    expect(account.verified).toBe(true);
    // Once verified, the number cannot be replaced this way.
    await expect(phone.start(TICKET, '+8613800138000')).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
    expect(account.phone).toBe('+442079460958');
  });

  it('replacing an unverified number kills the code sent to the old one', async () => {
    const { phone, account, clock, codes } = setup();
    await phone.start(TICKET);
    clock.advance(60_000);
    await phone.start(TICKET, '+442079460958');
    expect(codes.pending(USER)?.phone).toBe('+442079460958');
    await expect(phone.verify(TICKET, '111111')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await phone.verify(TICKET, '222222');
    expect(account).toEqual({ phone: '+442079460958', verified: true });
  });

  it('refuses a malformed new number before touching the account', async () => {
    const { phone, account, sent } = setup();
    await expect(phone.start(TICKET, '12345')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'phone' } });
    expect(account.phone).toBe(PHONE);
    expect(sent).toHaveLength(0);
  });

  it('draws six-digit codes', () => {
    for (let i = 0; i < 200; i += 1) expect(randomCode()).toMatch(/^\d{6}$/);
  });
});
