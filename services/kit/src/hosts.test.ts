import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { normalizeHost, requireHost } from './hosts.js';

describe('normalizeHost', () => {
  it.each([
    ['Chat.Example.COM', 'chat.example.com'],
    ['chat.example.com:8443', 'chat.example.com'],
    ['CHAT.example.com.:443', 'chat.example.com'],
    ['localhost:8080', 'localhost'],
    ['127.0.0.1:8080', '127.0.0.1'],
    ['  a-b.example  ', 'a-b.example'],
  ])('canonicalises %s to %s', (raw, expected) => {
    expect(normalizeHost(raw)).toBe(expected);
  });

  it.each([
    '',
    ':443',
    'exa mple.com',
    'under_score.com',
    '-lead.com',
    'trail-.com',
    'a..b',
    'http://x.com',
    '[::1]:80',
    'x.com:99999',
    'x.com:',
    `${'a'.repeat(64)}.com`,
  ])('rejects %j', (raw) => {
    expect(normalizeHost(raw)).toBeUndefined();
  });

  it('rejects names longer than 253 characters', () => {
    const long = Array.from({ length: 64 }, () => 'abc').join('.');
    expect(long.length).toBeGreaterThan(253);
    expect(normalizeHost(long)).toBeUndefined();
  });

  it('maps any DNS name, in any case and with any port, to its lowercase form', () => {
    fc.assert(
      fc.property(fc.domain(), fc.boolean(), fc.option(fc.integer({ min: 0, max: 65535 })), (domain, upper, port) => {
        const raw = `${upper ? domain.toUpperCase() : domain}${port === null ? '' : `:${port}`}`;
        expect(normalizeHost(raw)).toBe(domain.toLowerCase());
      }),
    );
  });

  it('is idempotent and only ever returns lowercase names without a port', () => {
    fc.assert(
      fc.property(fc.string(), (raw) => {
        const once = normalizeHost(raw);
        if (once === undefined) return;
        expect(normalizeHost(once)).toBe(once);
        expect(once).toBe(once.toLowerCase());
        expect(once).not.toContain(':');
      }),
    );
  });

  it('requireHost names the field in its INVALID_ARGUMENT', () => {
    expect(() => requireHost('not a host')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', details: { field: 'host' } }));
  });
});
