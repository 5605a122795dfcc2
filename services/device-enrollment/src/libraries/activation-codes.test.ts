import { createHash } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  ACTIVATION_ALPHABET,
  ACTIVATION_CODE_LENGTH,
  createActivationCodeHasher,
  generateActivationCode,
  normalizeActivationCode,
} from './activation-codes.js';

const alphabetChar = fc.constantFrom(...Array.from(ACTIVATION_ALPHABET));
const validCode = fc.string({ unit: alphabetChar, minLength: ACTIVATION_CODE_LENGTH, maxLength: ACTIVATION_CODE_LENGTH });

describe('activation code alphabet', () => {
  it('has no ambiguous characters and no duplicates', () => {
    for (const ambiguous of ['0', 'O', '1', 'I', 'L']) expect(ACTIVATION_ALPHABET).not.toContain(ambiguous);
    expect(new Set(ACTIVATION_ALPHABET).size).toBe(ACTIVATION_ALPHABET.length);
    expect(ACTIVATION_ALPHABET).toMatch(/^[A-Z2-9]+$/);
  });
});

describe('generateActivationCode', () => {
  it('draws six characters of the alphabet from crypto.randomInt by default', () => {
    const codes = Array.from({ length: 200 }, () => generateActivationCode());
    for (const code of codes) expect(code).toMatch(/^[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{6}$/);
    expect(new Set(codes).size).toBeGreaterThan(190);
  });

  it('maps every index the random source can return onto the alphabet', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: ACTIVATION_ALPHABET.length - 1 }), { minLength: 6, maxLength: 6 }), (indexes) => {
        const queue = [...indexes];
        const asked: number[] = [];
        const code = generateActivationCode((max) => {
          asked.push(max);
          return queue.shift()!;
        });
        expect(code).toBe(indexes.map((i) => ACTIVATION_ALPHABET[i]).join(''));
        expect(asked).toEqual(Array.from({ length: 6 }, () => ACTIVATION_ALPHABET.length));
      }),
    );
  });

  it('can produce the first and last character of the alphabet', () => {
    expect(generateActivationCode(() => 0)).toBe('AAAAAA');
    expect(generateActivationCode((max) => max - 1)).toBe('999999');
  });
});

describe('normalizeActivationCode', () => {
  it('accepts any valid code typed in lower case or with surrounding whitespace', () => {
    fc.assert(
      fc.property(
        validCode,
        fc.constantFrom('', ' ', '\t', '\n '),
        fc.constantFrom('', ' ', '\r\n'),
        fc.boolean(),
        (code, before, after, lower) => {
          expect(normalizeActivationCode(`${before}${lower ? code.toLowerCase() : code}${after}`)).toBe(code);
        },
      ),
    );
  });

  it.each(['', 'ABCDE', 'ABCDEFG', 'ABC DE', 'ABCD0E', 'ABCDOE', 'ABCD1E', 'ABCDIE', 'abcdle', 'ABC-DE', 'ÄBCDEF'])('rejects %j', (raw) => {
    expect(() => normalizeActivationCode(raw)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('rejects any string containing a character outside the alphabet', () => {
    const outsider = fc
      .string({ minLength: 1, maxLength: 1 })
      .filter((c) => !ACTIVATION_ALPHABET.includes(c.toUpperCase()) && c.trim() === c);
    fc.assert(
      fc.property(validCode, outsider, fc.nat({ max: 5 }), (code, bad, at) => {
        const typed = code.slice(0, at) + bad + code.slice(at + 1);
        expect(() => normalizeActivationCode(typed)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
      }),
    );
  });

  it('does not echo the typed code in its error', () => {
    expect(() => normalizeActivationCode('SECRET0')).toThrow(expect.objectContaining({ message: expect.not.stringContaining('SECRET0') }));
  });
});

describe('createActivationCodeHasher', () => {
  const sevens = Buffer.alloc(32, 7);
  const eights = Buffer.alloc(32, 8);

  it('is the hex HMAC-SHA256 of the canonical code under the secret', () => {
    // Reference values from `printf ABCDEF | openssl dgst -sha256 -mac HMAC -macopt hexkey:0707…07` (32 bytes).
    expect(createActivationCodeHasher(sevens)('ABCDEF')).toBe('579d7afb9ae4877bc5fc2c9574900e64538e986c430eb2733071a676947eb422');
    expect(createActivationCodeHasher(eights)('ABCDEF')).toBe('55b78a870be49194cce949345f64fcc0e2e6c4295c1c3516cdb24205eaeba6cf');
    const hash = createActivationCodeHasher(sevens);
    expect(hash(normalizeActivationCode(' abcdef '))).toBe(hash('ABCDEF'));
  });

  it('is not the unkeyed SHA-256 an attacker could enumerate', () => {
    fc.assert(
      fc.property(validCode, (code) => {
        expect(createActivationCodeHasher(sevens)(code)).not.toBe(createHash('sha256').update(code).digest('hex'));
      }),
    );
  });

  it('gives different codes different hashes and different secrets different hashes', () => {
    fc.assert(
      fc.property(validCode, validCode, (a, b) => {
        fc.pre(a !== b);
        const hash = createActivationCodeHasher(sevens);
        expect(hash(a)).not.toBe(hash(b));
        expect(hash(a)).toMatch(/^[0-9a-f]{64}$/);
        expect(createActivationCodeHasher(eights)(a)).not.toBe(hash(a));
      }),
    );
  });

  it('refuses a secret that is not 32 bytes', () => {
    for (const length of [0, 16, 31, 33]) {
      expect(() => createActivationCodeHasher(Buffer.alloc(length, 1))).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    }
  });

  it('keeps its own copy of the secret', () => {
    const secret = Buffer.alloc(32, 7);
    const hash = createActivationCodeHasher(secret);
    secret.fill(0);
    expect(hash('ABCDEF')).toBe('579d7afb9ae4877bc5fc2c9574900e64538e986c430eb2733071a676947eb422');
  });
});
