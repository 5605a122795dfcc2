// A private redis-server process on a free port, for tests that take Redis away (fault tests):
// stopping it never touches the shared Redis other test runs use.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pollUntil } from './infra.js';
import { freePort } from './ports.js';

/** How long a stopped server may take to exit before it is killed. */
const stopBudgetMs = 5_000;

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
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-redis-'));
  const logFile = join(dir, 'redis.log');
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  args.push('--shutdown-on-sigterm', 'save', '--dir', dir, '--logfile', logFile);
  let child: ChildProcess | undefined;

  const lastLogLines = async () => (await readFile(logFile, 'utf8').catch(() => '(no log)')).trim().split('\n').slice(-10).join('\n');

  async function start(): Promise<void> {
    if (child) throw new Error(`redis-server on port ${port} is already running`);
    const started = spawn(binary, args, { stdio: 'ignore' });
    child = started;
    const exited = new Promise<void>((resolve) => started.once('exit', () => resolve()));
    started.once('error', () => undefined); // a failed spawn also exits; reported below
    try {
      await pollUntil(
        async () => {
          if (started.exitCode !== null || started.signalCode !== null) {
            throw new Error(`redis-server exited (${started.exitCode ?? started.signalCode}); last log lines:\n${await lastLogLines()}`);
          }
          return (await answersPing(port)) ? true : undefined;
        },
        { timeoutMs: 10_000, intervalMs: 50, what: `redis-server on port ${port} to answer PING` },
      );
    } catch (error) {
      started.kill('SIGKILL');
      await exited;
      child = undefined;
      throw error;
    }
  }

  async function stop(): Promise<void> {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    running.kill('SIGTERM');
    const timer = setTimeout(() => running.kill('SIGKILL'), stopBudgetMs);
    await exited;
    clearTimeout(timer);
  }

  await start().catch(async (error: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw error;
  });
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    logFile,
    start,
    stop,
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export type RedisServer = Awaited<ReturnType<typeof startRedisServer>>;
