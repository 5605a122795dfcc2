// A private redis-server process on a free port, for tests that take Redis away (fault tests):
// stopping it never touches the shared Redis other test runs use.
import { createConnection } from 'node:net';
import { startPrivateServer } from './private-server.js';

/** Whether a Redis server answers PING on 127.0.0.1:`port` within a second. */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = (answered: boolean) => {
      socket.destroy();
      resolve(answered);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('utf8');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

/**
 * Starts `redis-server` on a free port of 127.0.0.1 and waits until it answers PING. `stop()`
 * ends it (SIGTERM, then SIGKILL after a bound) and `start()` brings it back on the same port.
 * There are no background snapshots or append-only file, but a stop writes one snapshot into the
 * server's own temporary directory and a start loads it: a stop is an outage, not a wipe, so data
 * such as sessions is there again when Redis returns. `close()` stops it and removes the directory.
 */
export async function startRedisServer({ binary = '/usr/bin/redis-server' }: { binary?: string } = {}) {
  const server = await startPrivateServer({
    name: 'redis-server',
    binary,
    args: ({ port, dir, logFile }) => [
      ...['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      ...['--shutdown-on-sigterm', 'save', '--dir', dir, '--logfile', logFile],
    ],
    answers: answersPing,
    readyTimeoutMs: 10_000,
    readyIntervalMs: 50,
  });
  return { ...server, url: `redis://127.0.0.1:${server.port}` };
}

export type RedisServer = Awaited<ReturnType<typeof startRedisServer>>;
