import { describe, expect, it } from '@jest/globals';
import { createPasswordHasher } from './passwords.js';

// Low cost keeps the unit test fast; production uses defaultPasswordCost.
const hasher = createPasswordHasher({ memoryCost: 1024, timeCost: 1, parallelism: 1 });

describe('password hasher', () => {
  it('hashes with argon2id and verifies only the right password', async () => {
    const hash = await hasher.hash('correct horse battery');
    expect(hash).toMatch(/^\$argon2id\$/);
    expect(hash).not.toContain('correct horse battery');
    await expect(hasher.verify(hash, 'correct horse battery')).resolves.toBe(true);
    await expect(hasher.verify(hash, 'correct horse battery!')).resolves.toBe(false);
  });

  it('treats a malformed stored hash as a failed verification', async () => {
    await expect(hasher.verify('not-a-hash', 'whatever password')).resolves.toBe(false);
  });

  it('never accepts anything against the dummy hash', async () => {
    await expect(hasher.verifyDummy('correct horse battery')).resolves.toBe(false);
    await expect(hasher.verifyDummy('')).resolves.toBe(false);
  });
});
