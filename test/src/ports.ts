import { randomInt } from 'node:crypto';
import { createServer } from 'node:net';

/**
 * Ports for the services a test spawns are drawn below Linux's ephemeral range (32768–60999 by
 * default). A port the kernel hands out for `listen(0)` or an outgoing connection — a test's
 * own OAuth provider, a client socket — is always in the ephemeral range, so it can never take a
 * port chosen here between the check and the spawned service's bind.
 */
const RANGE = { from: 20_000, to: 32_000 };

/** Ports this process has handed out: never twice. */
const handedOut = new Set<number>();

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A TCP port on 127.0.0.1, outside the ephemeral range, free a moment ago and not handed out before. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const port = randomInt(RANGE.from, RANGE.to);
    if (handedOut.has(port)) continue;
    if (await canListen(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port found in ${String(RANGE.from)}-${String(RANGE.to)} after 200 attempts`);
}
