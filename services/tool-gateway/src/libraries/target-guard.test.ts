import { describe, expect, it } from '@jest/globals';
import { createTargetGuard, isNonPublicAddress, parseEndpointUrl, type Resolver } from './target-guard.js';

const resolverOf =
  (table: Record<string, string[]>): Resolver =>
  async (hostname) => {
    const addresses = table[hostname];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return addresses;
  };

describe('isNonPublicAddress', () => {
  it.each([
    '127.0.0.1',
    '127.255.0.9',
    '0.0.0.0',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '224.0.0.1',
    '255.255.255.255',
    '::',
    '::1',
    'fe80::1',
    'fc00::1',
    'fd12:3456::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:a9fe:a9fe',
    'not-an-ip',
  ])('refuses %s', (address) => {
    expect(isNonPublicAddress(address)).toBe(true);
  });

  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('allows %s', (address) => {
    expect(isNonPublicAddress(address)).toBe(false);
  });
});

describe('parseEndpointUrl', () => {
  it('accepts http and https URLs', () => {
    expect(parseEndpointUrl(' https://tools.example.com/v1/run?x=1 ').toString()).toBe('https://tools.example.com/v1/run?x=1');
    expect(parseEndpointUrl('http://tools.example.com').hostname).toBe('tools.example.com');
  });

  it.each([
    ['', /required/],
    ['tools.example.com/run', /absolute URL/],
    ['ftp://tools.example.com/run', /http or https/],
    ['file:///etc/passwd', /http or https/],
    ['https://user:pw@tools.example.com/', /credentials/],
    ['https://user@tools.example.com/', /credentials/],
    ['https://tools.example.com/#frag', /fragment/],
    [`https://tools.example.com/${'a'.repeat(2100)}`, /at most/],
  ])('rejects %j', (raw, message) => {
    expect(() => parseEndpointUrl(raw)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(message) }),
    );
  });
});

describe('target guard', () => {
  const resolve = resolverOf({
    'public.example': ['93.184.216.34', '2606:2800:220:1::1'],
    'mixed.example': ['93.184.216.34', '10.0.0.7'],
    'metadata.example': ['169.254.169.254'],
  });
  const guard = createTargetGuard({ allowPrivateTargets: false, resolve });

  it('allows a host whose every address is public', async () => {
    expect(await guard.check(new URL('https://public.example/run'))).toEqual({
      allowed: true,
      addresses: ['93.184.216.34', '2606:2800:220:1::1'],
    });
  });

  it('refuses a host with any non-public address after resolution', async () => {
    expect(await guard.check(new URL('https://mixed.example/run'))).toMatchObject({ allowed: false, reason: 'non-public' });
    expect(await guard.check(new URL('https://metadata.example/latest'))).toMatchObject({ allowed: false, reason: 'non-public' });
  });

  it('checks IP literals without resolving them, including bracketed IPv6 and odd IPv4 spellings', async () => {
    const never: Resolver = () => Promise.reject(new Error('must not resolve'));
    const literalGuard = createTargetGuard({ allowPrivateTargets: false, resolve: never });
    for (const url of ['http://127.0.0.1:8080/', 'http://[::1]/', 'http://[::ffff:127.0.0.1]/', 'http://0x7f.1/', 'http://2130706433/']) {
      expect(await literalGuard.check(new URL(url))).toMatchObject({ allowed: false, reason: 'non-public' });
    }
    expect(await literalGuard.check(new URL('http://93.184.216.34/'))).toMatchObject({ allowed: true });
  });

  it('refuses a host that does not resolve', async () => {
    expect(await guard.check(new URL('https://nowhere.example/'))).toMatchObject({ allowed: false, reason: 'unresolvable' });
    const empty = createTargetGuard({ allowPrivateTargets: false, resolve: async () => [] });
    expect(await empty.check(new URL('https://public.example/'))).toMatchObject({ allowed: false, reason: 'unresolvable' });
  });

  it('allows everything, without resolving, when private targets are allowed', async () => {
    const open = createTargetGuard({ allowPrivateTargets: true, resolve: () => Promise.reject(new Error('must not resolve')) });
    expect(await open.check(new URL('http://127.0.0.1/'))).toMatchObject({ allowed: true });
  });
});
