import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { AppError } from '@portcullis/kit';

/** Every address a host name resolves to, as the system resolver (and so `fetch`) sees it. */
export type Resolver = (hostname: string) => Promise<string[]>;

export const systemResolver: Resolver = async (hostname) =>
  (await lookup(hostname, { all: true, verbatim: true })).map((entry) => entry.address);

const MAX_URL_LENGTH = 2048;

/**
 * Addresses a tool endpoint may not reach unless the exact host:port is allow-listed:
 * unspecified, loopback, private, shared (CGNAT), link-local, multicast and reserved ranges,
 * and the IPv6 ranges that embed or tunnel an IPv4 address (NAT64, 6to4, Teredo), whose
 * IPv4 side could be any of the above. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) match
 * the IPv4 rules.
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
  ['64:ff9b::', 96], // NAT64 well-known prefix: the last 32 bits are an IPv4 address
  ['64:ff9b:1::', 48], // NAT64 local-use prefix
  ['100::', 64], // discard-only
  ['2001::', 32], // Teredo: tunnels to an IPv4 server and client
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4: bits 16-47 are an IPv4 address
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

/** The port a URL connects to: its explicit port, or the scheme's default. */
function portOf(url: URL): number {
  if (url.port !== '') return Number(url.port);
  return url.protocol === 'https:' ? 443 : 80;
}

/** One `host:port` a tool may target although it is private; `host` is lower case, IPv6 without brackets. */
export interface AllowedTarget {
  host: string;
  port: number;
}

/** `host:port` as an operator writes it, IPv6 in brackets. */
export function formatAllowedTarget({ host, port }: AllowedTarget): string {
  return host.includes(':') ? `[${host}]:${String(port)}` : `${host}:${String(port)}`;
}

const ALLOWED_TARGET = /^(?<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(?<port>[0-9]{1,5})$/;

/**
 * Parses a comma-separated list of `host:port` entries (`127.0.0.1:7070`, `localhost:8080`,
 * `[::1]:8080`). Hosts are normalised the way the URL parser normalises an endpoint's host
 * (lower case, canonical IPv4 and IPv6 spelling), so an entry matches exactly the endpoints
 * that connect there. A malformed entry is INVALID_CONFIG; an empty list allows nothing.
 */
export function parseAllowedTargets(text: string): AllowedTarget[] {
  const targets: AllowedTarget[] = [];
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const invalid = (why: string) => new AppError('INVALID_CONFIG', `allowed private target ${JSON.stringify(entry)} ${why}`);
    const match = ALLOWED_TARGET.exec(entry);
    const hostText = match?.groups?.['host'];
    const portText = match?.groups?.['port'];
    if (hostText === undefined || portText === undefined) {
      throw invalid('must be host:port, with an IPv6 address in brackets ([::1]:8080)');
    }
    const port = Number(portText);
    if (port < 1 || port > 65_535) throw invalid('must have a port from 1 to 65535');
    let url: URL;
    try {
      url = new URL(`http://${hostText}/`);
    } catch {
      throw invalid('does not name a valid host');
    }
    const host = hostOf(url);
    if (!targets.some((t) => t.host === host && t.port === port)) targets.push({ host, port });
  }
  return targets;
}

export type TargetVerdict =
  { allowed: true; addresses: string[] } | { allowed: false; reason: 'non-public' | 'unresolvable'; message: string };

export interface TargetGuardDeps {
  /** Exact host:port pairs that may be called even though they are private or loopback. */
  allowedPrivateTargets: readonly AllowedTarget[];
  resolve: Resolver;
}

/**
 * The SSRF guard: decides whether a tool endpoint may be called, after resolving its host.
 * Every resolved address must be public; one private address among several refuses the
 * target, since the HTTP client may pick any of them. Only an endpoint whose host and
 * effective port equal an allow-listed entry skips the check.
 */
export function createTargetGuard({ allowedPrivateTargets, resolve }: TargetGuardDeps) {
  const allowed = new Set(allowedPrivateTargets.map(formatAllowedTarget));
  return {
    async check(url: URL): Promise<TargetVerdict> {
      const host = hostOf(url);
      if (allowed.has(formatAllowedTarget({ host, port: portOf(url) }))) return { allowed: true, addresses: [] };
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
