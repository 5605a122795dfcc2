import { createHash, randomInt as cryptoRandomInt } from 'node:crypto';
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

/** What is stored and looked up instead of the code: hex SHA-256 of its canonical form. */
export function hashActivationCode(code: string): string {
  return createHash('sha256').update(code, 'utf8').digest('hex');
}
