// What every benchmark in this folder shares: finding the repository, loading compiled modules at
// run time, summarising samples, reading settings, and guarding and ending a run.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as platformTypes from '../../deploy/local/platform.mjs';

/** The repository root (the folder holding pnpm-workspace.yaml) above the running benchmark. */
export function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'pnpm-workspace.yaml'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('repository root (pnpm-workspace.yaml) not found above the benchmark');
    dir = parent;
  }
  return dir;
}

/**
 * A compiled module of the repository, loaded at run time: the compiled benchmark sits at a
 * different depth than its source, so only types are imported statically.
 */
export async function loadCompiled<T>(relativePath: string, hint = 'build first (pnpm build)'): Promise<T> {
  const file = join(repositoryRoot(), relativePath);
  if (!existsSync(file)) throw new Error(`${relativePath} is missing: ${hint}`);
  return (await import(pathToFileURL(file).href)) as T;
}

export interface Summary {
  n: number;
  mean: number;
  p50: number;
  p99: number;
  max: number;
}

function percentile(sorted: readonly number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = Array.from(Float64Array.from(samples).sort());
  let sum = 0;
  for (const x of sorted) sum += x;
  return {
    n: sorted.length,
    mean: sum / Math.max(1, sorted.length),
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? Number.NaN,
  };
}

/** A figure with the precision it deserves: 3 significant digits for small ones, none above 100. */
export function fmt(value: number): string {
  if (!Number.isFinite(value)) return '–';
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

/**
 * The environment of a platform a benchmark starts, the way the end-to-end harness makes it: this
 * run's databases, Redis key prefix and NATS subjects, new keys and secrets, the demo tool as the
 * one private target the tool gateway may call, services logging at warn. `extra` adds settings per
 * service (deploy/local/platform.mjs `platformEnv`).
 */
export function benchPlatformEnv(
  platform: Pick<typeof platformTypes, 'platformEnv' | 'generateServiceKeys'>,
  run: {
    ports: platformTypes.Ports;
    runId: string;
    dbPrefix: string;
    redisKeyPrefix: string;
    smsOutboxFile: string;
    toolUrl: string;
    infra: { postgresAdminUrl: string; redisUrl: string; natsUrl: string };
    extra?: Partial<Record<platformTypes.ServiceName, Record<string, string>>>;
  },
): platformTypes.PlatformEnv {
  return platform.platformEnv({
    serviceKeys: platform.generateServiceKeys(),
    ports: run.ports,
    pgAdminUrl: run.infra.postgresAdminUrl,
    dbPrefix: run.dbPrefix,
    redisUrl: run.infra.redisUrl,
    redisKeyPrefix: run.redisKeyPrefix,
    natsUrl: run.infra.natsUrl,
    natsSubjectPrefix: run.runId,
    signingKeySecret: randomBytes(32).toString('base64'),
    activationCodeSecret: randomBytes(32).toString('base64'),
    smsOutboxFile: run.smsOutboxFile,
    allowedToolTargets: [`127.0.0.1:${new URL(run.toolUrl).port || '80'}`],
    logLevel: 'warn',
    ...(run.extra ? { extra: run.extra } : {}),
  });
}

/** Steps that undo what a benchmark run made, run in reverse order at its end. */
export type Cleanups = (() => Promise<unknown>)[];

/**
 * The guard of one benchmark run: clean-up steps run once, in reverse, at the run's end, on
 * SIGINT/SIGTERM or when the run overstays `budgetMs` (then the process exits non-zero), so a
 * benchmark always stops by itself and leaves nothing behind. `end()` clears the watchdog and the
 * signal handlers and runs the clean-up.
 */
export function guardRun({ what, budgetMs }: { what: string; budgetMs: number }) {
  const cleanups: Cleanups = [];
  // One clean-up, however many ask for it: a signal or the watchdog may start it while the run's
  // own `finally` is still to come, and every exit waits for the same promise.
  let cleaning: Promise<void> | undefined;
  const cleanUp = () =>
    (cleaning ??= (async () => {
      console.log(`\nStopping ${what} and removing the run’s data…`);
      for (const step of cleanups.reverse()) {
        await step().catch((error: unknown) => {
          console.error('  cleanup step failed:', error);
        });
      }
    })());
  const abort = (why: string, exitCode: number) => {
    console.error(`\n${why}`);
    void cleanUp().finally(() => process.exit(exitCode));
  };
  const onSignal = (signal: NodeJS.Signals) => {
    abort(`interrupted (${signal})`, 130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const watchdog = setTimeout(() => {
    abort(`the benchmark did not finish within its ${Math.round(budgetMs / 1000)} s budget: stopped`, 1);
  }, budgetMs);
  return {
    cleanups,
    async end() {
      clearTimeout(watchdog);
      await cleanUp();
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
    },
  };
}

/** A benchmark's command line or environment is wrong: the usage is printed and it exits 2. */
export class UsageError extends Error {}

/** An integer within `[min, max]`, or a UsageError naming `what`; `underscores` admits `200_000`. */
export function boundedInteger(
  text: string,
  what: string,
  [min, max]: readonly [number, number],
  { underscores = false }: { underscores?: boolean } = {},
): number {
  const value = Number(underscores ? text.replaceAll('_', '') : text);
  if (!Number.isInteger(value) || value < min || value > max)
    throw new UsageError(`${what} must be an integer from ${min} to ${max}, got "${text}"`);
  return value;
}

/** The benchmark's settings, or, on a UsageError, the message and `usage` printed and exit 2. */
export function settingsOrExit<S>(read: () => S, usage: string): S {
  try {
    return read();
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`${error.message}\n${usage}`);
    process.exit(2);
  }
}

/** The first line every benchmark prints: what ran, when, on which Node, CPUs and load. */
export function machineLine(title: string): string {
  const cpu = cpus();
  const load = loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
  return `${title} — ${new Date().toISOString()}, node ${process.version}, ${cpu.length} × ${cpu[0]?.model ?? 'cpu'}, load average ${load}`;
}

/**
 * Runs the benchmark and exits with its code (1 when it threw). Everything it started is stopped
 * by then, so it exits at once rather than wait on a client's idle socket.
 */
export async function runAndExit(main: () => Promise<number>): Promise<never> {
  const code = await main().catch((error: unknown) => {
    console.error('\nThe benchmark failed:', error);
    return 1;
  });
  process.exit(code);
}
