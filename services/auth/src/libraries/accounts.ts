import { AppError, type Logger } from '@portcullis/kit';
import {
  canonicalEmail,
  hasAcceptedPasswordLength,
  requireDisplayName,
  requireEmail,
  requireNewPassword,
  requirePhone,
} from './credentials.js';
import type { PasswordHasher } from './passwords.js';

/** What accounts need from the users table. */
export interface UserStore {
  /** Inserts a user; `undefined` when the email is already taken. */
  insert(user: { email: string; passwordHash: string; displayName: string; phone: string }): Promise<{ id: string } | undefined>;
  /** `passwordHash` is null for an account without a password (Google/GitHub sign-in only). */
  findByEmail(email: string): Promise<{ id: string; passwordHash: string | null } | undefined>;
}

export interface AccountsDeps {
  users: UserStore;
  passwords: Pick<PasswordHasher, 'hash' | 'verify' | 'verifyDummy'>;
  logger: Logger;
}

export interface SignUpInput {
  email: string;
  password: string;
  displayName: string;
  /** E.164; normalised before it is stored. */
  phone: string;
}

/** The one answer to every failed password login, whatever the reason. */
export const invalidCredentials = () => new AppError('UNAUTHENTICATED', 'invalid email or password');

/** Accounts: sign-up and password verification. */
export function createAccounts({ users, passwords, logger }: AccountsDeps) {
  return {
    async signUp(input: SignUpInput): Promise<string> {
      const email = requireEmail(input.email);
      const password = requireNewPassword(input.password);
      const displayName = requireDisplayName(input.displayName);
      const phone = requirePhone(input.phone);
      const created = await users.insert({ email, passwordHash: await passwords.hash(password), displayName, phone });
      if (!created) throw new AppError('ALREADY_EXISTS', 'an account with this email already exists', { details: { field: 'email' } });
      logger.info({ userId: created.id }, 'user signed up');
      return created.id;
    },

    /**
     * The user id for a correct email + password. Every failure is the same UNAUTHENTICATED
     * error, and an unknown email or an account without a password still costs one argon2
     * verification, so neither can be told from a wrong password.
     */
    async authenticate(emailInput: string, password: string): Promise<string> {
      const email = canonicalEmail(emailInput);
      // Inputs no account can have are refused before any work, which reveals nothing.
      if (email === undefined || !hasAcceptedPasswordLength(password)) throw invalidCredentials();
      const user = await users.findByEmail(email);
      const hash = user?.passwordHash ?? null;
      const verified = hash !== null ? await passwords.verify(hash, password) : await passwords.verifyDummy(password);
      if (!user || hash === null || !verified) {
        logger.info('password login refused');
        throw invalidCredentials();
      }
      return user.id;
    },
  };
}

export type Accounts = ReturnType<typeof createAccounts>;
