// A private nats-server process (JetStream on) on a free port, for tests that take NATS away
// (fault tests): stopping it never touches the shared NATS other test runs use.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { pollUntil } from './infra.js';
import { freePort } from './ports.js';

/** How long a stopped server may take to exit before it is killed. */
const stopBudgetMs = 5_000;

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
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-nats-'));
  const logFile = join(dir, 'nats.log');
  const url = `nats://127.0.0.1:${port}`;
  const args = ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', join(dir, 'store'), '-l', logFile];
  let child: ChildProcess | undefined;

  const lastLogLines = async () => (await readFile(logFile, 'utf8').catch(() => '(no log)')).trim().split('\n').slice(-10).join('\n');

  async function start(): Promise<void> {
    if (child) throw new Error(`nats-server on port ${port} is already running`);
    const started = spawn(binary, args, { stdio: 'ignore' });
    child = started;
    const exited = new Promise<void>((resolve) => started.once('exit', () => resolve()));
    started.once('error', () => undefined); // a failed spawn also exits; reported below
    try {
      await pollUntil(
        async () => {
          if (started.exitCode !== null || started.signalCode !== null) {
            throw new Error(`nats-server exited (${started.exitCode ?? started.signalCode}); last log lines:\n${await lastLogLines()}`);
          }
          return (await answersJetStream(url)) ? true : undefined;
        },
        { timeoutMs: 15_000, intervalMs: 100, what: `nats-server on port ${port} to answer JetStream requests` },
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
    url,
    logFile,
    start,
    stop,
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export type NatsServer = Awaited<ReturnType<typeof startNatsServer>>;
