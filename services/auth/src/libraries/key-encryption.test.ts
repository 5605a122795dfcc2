import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { createKeyEncryption } from './key-encryption.js';

const plaintext = JSON.stringify({ kty: 'EC', crv: 'P-256', d: 'private-scalar-value' });

describe('key encryption', () => {
  const secret = randomBytes(32);
  const encryption = createKeyEncryption(secret);

  it('round-trips and never contains the plaintext', () => {
    const stored = encryption.encrypt(plaintext, 'kid-1');
    expect(stored).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(stored).not.toContain('private-scalar-value');
    expect(Buffer.from(stored.split('.')[3]!, 'base64url').toString('utf8')).not.toContain('private-scalar-value');
    expect(encryption.decrypt(stored, 'kid-1')).toBe(plaintext);
  });

  it('uses a fresh IV every time', () => {
    expect(encryption.encrypt(plaintext, 'kid-1')).not.toBe(encryption.encrypt(plaintext, 'kid-1'));
  });

  it('refuses another secret, another key id and any tampering', () => {
    const stored = encryption.encrypt(plaintext, 'kid-1');
    expect(() => createKeyEncryption(randomBytes(32)).decrypt(stored, 'kid-1')).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
    expect(() => encryption.decrypt(stored, 'kid-2')).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
    const [version, iv, tag, ciphertext] = stored.split('.') as [string, string, string, string];
    const flipped = Buffer.from(ciphertext, 'base64url');
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    expect(() => encryption.decrypt([version, iv, tag, flipped.toString('base64url')].join('.'), 'kid-1')).toThrow(
      expect.objectContaining({ code: 'INTERNAL' }),
    );
    expect(() => encryption.decrypt(plaintext, 'kid-1')).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
  });

  it('requires a 32-byte secret', () => {
    expect(() => createKeyEncryption(randomBytes(16))).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
  });
});
