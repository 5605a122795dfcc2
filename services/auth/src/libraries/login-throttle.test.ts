import { describe, expect, it } from '@jest/globals';
import { AppError, createLogger } from '@portcullis/kit';
import { fakeClock, memoryFailureCounter } from '../test-support/memory-stores.js';
import { parseClientIp } from './client-address.js';
import { accountThrottleKey, createLoginThrottle } from './login-throttle.js';

const logger = createLogger({ name: 'login-throttle-test', level: 'silent' });
const ada = 'ada@example.com';
const bob = 'bob@example.com';
const ip = parseClientIp('192.0.2.1');
const otherIp = parseClientIp('198.51.100.9');

function setup({ maxPerAccount = 5, maxPerIp = 50 } = {}) {
  const clock = fakeClock();
  const account = memoryFailureCounter(maxPerAccount, 900_000, clock);
  const address = memoryFailureCounter(maxPerIp, 900_000, clock);
  const throttle = createLoginThrottle({ account: account.counter, ip: address.counter, logger });
  let checks = 0;
  /** A sign-in whose password check is counted: right password succeeds, wrong one fails. */
  const signIn = (email: string, correct: boolean, client = ip) =>
    throttle.attempt(email, client, async () => {
      checks += 1;
      if (!correct) throw new AppError('UNAUTHENTICATED', 'invalid email or password');
      return 'user-id';
    });
  return { clock, account, address, signIn, throttle, checks: () => checks };
}

const failTimes = async (signIn: (email: string, correct: boolean) => Promise<string>, email: string, times: number) => {
  for (let attempt = 0; attempt < times; attempt += 1) {
    await expect(signIn(email, false)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  }
};

describe('login throttle', () => {
  it('refuses the right password after 5 failures, without checking it, until the window ends', async () => {
    const { signIn, checks, clock } = setup();
    await failTimes(signIn, ada, 5);
    expect(checks()).toBe(5);
    await expect(signIn(ada, true)).rejects.toMatchObject({
      code: 'RATE_LIMITED',
      message: 'too many failed sign-ins; try again in 900 seconds',
    });
    expect(checks()).toBe(5);
    clock.advance(600_000);
    await expect(signIn(ada, true)).rejects.toMatchObject({ message: 'too many failed sign-ins; try again in 300 seconds' });
    clock.advance(300_000);
    await expect(signIn(ada, true)).resolves.toBe('user-id');
  });

  it('counts the canonical email: case and spaces do not make a new account', async () => {
    const { signIn } = setup();
    await failTimes(signIn, ada, 3);
    await failTimes(signIn, ' ADA@Example.com ', 2);
    await expect(signIn('Ada@example.COM', true)).rejects.toMatchObject({ code: 'RATE_LIMITED' });
  });

  it('resets the account count on success, so failures must be consecutive', async () => {
    const { signIn, account } = setup();
    await failTimes(signIn, ada, 4);
    await expect(signIn(ada, true)).resolves.toBe('user-id');
    expect(account.count(accountThrottleKey(ada))).toBe(0);
    await failTimes(signIn, ada, 4);
    await expect(signIn(ada, true)).resolves.toBe('user-id');
  });

  it('does not block another account from the same address until the address cap', async () => {
    const { signIn, address } = setup({ maxPerIp: 8 });
    await failTimes(signIn, ada, 5);
    await expect(signIn(ada, true)).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    // Ada's refusal did not count against the address; a success gives its attempt back.
    expect(address.count('192.0.2.1')).toBe(5);
    await expect(signIn(bob, true)).resolves.toBe('user-id');
    expect(address.count('192.0.2.1')).toBe(5);
    await failTimes(signIn, bob, 3);
    await expect(signIn(bob, true)).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    // Bob is below his own cap: from another address he gets in.
    await expect(signIn(bob, true, otherIp)).resolves.toBe('user-id');
  });

  it('counts unknown-shape emails per address only', async () => {
    const { signIn, address, account } = setup({ maxPerIp: 3 });
    await failTimes(signIn, 'not an email', 3);
    expect(address.count('192.0.2.1')).toBe(3);
    await expect(signIn(ada, true)).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    // The address refusal gave ada's account attempt back.
    expect(account.count(accountThrottleKey(ada))).toBe(0);
  });

  it('skips the address limit when the client address is unknown', async () => {
    const { throttle, address } = setup({ maxPerIp: 1 });
    for (let attempt = 0; attempt < 3; attempt += 1) {
      await expect(
        throttle.attempt(`user${attempt}@example.com`, undefined, async () => {
          throw new AppError('UNAUTHENTICATED', 'invalid email or password');
        }),
      ).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    }
    await expect(throttle.attempt(ada, undefined, async () => 'user-id')).resolves.toBe('user-id');
    expect(address.count('192.0.2.1')).toBe(0);
  });

  it('lets no more than the cap through when guesses arrive in parallel', async () => {
    const { signIn, checks } = setup();
    const results = await Promise.allSettled(Array.from({ length: 30 }, () => signIn(ada, false)));
    expect(checks()).toBe(5);
    const codes = results.map((result) => (result.status === 'rejected' ? (result.reason as AppError).code : 'OK'));
    expect(codes.filter((code) => code === 'UNAUTHENTICATED')).toHaveLength(5);
    expect(codes.filter((code) => code === 'RATE_LIMITED')).toHaveLength(25);
  });

  it('does not count an outage as a failed sign-in', async () => {
    const { throttle, account, address } = setup();
    await expect(
      throttle.attempt(ada, ip, async () => {
        throw new AppError('INTERNAL', 'database gone');
      }),
    ).rejects.toMatchObject({ code: 'INTERNAL' });
    expect(account.count(accountThrottleKey(ada))).toBe(0);
    expect(address.count('192.0.2.1')).toBe(0);
  });

  it('fails closed with DEPENDENCY_UNAVAILABLE when the counters cannot be reached, before any password work', async () => {
    const { signIn, account, checks } = setup();
    account.failWith(new Error('Redis connection is not ready'));
    await expect(signIn(ada, true)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE', message: 'sign-in is unavailable right now' });
    expect(checks()).toBe(0);
  });
});
