import { isIP } from 'node:net';
import { AppError } from '@portcullis/kit';

/** Longer than any textual IPv6 address with a zone; anything beyond is not an address. */
const CLIENT_IP_MAX_LENGTH = 64;
/** User agents are kept for display only; longer ones are cut. */
export const USER_AGENT_MAX_LENGTH = 512;

export interface ClientAddress {
  /** The address as given (lowercased, zone removed; IPv4-mapped IPv6 as plain IPv4). */
  ip: string;
  /**
   * What sign-in throttling counts per: the IPv4 address itself, or the /64 network of an
   * IPv6 address (one host usually holds a whole /64, so counting single addresses would
   * let it rotate freely).
   */
  throttleKey: string;
}

/** The eight 16-bit groups of an address `isIP` accepted as IPv6. */
function ipv6Groups(address: string): number[] {
  let text = address;
  const tail: number[] = [];
  // An embedded IPv4 suffix (::ffff:192.0.2.1) stands for the last two groups.
  const lastColon = text.lastIndexOf(':');
  const suffix = text.slice(lastColon + 1);
  if (suffix.includes('.')) {
    const [a = 0, b = 0, c = 0, d = 0] = suffix.split('.').map(Number);
    tail.push((a << 8) | b, (c << 8) | d);
    text = text.slice(0, lastColon + 1);
    // "…::" keeps its "::"; a single trailing ":" only separated the IPv4 part.
    if (!text.endsWith('::')) text = text.slice(0, -1);
  }
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((group) => Number.parseInt(group, 16)));
  const [head = '', rest] = text.split('::');
  const before = parse(head);
  const after = rest === undefined ? [] : parse(rest);
  const zeros = 8 - tail.length - before.length - after.length;
  return [...before, ...Array<number>(Math.max(zeros, 0)).fill(0), ...after, ...tail];
}

const invalidClientIp = () =>
  new AppError('INVALID_ARGUMENT', 'client_ip must be an IP address or empty', { details: { field: 'client_ip' } });

/**
 * The client address the gateway reports: undefined when empty (not known), INVALID_ARGUMENT
 * when it is not an IPv4 or IPv6 address.
 */
export function parseClientIp(value: string): ClientAddress | undefined {
  const trimmed = value.trim();
  if (trimmed === '') return undefined;
  if (trimmed.length > CLIENT_IP_MAX_LENGTH) throw invalidClientIp();
  const address = trimmed.toLowerCase().split('%')[0] ?? '';
  switch (isIP(address)) {
    case 4:
      return { ip: address, throttleKey: address };
    case 6: {
      const groups = ipv6Groups(address);
      if (groups.length !== 8 || groups.some((group) => !Number.isInteger(group) || group < 0 || group > 0xffff)) {
        throw invalidClientIp();
      }
      const [g0, g1, g2, g3, g4, g5, g6 = 0, g7 = 0] = groups;
      if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0xffff) {
        const ipv4 = [g6 >> 8, g6 & 0xff, g7 >> 8, g7 & 0xff].join('.');
        return { ip: ipv4, throttleKey: ipv4 };
      }
      const network = groups
        .slice(0, 4)
        .map((group) => group.toString(16))
        .join(':');
      return { ip: address, throttleKey: `${network}::/64` };
    }
    default:
      throw invalidClientIp();
  }
}

/** A user agent fit to store and show: control characters removed, trimmed, bounded. */
export function cleanUserAgent(value: string): string {
  // eslint-disable-next-line no-control-regex -- removing control characters is the point
  return Array.from(value.replace(/[\u0000-\u001f\u007f-\u009f]/g, '').trim())
    .slice(0, USER_AGENT_MAX_LENGTH)
    .join('');
}
