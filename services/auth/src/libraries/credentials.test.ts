import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  canonicalEmail,
  canonicalPhone,
  maskPhone,
  requireDisplayName,
  requireEmail,
  requireNewPassword,
  requirePhone,
} from './credentials.js';

describe('email', () => {
  it('canonicalises by trimming and lowercasing', () => {
    expect(requireEmail('  Alice@Example.COM ')).toBe('alice@example.com');
  });

  it.each(['', 'alice', 'alice@', '@example.com', 'alice@example', 'a b@example.com', 'a@@example.com', 'alice@example..com'])(
    'rejects %j with INVALID_ARGUMENT naming the field',
    (email) => {
      expect(() => requireEmail(email)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', details: { field: 'email' } }));
    },
  );

  it('accepts 254 characters and rejects 255', () => {
    const domain = `${'d'.repeat(63)}.${'e'.repeat(63)}.${'f'.repeat(63)}.com`;
    const local = (n: number) => 'l'.repeat(n - domain.length - 1);
    expect(requireEmail(`${local(254)}@${domain}`)).toHaveLength(254);
    expect(() => requireEmail(`${local(255)}@${domain}`)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('never returns anything but a lowercase, trimmed, bounded address with one @', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (input) => {
        const email = canonicalEmail(input);
        if (email === undefined) return;
        expect(email).toBe(email.trim().toLowerCase());
        expect(email.length).toBeLessThanOrEqual(254);
        expect(email.split('@')).toHaveLength(2);
      }),
    );
  });
});

describe('password', () => {
  it('accepts 12 to 256 characters, unchanged', () => {
    expect(requireNewPassword(' 12 chars ok ')).toBe(' 12 chars ok ');
    expect(requireNewPassword('x'.repeat(256))).toHaveLength(256);
  });

  it('counts characters, not UTF-16 units', () => {
    expect(requireNewPassword('🔐'.repeat(12))).toBe('🔐'.repeat(12));
    expect(() => requireNewPassword('🔐'.repeat(6))).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it.each([0, 11, 257, 10_000])('rejects %d characters without echoing the password', (length) => {
    const password = 'p'.repeat(length);
    let thrown: unknown;
    try {
      requireNewPassword(password);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'password' } });
    if (length > 0) expect((thrown as Error).message).not.toContain(password);
  });
});

describe('display name', () => {
  it('trims and bounds the display name', () => {
    expect(requireDisplayName('  Alice  ')).toBe('Alice');
    expect(requireDisplayName('')).toBe('');
    expect(() => requireDisplayName('n'.repeat(101))).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('phone', () => {
  it.each([
    ['+8613800138000', '+8613800138000'],
    [' +86 138-0013-8000 ', '+8613800138000'],
    ['+1 (415) 555.2671', '+14155552671'],
    ['0044 20 7946 0958', '+442079460958'],
  ])('normalises %j to %j', (input, expected) => {
    expect(requirePhone(input)).toBe(expected);
  });

  it.each(['', '13800138000', '+0123456789', '+12345', '+1234567890123456', '+86 138 abc', '++8613800138000', `+86${'1'.repeat(40)}`])(
    'rejects %j with INVALID_ARGUMENT naming the field',
    (phone) => {
      expect(() => requirePhone(phone)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', details: { field: 'phone' } }));
    },
  );

  it('only ever yields "+" and 7 to 15 digits', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (input) => {
        const phone = canonicalPhone(input);
        if (phone !== undefined) expect(phone).toMatch(/^\+[1-9]\d{6,14}$/);
      }),
    );
  });

  it('masks all but the country code and the last four digits', () => {
    expect(maskPhone('+8613800138000')).toBe('+86*******8000');
    expect(maskPhone('+14155552671')).toBe('+1******2671');
  });
});
