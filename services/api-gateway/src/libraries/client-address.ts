import ipaddr from 'ipaddr.js';

/**
 * The key a client address is counted under in per-address rate limits: an IPv4 address as it
 * is (also when it arrives IPv4-mapped), an IPv6 address by its /64 — one client usually holds a
 * whole /64, so counting single IPv6 addresses would give it endless fresh buckets.
 */
export function addressBucketKey(address: string): string {
  if (!ipaddr.isValid(address)) return address;
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  if (parsed.kind() === 'ipv4') return parsed.toString();
  return `${(parsed as ipaddr.IPv6).toNormalizedString().split(':').slice(0, 4).join(':')}::/64`;
}
