import { describe, expect, it } from '@jest/globals';
import {
  createTargetGuard,
  formatAllowedTarget,
  isNonPublicAddress,
  parseAllowedTargets,
  parseEndpointUrl,
  type Resolver,
} from './target-guard.js';

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

  it.each([
    ['64:ff9b::7f00:1', 'NAT64 of 127.0.0.1'],
    ['64:ff9b::a9fe:a9fe', 'NAT64 of 169.254.169.254'],
    ['64:ff9b::808:808', 'NAT64 of a public address: the translator decides where it goes'],
    ['64:ff9b:1::a00:1', 'NAT64 local-use prefix'],
    ['64:ff9b:1:ffff::1', 'end of the NAT64 local-use /48'],
    ['2002:7f00:1::', '6to4 of 127.0.0.1'],
    ['2002:a9fe:a9fe::1', '6to4 of 169.254.169.254'],
    ['2002:808:808::1', '6to4 of a public address'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'Teredo'],
    ['2001::1', 'start of the Teredo /32'],
    ['2001:db8::1', 'documentation'],
    ['2001:db8:ffff:ffff::1', 'end of the documentation /32'],
  ])('refuses %s (%s)', (address) => {
    expect(isNonPublicAddress(address)).toBe(true);
  });

  it.each([
    '93.184.216.34',
    '8.8.8.8',
    '172.32.0.1',
    '2606:4700:4700::1111',
    '::ffff:8.8.8.8',
    '2001:4860:4860::8888',
    '2001:1::1',
    '2001:db9::1',
    '2003::1',
    '64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff',
    '64:ff9b:0:0:0:1::1',
    '64:ff9b:2::1',
  ])('allows %s', (address) => {
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
  const guard = createTargetGuard({ allowedPrivateTargets: [], resolve });

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
    const literalGuard = createTargetGuard({ allowedPrivateTargets: [], resolve: never });
    for (const url of [
      'http://127.0.0.1:8080/',
      'http://[::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://0x7f.1/',
      'http://2130706433/',
      'http://[64:ff9b::127.0.0.1]/',
      'http://[2002:7f00:1::]/',
      'http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/',
    ]) {
      expect(await literalGuard.check(new URL(url))).toMatchObject({ allowed: false, reason: 'non-public' });
    }
    expect(await literalGuard.check(new URL('http://93.184.216.34/'))).toMatchObject({ allowed: true });
  });

  it('refuses a host that does not resolve', async () => {
    expect(await guard.check(new URL('https://nowhere.example/'))).toMatchObject({ allowed: false, reason: 'unresolvable' });
    const empty = createTargetGuard({ allowedPrivateTargets: [], resolve: async () => [] });
    expect(await empty.check(new URL('https://public.example/'))).toMatchObject({ allowed: false, reason: 'unresolvable' });
  });

  it('refuses hosts that resolve into the IPv4-embedding IPv6 ranges', async () => {
    const tunnels = createTargetGuard({
      allowedPrivateTargets: [],
      resolve: resolverOf({
        'nat64.example': ['64:ff9b::7f00:1'],
        'sixtofour.example': ['2002:7f00:1::'],
        'teredo.example': ['2001:0:4136:e378:8000:63bf:3fff:fdd2'],
        'docs.example': ['2001:db8::1'],
      }),
    });
    for (const host of ['nat64.example', 'sixtofour.example', 'teredo.example', 'docs.example']) {
      expect(await tunnels.check(new URL(`https://${host}/`))).toMatchObject({ allowed: false, reason: 'non-public' });
    }
  });
});

