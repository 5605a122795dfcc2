import { createHmac, randomInt as cryptoRandomInt } from 'node:crypto';
import { AppError } from '@portcullis/kit';

/** Upper-case letters and digits without the look-alikes 0/O, 1/I/L. */
export const ACTIVATION_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
export const ACTIVATION_CODE_LENGTH = 6;
const CANONICAL_CODE = new RegExp(`^[${ACTIVATION_ALPHABET}]{${ACTIVATION_CODE_LENGTH}}$`);

/** Uniform integer in [0, max); `crypto.randomInt` in production. */
export type RandomInt = (max: number) => number;

const secureRandomInt: RandomInt = (max) => cryptoRandomInt(max);

/** A fresh activation code: each character drawn uniformly from the alphabet by a CSPRNG. */
export function generateActivationCode(randomInt: RandomInt = secureRandomInt): string {
  let code = '';
  for (let i = 0; i < ACTIVATION_CODE_LENGTH; i++) {
    const char = ACTIVATION_ALPHABET[randomInt(ACTIVATION_ALPHABET.length)];
    if (char === undefined) throw new AppError('INTERNAL', 'random index outside the activation alphabet');
    code += char;
  }
  return code;
}

/**
 * The canonical form of a code a person typed: trimmed and upper-cased. Anything that is
 * not exactly six characters of the alphabet is INVALID_ARGUMENT (the code is not echoed).
 */
export function normalizeActivationCode(raw: string): string {
  const code = raw.trim().toUpperCase();
  if (!CANONICAL_CODE.test(code)) {
    throw new AppError('INVALID_ARGUMENT', `code must be ${ACTIVATION_CODE_LENGTH} characters from ${ACTIVATION_ALPHABET}`, {
      details: { field: 'code' },
    });
  }
  return code;
}

/** Length of the HMAC key (`ACTIVATION_CODE_SECRET`) in bytes. */
export const ACTIVATION_CODE_SECRET_BYTES = 32;

/** Turns a canonical code into what is stored and looked up instead of it. */
export type ActivationCodeHasher = (code: string) => string;

/**
 * What is stored and looked up instead of the code: hex HMAC-SHA256 of its canonical form,
 * keyed with the service's secret. An unkeyed hash of a 6-character code (31^6 values) is
 * reversed offline in seconds; without the key a copied table reveals nothing.
 */
export function createActivationCodeHasher(secret: Uint8Array): ActivationCodeHasher {
  if (secret.length !== ACTIVATION_CODE_SECRET_BYTES) {
    throw new AppError('INVALID_CONFIG', `the activation code secret must be ${ACTIVATION_CODE_SECRET_BYTES} bytes`);
  }
  const key = Buffer.from(secret);
  return (code) => createHmac('sha256', key).update(code, 'utf8').digest('hex');
}
