import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { decodePageToken, encodePageToken } from './page-token.js';

const ids = fc.bigInt({ min: 1n, max: 9_223_372_036_854_775_807n });

describe('page tokens', () => {
  it('round-trips every positive bigint ordering key', () => {
    fc.assert(fc.property(ids, (id) => decodePageToken(encodePageToken(id)) === id));
  });

  it('is opaque: the token is not the bare number', () => {
    expect(encodePageToken(42n)).not.toContain('42');
    expect(encodePageToken(42n)).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it.each([
    ['garbage', 'not a token!'],
    ['plain number', '42'],
    ['base64 of a number without version', Buffer.from('42').toString('base64url')],
    ['wrong version', Buffer.from('v2:42').toString('base64url')],
    ['zero', Buffer.from('v1:0').toString('base64url')],
    ['negative', Buffer.from('v1:-5').toString('base64url')],
    ['leading zero', Buffer.from('v1:042').toString('base64url')],
    ['beyond bigint range', Buffer.from('v1:9223372036854775808').toString('base64url')],
    ['trailing text', Buffer.from('v1:42 ').toString('base64url')],
    ['padded base64', `${encodePageToken(42n)}=`],
    ['non-canonical trailing bits', `${encodePageToken(7n).slice(0, -1)}Z`],
  ])('rejects a malformed token (%s) with INVALID_ARGUMENT', (_label, token) => {
    expect(() => decodePageToken(token)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('accepts only tokens it could have produced', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (token) => {
        try {
          const id = decodePageToken(token);
          return encodePageToken(id) === token;
        } catch (error) {
          return (error as { code?: string }).code === 'INVALID_ARGUMENT';
        }
      }),
    );
  });
});
