import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { AppError } from '@portcullis/kit';

/** Every address a host name resolves to, as the system resolver (and so `fetch`) sees it. */
export type Resolver = (hostname: string) => Promise<string[]>;

export const systemResolver: Resolver = async (hostname) =>
  (await lookup(hostname, { all: true, verbatim: true })).map((entry) => entry.address);

const MAX_URL_LENGTH = 2048;

/**
 * Addresses a tool endpoint may not reach unless private targets are allowed: unspecified,
 * loopback, private, shared (CGNAT), link-local, multicast and reserved ranges. IPv4-mapped
 * IPv6 addresses (`::ffff:a.b.c.d`) match the IPv4 rules.
 */
const nonPublic = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  nonPublic.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 96], // unspecified, loopback and the deprecated IPv4-compatible form
  ['100::', 64], // discard-only
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // deprecated site-local
  ['ff00::', 8], // multicast
] as const) {
  nonPublic.addSubnet(network, prefix, 'ipv6');
}

/** True for any address a tool may not target by default; anything that is not an IP counts too. */
export function isNonPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  return nonPublic.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Parses a tool endpoint: an absolute http(s) URL with a host, no credentials and no
 * fragment. Anything else is INVALID_ARGUMENT.
 */
export function parseEndpointUrl(raw: string): URL {
  const invalid = (why: string) => new AppError('INVALID_ARGUMENT', `endpoint_url ${why}`, { details: { field: 'endpoint_url' } });
  const text = raw.trim();
  if (text.length === 0) throw invalid('is required');
  if (text.length > MAX_URL_LENGTH) throw invalid(`must be at most ${MAX_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid('must be an absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid('must use http or https');
  if (url.username !== '' || url.password !== '') throw invalid('must not carry credentials');
  if (url.hostname === '') throw invalid('must name a host');
  if (url.hash !== '') throw invalid('must not have a fragment');
  return url;
}

/** The host of a URL without the brackets WHATWG keeps around IPv6 literals. */
function hostOf(url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}

export type TargetVerdict =
  { allowed: true; addresses: string[] } | { allowed: false; reason: 'non-public' | 'unresolvable'; message: string };

export interface TargetGuardDeps {
  allowPrivateTargets: boolean;
  resolve: Resolver;
}

/**
 * The SSRF guard: decides whether a tool endpoint may be called, after resolving its host.
 * Every resolved address must be public; one private address among several refuses the
 * target, since the HTTP client may pick any of them.
 */
export function createTargetGuard({ allowPrivateTargets, resolve }: TargetGuardDeps) {
  return {
    async check(url: URL): Promise<TargetVerdict> {
      if (allowPrivateTargets) return { allowed: true, addresses: [] };
      const host = hostOf(url);
      let addresses: string[];
      if (isIP(host) !== 0) {
        addresses = [host];
      } else {
        try {
          addresses = await resolve(host);
        } catch {
          addresses = [];
        }
        if (addresses.length === 0) {
          return { allowed: false, reason: 'unresolvable', message: `endpoint host ${host} could not be resolved` };
        }
      }
      if (addresses.some(isNonPublicAddress)) {
        return { allowed: false, reason: 'non-public', message: 'endpoint resolves to a loopback, private or link-local address' };
      }
      return { allowed: true, addresses };
    },
  };
}

export type TargetGuard = ReturnType<typeof createTargetGuard>;