describe('allowed private targets', () => {
  const never: Resolver = () => Promise.reject(new Error('must not resolve'));
  const guardAllowing = (list: string, resolve: Resolver = never) =>
    createTargetGuard({ allowedPrivateTargets: parseAllowedTargets(list), resolve });

  it('parses and normalises host:port entries, ignoring blanks and duplicates', () => {
    expect(parseAllowedTargets('')).toEqual([]);
    expect(parseAllowedTargets(' , ')).toEqual([]);
    expect(parseAllowedTargets(' 127.0.0.1:7070 , LocalHost:8080,[0:0::1]:9000,127.1:7070,0x7f000001:7070')).toEqual([
      { host: '127.0.0.1', port: 7070 },
      { host: 'localhost', port: 8080 },
      { host: '::1', port: 9000 },
    ]);
    expect(parseAllowedTargets('[::1]:9000,localhost:8080').map(formatAllowedTarget)).toEqual(['[::1]:9000', 'localhost:8080']);
  });

  it.each([
    ['127.0.0.1', /host:port/],
    ['127.0.0.1:', /host:port/],
    [':8080', /host:port/],
    ['::1:8080', /brackets/],
    ['http://127.0.0.1:8080', /host:port/],
    ['user@127.0.0.1:8080', /host:port/],
    ['127.0.0.1:8080/path', /host:port/],
    ['127.0.0.1:0', /port from 1 to 65535/],
    ['127.0.0.1:65536', /port from 1 to 65535/],
    ['127.0.0.1:123456', /host:port/],
    ['999.0.0.1:80', /valid host/],
    ['[not-v6]:80', /host:port/],
    ['[12345::]:80', /valid host/],
  ])('rejects the entry %j', (entry, message) => {
    expect(() => parseAllowedTargets(`127.0.0.1:7070,${entry}`)).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG', message: expect.stringMatching(message) }),
    );
  });

  it('lets exactly the listed host and port through, without resolving it', async () => {
    const guard = guardAllowing('127.0.0.1:7070,localhost:8080,[::1]:9000');
    for (const url of [
      'http://127.0.0.1:7070/echo',
      'https://127.0.0.1:7070/',
      'http://2130706433:7070/',
      'http://LOCALHOST:8080/run',
      'http://[::1]:9000/',
      'http://[0::1]:9000/',
    ]) {
      expect(await guard.check(new URL(url))).toEqual({ allowed: true, addresses: [] });
    }
  });

  it('gives every other host or port of a private address the full check', async () => {
    const guard = guardAllowing('127.0.0.1:7070,localhost:8080', resolverOf({ localhost: ['127.0.0.1', '::1'] }));
    for (const url of [
      'http://127.0.0.1:7071/',
      'http://127.0.0.1/',
      'http://127.0.0.2:7070/',
      'http://localhost:7070/',
      'http://[::1]:7070/',
      'http://[::ffff:127.0.0.1]:7070/',
      'http://localhost:8081/',
      'http://localhost/',
      'http://169.254.169.254:7070/',
    ]) {
      expect(await guard.check(new URL(url))).toMatchObject({ allowed: false, reason: 'non-public' });
    }
  });

  it('matches the scheme default port when the URL names none', async () => {
    const guard = guardAllowing('10.0.0.5:80,10.0.0.6:443');
    expect(await guard.check(new URL('http://10.0.0.5/'))).toMatchObject({ allowed: true });
    expect(await guard.check(new URL('http://10.0.0.5:80/'))).toMatchObject({ allowed: true });
    expect(await guard.check(new URL('https://10.0.0.5/'))).toMatchObject({ allowed: false, reason: 'non-public' });
    expect(await guard.check(new URL('https://10.0.0.6/'))).toMatchObject({ allowed: true });
    expect(await guard.check(new URL('http://10.0.0.6/'))).toMatchObject({ allowed: false, reason: 'non-public' });
  });

  it('still checks public hosts normally when a list is set', async () => {
    const guard = guardAllowing(
      '127.0.0.1:7070',
      resolverOf({ 'public.example': ['93.184.216.34'], 'mixed.example': ['8.8.8.8', '10.0.0.1'] }),
    );
    expect(await guard.check(new URL('https://public.example/'))).toEqual({ allowed: true, addresses: ['93.184.216.34'] });
    expect(await guard.check(new URL('https://mixed.example/'))).toMatchObject({ allowed: false, reason: 'non-public' });
    expect(await guard.check(new URL('https://nowhere.example/'))).toMatchObject({ allowed: false, reason: 'unresolvable' });
  });
});
