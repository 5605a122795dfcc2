import { describe, expect, it } from '@jest/globals';
import { addressBucketKey } from './client-address.js';

describe('client address buckets', () => {
  it('counts an IPv4 address as itself, also when it arrives IPv4-mapped', () => {
    expect(addressBucketKey('203.0.113.7')).toBe('203.0.113.7');
    expect(addressBucketKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
  });

  it('counts every IPv6 address of one /64 as one client', () => {
    const key = addressBucketKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd');
    expect(key).toBe('2001:db8:1:2::/64');
    expect(addressBucketKey('2001:0db8:0001:0002::1')).toBe(key);
    expect(addressBucketKey('2001:db8:1:3::1')).not.toBe(key);
    expect(addressBucketKey('::1')).toBe('0:0:0:0::/64');
  });

  it('leaves anything that is not an address as it is', () => {
    expect(addressBucketKey('')).toBe('');
    expect(addressBucketKey('not-an-address')).toBe('not-an-address');
  });
});
