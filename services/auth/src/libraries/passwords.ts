import { randomBytes } from 'node:crypto';
import { argon2id, hash as argon2Hash, verify as argon2Verify, type HashOptions } from 'argon2';

export interface PasswordCost {
  /** KiB of memory per hash. */
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

/** argon2id with the library's recommended cost (64 MiB, 3 passes, 4 lanes). */
export const defaultPasswordCost: PasswordCost = { memoryCost: 65_536, timeCost: 3, parallelism: 4 };

/**
 * argon2id hashing. `verifyDummy` spends the same work as a real verification against a
 * hash of a random password, so a login for an unknown email takes as long as a wrong
 * password for a known one.
 */
export function createPasswordHasher(cost: PasswordCost = defaultPasswordCost) {
  const options: HashOptions = { type: argon2id, ...cost };
  let dummyHash: Promise<string> | undefined;

  const hash = (password: string): Promise<string> => argon2Hash(password, options);

  return {
    hash,
    async verify(passwordHash: string, password: string): Promise<boolean> {
      try {
        return await argon2Verify(passwordHash, password);
      } catch {
        // A malformed stored hash never authenticates anyone.
        return false;
      }
    },
    async verifyDummy(password: string): Promise<false> {
      dummyHash ??= hash(randomBytes(32).toString('base64url'));
      await argon2Verify(await dummyHash, password).catch(() => false);
      return false;
    },
  };
}

export type PasswordHasher = ReturnType<typeof createPasswordHasher>;
