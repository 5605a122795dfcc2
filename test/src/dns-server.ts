import { createSocket } from 'node:dgram';
import dnsPacket from 'dns-packet';

/**
 * A DNS server on 127.0.0.1 (UDP) that answers TXT queries from records the test publishes, and
 * NXDOMAIN for everything else: what tenant-registry asks when it verifies a domain's ownership
 * (DOMAIN_VERIFICATION_DNS_SERVERS points at it).
 */
export async function startDnsServer() {
  const records = new Map<string, string[]>();
  const socket = createSocket('udp4');
  socket.on('message', (message, remote) => {
    let query: dnsPacket.Packet;
    try {
      query = dnsPacket.decode(message);
    } catch {
      return;
    }
    const question = query.questions?.[0];
    const values = question && question.type === 'TXT' ? records.get(question.name.toLowerCase()) : undefined;
    const answer = dnsPacket.encode({
      id: query.id ?? 0,
      type: 'response',
      flags: dnsPacket.AUTHORITATIVE_ANSWER | (values ? 0 : 3), // rcode 3: NXDOMAIN
      questions: query.questions ?? [],
      answers: (values ?? []).map((data) => ({ type: 'TXT' as const, name: question?.name ?? '', ttl: 0, data })),
    });
    socket.send(answer, remote.port, remote.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  const { port } = socket.address();
  return {
    /** `127.0.0.1:<port>`, for DOMAIN_VERIFICATION_DNS_SERVERS. */
    address: `127.0.0.1:${port}`,
    /** Adds a TXT record (a name may have several). */
    publishTxt(name: string, value: string) {
      const key = name.toLowerCase();
      records.set(key, [...(records.get(key) ?? []), value]);
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
