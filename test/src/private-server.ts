// A private server process (redis-server, nats-server…) on a free port of 127.0.0.1, for tests that
// take a dependency away (fault tests): stopping it never touches the shared one other runs use.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pollUntil } from './infra.js';
import { freePort } from './ports.js';

/** How long a stopped server may take to exit before it is killed. */
const stopBudgetMs = 5_000;

export interface PrivateServerSpec {
  /** Names the server in errors and its temporary directory. */
  name: string;
  binary: string;
  /** The command line, given the port and the server's own temporary directory and log file. */
  args(place: { port: number; dir: string; logFile: string }): string[];
  /** Whether the server on `port` answers (its readiness check). */
  answers(port: number): Promise<boolean>;
  readyTimeoutMs: number;
  readyIntervalMs: number;
}

/**
 * Starts the server and waits until it answers. `stop()` ends it (SIGTERM, then SIGKILL after a
 * bound) and `start()` brings it back on the same port and directory, so what it keeps there is
 * there again: a stop is an outage, not a wipe. `close()` stops it and removes the directory.
 */
export async function startPrivateServer(spec: PrivateServerSpec) {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), `portcullis-${spec.name}-`));
  const logFile = join(dir, `${spec.name}.log`);
  const args = spec.args({ port, dir, logFile });
  let child: ChildProcess | undefined;

  const lastLogLines = async () => (await readFile(logFile, 'utf8').catch(() => '(no log)')).trim().split('\n').slice(-10).join('\n');

  async function start(): Promise<void> {
    if (child) throw new Error(`${spec.name} on port ${port} is already running`);
    const started = spawn(spec.binary, args, { stdio: 'ignore' });
    child = started;
    const exited = new Promise<void>((resolve) => started.once('exit', () => resolve()));
    started.once('error', () => undefined); // a failed spawn also exits; reported below
    try {
      await pollUntil(
        async () => {
          if (started.exitCode !== null || started.signalCode !== null) {
            throw new Error(`${spec.name} exited (${started.exitCode ?? started.signalCode}); last log lines:\n${await lastLogLines()}`);
          }
          return (await spec.answers(port)) ? true : undefined;
        },
        { timeoutMs: spec.readyTimeoutMs, intervalMs: spec.readyIntervalMs, what: `${spec.name} on port ${port} to answer` },
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
    logFile,
    start,
    stop,
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
