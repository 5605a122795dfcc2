import { describe, expect, it } from '@jest/globals';
import { AppError } from '@portcullis/kit';
import fc from 'fast-check';
import { cleanUserAgent, parseClientIp, USER_AGENT_MAX_LENGTH } from './client-address.js';

describe('client ip', () => {
  it('is undefined when empty', () => {
    expect(parseClientIp('')).toBeUndefined();
    expect(parseClientIp('   ')).toBeUndefined();
  });

  it('keeps an IPv4 address as it is', () => {
    expect(parseClientIp(' 192.0.2.10 ')).toEqual({ ip: '192.0.2.10', throttleKey: '192.0.2.10' });
  });

  it.each([
    ['2001:DB8:1:2:3:4:5:6', '2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80::1', 'fe80:0:0:0::/64'],
    ['2001:db8:a:b::192.0.2.1', '2001:db8:a:b::192.0.2.1', '2001:db8:a:b::/64'],
  ])('counts IPv6 %s per /64 network', (input, ip, throttleKey) => {
    expect(parseClientIp(input)).toEqual({ ip, throttleKey });
  });

  it('treats IPv4-mapped IPv6 as the IPv4 address', () => {
    expect(parseClientIp('::ffff:192.0.2.1')).toEqual({ ip: '192.0.2.1', throttleKey: '192.0.2.1' });
    expect(parseClientIp('::FFFF:c000:0201')).toEqual({ ip: '192.0.2.1', throttleKey: '192.0.2.1' });
  });

  it('gives every address of one /64 the same key and different /64s different keys', () => {
    expect(parseClientIp('2001:db8:1:2::1')?.throttleKey).toBe(parseClientIp('2001:db8:1:2:ffff:ffff:ffff:ffff')?.throttleKey);
    expect(parseClientIp('2001:db8:1:2::1')?.throttleKey).not.toBe(parseClientIp('2001:db8:1:3::1')?.throttleKey);
  });

  it.each(['localhost', '192.0.2', '1.2.3.4.5', '256.1.1.1', '2001:db8::1::2', '1'.repeat(65), '192.0.2.1/24'])(
    'refuses %j with INVALID_ARGUMENT naming the field',
    (value) => {
      expect(() => parseClientIp(value)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', details: { field: 'client_ip' } }));
    },
  );

  it('parses every IPv4 and IPv6 address to a key of the expected shape', () => {
    fc.assert(
      fc.property(fc.ipV4(), (address) => {
        expect(parseClientIp(address)).toEqual({ ip: address, throttleKey: address });
      }),
    );
    fc.assert(
      fc.property(fc.ipV6(), (address) => {
        const parsed = parseClientIp(address);
        expect(parsed?.throttleKey).toMatch(/^(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){3}::\/64|\d{1,3}(?:\.\d{1,3}){3})$/);
      }),
    );
  });

  it('never throws anything but INVALID_ARGUMENT on arbitrary input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (value) => {
        try {
          parseClientIp(value);
        } catch (error) {
          expect(error).toBeInstanceOf(AppError);
          expect((error as AppError).code).toBe('INVALID_ARGUMENT');
        }
      }),
    );
  });
});

describe('user agent', () => {
  it('removes control characters, trims and bounds the length', () => {
    expect(cleanUserAgent('  Mozilla/5.0\u0000\r\n(X11)\u009b ')).toBe('Mozilla/5.0(X11)');
    expect(cleanUserAgent('u'.repeat(2_000))).toHaveLength(USER_AGENT_MAX_LENGTH);
  });
});
