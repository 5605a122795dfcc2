import { describe, expect, it } from '@jest/globals';
import { createLogger } from '@portcullis/kit';
import { createAccounts, type UserStore } from './accounts.js';

const logger = createLogger({ name: 'accounts-test', level: 'silent' });
const phone = '+8613800138000';

function fakeUsers() {
  const rows = new Map<string, { id: string; passwordHash: string; displayName: string; phone: string }>();
  const users: UserStore = {
    async insert({ email, passwordHash, displayName, phone }) {
      if (rows.has(email)) return undefined;
      const id = `user-${rows.size + 1}`;
      rows.set(email, { id, passwordHash, displayName, phone });
      return { id };
    },
    async findByEmail(email) {
      return rows.get(email);
    },
  };
  return { users, rows };
}

/** Reversible fake "hash" that records which verification path ran. */
function fakePasswords() {
  const calls: string[] = [];
  return {
    calls,
    passwords: {
      async hash(password: string) {
        return `hashed:${password}`;
      },
      async verify(passwordHash: string, password: string) {
        calls.push('verify');
        return passwordHash === `hashed:${password}`;
      },
      async verifyDummy(_password: string) {
        calls.push('verifyDummy');
        return false as const;
      },
    },
  };
}

describe('accounts', () => {
  it('signs up with a canonical email and stores only the hash', async () => {
    const { users, rows } = fakeUsers();
    const accounts = createAccounts({ users, passwords: fakePasswords().passwords, logger });
    const id = await accounts.signUp({
      email: ' Ada@Example.com ',
      password: 'a long enough pw',
      displayName: ' Ada ',
      phone: '+86 138 0013 8000',
    });
    expect(rows.get('ada@example.com')).toEqual({ id, passwordHash: 'hashed:a long enough pw', displayName: 'Ada', phone });
  });

  it('refuses a duplicate email, whatever its case', async () => {
    const { users } = fakeUsers();
    const accounts = createAccounts({ users, passwords: fakePasswords().passwords, logger });
    await accounts.signUp({ email: 'ada@example.com', password: 'a long enough pw', displayName: '', phone });
    await expect(accounts.signUp({ email: 'ADA@example.com', password: 'another long pw', displayName: '', phone })).rejects.toMatchObject({
      code: 'ALREADY_EXISTS',
    });
  });

  it('validates before hashing or storing', async () => {
    const { users, rows } = fakeUsers();
    const accounts = createAccounts({ users, passwords: fakePasswords().passwords, logger });
    await expect(accounts.signUp({ email: 'nope', password: 'a long enough pw', displayName: '', phone })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(accounts.signUp({ email: 'ada@example.com', password: 'short', displayName: '', phone })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(
      accounts.signUp({ email: 'ada@example.com', password: 'a long enough pw', displayName: '', phone: '138' }),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'phone' },
    });
    expect(rows.size).toBe(0);
  });

  it('authenticates the right password, case-insensitively on the email', async () => {
    const { users } = fakeUsers();
    const accounts = createAccounts({ users, passwords: fakePasswords().passwords, logger });
    const id = await accounts.signUp({ email: 'ada@example.com', password: 'a long enough pw', displayName: '', phone });
    await expect(accounts.authenticate('ADA@example.com', 'a long enough pw')).resolves.toBe(id);
  });

  it('gives unknown email and wrong password the same error, and verifies against the dummy hash for an unknown email', async () => {
    const { users } = fakeUsers();
    const fake = fakePasswords();
    const accounts = createAccounts({ users, passwords: fake.passwords, logger });
    await accounts.signUp({ email: 'ada@example.com', password: 'a long enough pw', displayName: '', phone });

    const wrongPassword = await accounts.authenticate('ada@example.com', 'the wrong password').catch((e: unknown) => e);
    const unknownEmail = await accounts.authenticate('bob@example.com', 'a long enough pw').catch((e: unknown) => e);
    expect(wrongPassword).toMatchObject({ code: 'UNAUTHENTICATED', message: 'invalid email or password' });
    expect(unknownEmail).toMatchObject({ code: 'UNAUTHENTICATED', message: 'invalid email or password' });
    expect(fake.calls).toEqual(['verify', 'verifyDummy']);
  });

  it('refuses an account without a password (Google/GitHub only) like a wrong password, after a dummy verification', async () => {
    const fake = fakePasswords();
    const users: UserStore = {
      insert: () => Promise.resolve(undefined),
      findByEmail: (email) => Promise.resolve(email === 'oauth@example.com' ? { id: 'user-oauth', passwordHash: null } : undefined),
    };
    const accounts = createAccounts({ users, passwords: fake.passwords, logger });
    const error = await accounts.authenticate('oauth@example.com', 'a long enough pw').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'UNAUTHENTICATED', message: 'invalid email or password' });
    expect(fake.calls).toEqual(['verifyDummy']);
  });

  it('refuses inputs no account can have with the same error', async () => {
    const { users } = fakeUsers();
    const accounts = createAccounts({ users, passwords: fakePasswords().passwords, logger });
    for (const [email, password] of [
      ['not-an-email', 'a long enough pw'],
      ['ada@example.com', ''],
      ['ada@example.com', 'x'.repeat(100_000)],
    ] as const) {
      await expect(accounts.authenticate(email, password)).rejects.toMatchObject({
        code: 'UNAUTHENTICATED',
        message: 'invalid email or password',
      });
    }
  });
});
