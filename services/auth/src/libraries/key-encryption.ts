import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { AppError } from '@portcullis/kit';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Binds a ciphertext to the key id it was stored under, so rows cannot be swapped. */
const associatedData = (kid: string): Buffer => Buffer.from(`portcullis-auth:signing-key:${kid}`, 'utf8');

/**
 * AES-256-GCM envelope for private signing keys at rest:
 * `v1.<iv>.<tag>.<ciphertext>`, each part base64url, the key id as associated data.
 */
export function createKeyEncryption(secret: Buffer) {
  if (secret.length !== 32) throw new AppError('INVALID_CONFIG', 'signing key secret must be 32 bytes');
  const key = Buffer.from(secret);

  return {
    encrypt(plaintext: string, kid: string): string {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(associatedData(kid));
      const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return [VERSION, iv, cipher.getAuthTag(), ciphertext]
        .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
        .join('.');
    },
    decrypt(stored: string, kid: string): string {
      const [version, iv, tag, ciphertext, ...rest] = stored.split('.');
      if (version !== VERSION || iv === undefined || tag === undefined || ciphertext === undefined || rest.length > 0) {
        throw new AppError('INTERNAL', `signing key ${kid} has an unreadable encrypted form`);
      }
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'), { authTagLength: TAG_BYTES });
        decipher.setAAD(associatedData(kid));
        decipher.setAuthTag(Buffer.from(tag, 'base64url'));
        return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
      } catch (error) {
        throw new AppError('INTERNAL', `signing key ${kid} cannot be decrypted with the configured secret`, { cause: error });
      }
    },
  };
}

export type KeyEncryption = ReturnType<typeof createKeyEncryption>;
