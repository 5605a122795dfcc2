// A private nats-server process (JetStream on) on a free port, for tests that take NATS away
// (fault tests): stopping it never touches the shared NATS other test runs use.
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startPrivateServer } from './private-server.js';

/** Whether JetStream on `url` answers an account info request within a second. */
async function answersJetStream(url: string): Promise<boolean> {
  const nc = await connect({ servers: url, timeout: 1_000, reconnect: false }).catch(() => undefined);
  if (!nc) return false;
  try {
    await (await jetstreamManager(nc, { timeout: 1_000 })).getAccountInfo();
    return true;
  } catch {
    return false;
  } finally {
    await nc.close();
  }
}

/**
 * Starts `nats-server -js` on a free port of 127.0.0.1 with its own store directory, and waits until
 * JetStream answers. `stop()` ends it (SIGTERM, then SIGKILL after a bound) and `start()` brings it
 * back on the same port and store directory, so streams, their messages and durable consumers are
 * there again: a stop is an outage, not a wipe. `close()` stops it and removes the directory.
 */
export async function startNatsServer({ binary = '/usr/sbin/nats-server' }: { binary?: string } = {}) {
  const server = await startPrivateServer({
    name: 'nats-server',
    binary,
    args: ({ port, dir, logFile }) => ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', join(dir, 'store'), '-l', logFile],
    answers: (port) => answersJetStream(`nats://127.0.0.1:${port}`),
    readyTimeoutMs: 15_000,
    readyIntervalMs: 100,
  });
  return { ...server, url: `nats://127.0.0.1:${server.port}` };
}

export type NatsServer = Awaited<ReturnType<typeof startNatsServer>>;
