// Benchmark of the API gateway's full ordered request flow next to a bare Express route on the same
// machine in the same run (not a test: it prints figures and judges them against the targets, but
// fails — exits 1 — only when a measured request was not answered 200, or a run broke).
//
//   pnpm build && pnpm bench:gateway
//   node test/dist/bench/gateway.bench.js --duration 2 --warmup 1      # a quick look
//   node test/dist/bench/gateway.bench.js --concurrency 32             # one level only
//
// Options (argv, or the environment variable named; argv wins):
//   --duration <s>        measured seconds per target and level, 1–30   GATEWAY_BENCH_DURATION_S  (default 5)
//   --warmup <s>          warm-up seconds before each measurement, 0–10  GATEWAY_BENCH_WARMUP_S    (default 2)
//   --concurrency <list>  connections per level, comma-separated        GATEWAY_BENCH_CONCURRENCY (default 1,32,128)
//   GATEWAY_BENCH_RATE_LIMITS  JSON handed to the gateway as RATE_LIMITS (unset: every limit out of reach,
//                              test/src/rate-limits.ts — every request is counted but none refused)
//
// It spawns the whole platform the way the end-to-end harness (test/src/platform.ts) does —
// compiled services, free ports, databases, Redis key prefix and NATS subjects of this run only,
// logs at warn — seeds the demo tenant, signs in Alpha Corp's owner and then, level by level,
// measures two targets with autocannon (HTTP/1.1 keep-alive, no pipelining, 127.0.0.1 only):
//
//   bare     GET /bare on an Express 5 app in this process's main thread, answering the very JSON
//            body the gateway answered (the same body; the headers are each server's own);
//   gateway  GET /api/context with the owner's bearer token and Host alpha.localhost: the ordered
//            gate (resolveContext, authenticate, authorize — a policy decision, audited) and a route
//            that calls nothing further downstream.
//
// Per level the bare route runs first, then the gateway, each a warm-up and then a measured run, so
// both see the same machine at nearly the same moment. autocannon runs in a worker thread (this
// same file), never on a server's event loop; latencies are taken per response at full precision.
// Every run is bounded by its duration and a deadline, the whole benchmark by a watchdog; the
// platform, the Express app and the run's databases, Redis keys and NATS stream are removed at
// the end, on failure and on SIGINT/SIGTERM.
//
// (The harness's startTestPlatform cannot be loaded from test/dist: the compiled harness imports
// @jest/globals and reaches the deploy scripts by a path relative to its source. The start-up
// below follows it, without the DNS server — .localhost domains need no ownership record — and
// without an OTLP receiver, so the services run with no trace exporter.)
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import autocannon from 'autocannon';
import express from 'express';
import type * as demoToolTypes from '../../deploy/local/demo-tool.mjs';
import type * as platformTypes from '../../deploy/local/platform.mjs';
import type * as seedTypes from '../../deploy/local/seed.mjs';
import { unreachableRateLimits } from '../src/rate-limits.js';
import {
  benchPlatformEnv,
  boundedInteger,
  fmt,
  guardRun,
  loadCompiled,
  machineLine,
  repositoryRoot,
  runAndExit,
  settingsOrExit,
  summarize,
  UsageError,
  type Cleanups,
  type Summary,
} from './bench-support.js';

// ---------------------------------------------------------------------------------------------
// Settings

const DEFAULTS = { durationS: 5, warmupS: 2, concurrency: [1, 32, 128] };
const LIMITS = { durationS: [1, 30], warmupS: [0, 10], concurrency: [1, 1024], levels: 6 } as const;
/** The issue's targets, stated for 2 cores at concurrency 32. */
const TARGETS = { concurrency: 32, minRatio: 0.5, maxGatewayP99Ms: 15 };
/** autocannon's per-request timeout; a request that takes longer counts as an error. */
const REQUEST_TIMEOUT_S = 10;
/** What a load run may take beyond its warm-up and measurement before it is stopped as hung. */
const RUN_GRACE_MS = 20_000;
/** Platform start, seeding and sign-in (startPlatform alone gives up after 60 s). */
const STARTUP_BUDGET_MS = 150_000;

interface Settings {
  durationS: number;
  warmupS: number;
  concurrency: number[];
  /** GATEWAY_BENCH_RATE_LIMITS as given (checked to be JSON), or limits out of reach, for the gateway's RATE_LIMITS. */
  rateLimits: string;
}

const USAGE = `usage: node test/dist/bench/gateway.bench.js [--duration <s>] [--warmup <s>] [--concurrency <n,n,…>]
  env: GATEWAY_BENCH_DURATION_S, GATEWAY_BENCH_WARMUP_S, GATEWAY_BENCH_CONCURRENCY, GATEWAY_BENCH_RATE_LIMITS (JSON → gateway RATE_LIMITS)`;

const boundedNumber = boundedInteger;

function readSettings(argv: string[], env: NodeJS.ProcessEnv): Settings {
  let values: { duration?: string | undefined; warmup?: string | undefined; concurrency?: string | undefined };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { duration: { type: 'string' }, warmup: { type: 'string' }, concurrency: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const duration = values.duration ?? env['GATEWAY_BENCH_DURATION_S'];
  const warmup = values.warmup ?? env['GATEWAY_BENCH_WARMUP_S'];
  const concurrency = values.concurrency ?? env['GATEWAY_BENCH_CONCURRENCY'];
  const levels = concurrency
    ? [...new Set(concurrency.split(',').map((part) => boundedNumber(part.trim(), 'concurrency', LIMITS.concurrency)))]
    : DEFAULTS.concurrency;
  if (levels.length === 0 || levels.length > LIMITS.levels) throw new UsageError(`give 1 to ${LIMITS.levels} concurrency levels`);
  const rateLimits = env['GATEWAY_BENCH_RATE_LIMITS'] ?? JSON.stringify(unreachableRateLimits);
  try {
    JSON.parse(rateLimits);
  } catch {
    throw new UsageError('GATEWAY_BENCH_RATE_LIMITS must be JSON (it is handed to the gateway as RATE_LIMITS)');
  }
  return {
    durationS: duration === undefined ? DEFAULTS.durationS : boundedNumber(duration, 'duration', LIMITS.durationS),
    warmupS: warmup === undefined ? DEFAULTS.warmupS : boundedNumber(warmup, 'warm-up', LIMITS.warmupS),
    concurrency: levels,
    rateLimits,
  };
}

// ---------------------------------------------------------------------------------------------
// The load generator: autocannon in a worker thread running this file

interface LoadOrder {
  kind: 'gateway-bench-load';
  url: string;
  headers: Record<string, string>;
  connections: number;
  warmupS: number;
  durationS: number;
}

interface LoadRun {
  /** Responses received, whatever their status. */
  responses: number;
  /** Responses per status code. */
  statuses: Record<string, number>;
  /** Connection errors and timeouts (autocannon counts timeouts among errors). */
  errors: number;
  timeouts: number;
  durationS: number;
  requestsPerSecond: number;
  /** Per-response latency in ms, from the request's send to its complete response. */
  latencyMs: Summary;
}

interface LoadReport {
  warmup: LoadRun | undefined;
  measured: LoadRun;
}

/** One autocannon run. In a worker thread autocannon returns its raw result: only these fields are used. */
function fire(order: LoadOrder, durationS: number): Promise<LoadRun> {
  return new Promise((resolve, reject) => {
    const latencies: number[] = [];
    const statuses: Record<string, number> = {};
    const instance = autocannon(
      {
        url: order.url,
        method: 'GET',
        headers: order.headers,
        connections: order.connections,
        pipelining: 1,
        duration: durationS,
        timeout: REQUEST_TIMEOUT_S,
      },
      (error: unknown, result: Pick<autocannon.Result, 'errors' | 'timeouts' | 'duration'>) => {
        if (error) {
          reject(error instanceof Error ? error : new Error('autocannon failed', { cause: error }));
          return;
        }
        resolve({
          responses: latencies.length,
          statuses,
          errors: result.errors,
          timeouts: result.timeouts,
          durationS: result.duration,
          requestsPerSecond: latencies.length / result.duration,
          latencyMs: summarize(latencies),
        });
      },
    );
    instance.on('response', (_client, statusCode, _bytes, responseTimeMs) => {
      latencies.push(responseTimeMs);
      const key = String(statusCode);
      statuses[key] = (statuses[key] ?? 0) + 1;
    });
  });
}

async function serveLoadOrder(order: LoadOrder): Promise<void> {
  const warmup = order.warmupS > 0 ? await fire(order, order.warmupS) : undefined;
  const measured = await fire(order, order.durationS);
  parentPort?.postMessage({ warmup, measured } satisfies LoadReport);
}

/** Runs one order in a new worker thread; stops the worker if it outlives its deadline. */
function runLoad(order: LoadOrder): Promise<LoadReport> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: order });
    const deadlineMs = (order.warmupS + order.durationS) * 1000 + RUN_GRACE_MS;
    const timer = setTimeout(() => {
      reject(new Error(`the load run against ${order.url} (c=${order.connections}) did not finish within ${deadlineMs / 1000} s`));
      void worker.terminate();
    }, deadlineMs);
    worker.once('message', (report: LoadReport) => {
      clearTimeout(timer);
      resolve(report);
      void worker.terminate();
    });
    worker.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    worker.once('exit', (code) => {
      clearTimeout(timer);
      // A no-op once the report arrived.
      reject(new Error(`the load worker exited (code ${code}) without a report`));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The servers

type PlatformModule = typeof platformTypes;
type SeedModule = typeof seedTypes;
type DemoToolModule = typeof demoToolTypes;

/** Steps that release what the run made, run last-first; each step's failure is logged, not thrown. */

const root = repositoryRoot();

/** The platform with the demo tenant seeded; returns the gateway URL and Alpha Corp's owner token and host. */
async function startBenchPlatform(settings: Settings, cleanups: Cleanups, logs: { keep: boolean }) {
  const loadDeploy = <T>(file: string) => loadCompiled<T>(`deploy/local/${file}`, 'the deploy scripts are part of the repository');
  const platformModule = await loadDeploy<PlatformModule>('platform.mjs');
  const seedModule = await loadDeploy<SeedModule>('seed.mjs');
  const demoToolModule = await loadDeploy<DemoToolModule>('demo-tool.mjs');
  for (const name of platformModule.serviceNames) {
    if (!existsSync(join(root, 'services', name, 'dist/src/main.js'))) {
      throw new Error(`services/${name}/dist/src/main.js is missing: build first (pnpm build)`);
    }
  }
  // Loaded here rather than at the top, so that the load worker (this same file) does not load the kit.
  const { infra } = await import('../src/infra.js');
  const resources = await import('../src/run-resources.js');

  const runId = `b${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const dbPrefix = `pc_${runId}`;
  const redisKeyPrefix = `${runId}:`;
  const smsOutboxFile = join(tmpdir(), `portcullis-sms-${runId}.jsonl`);
  const logDir = join(tmpdir(), `portcullis-bench-${runId}`);
  cleanups.push(async () => {
    await rm(smsOutboxFile, { force: true });
    if (logs.keep) console.log(`  service logs kept in ${logDir}`);
    else await rm(logDir, { recursive: true, force: true });
  });
  cleanups.push(() => resources.deleteAuditStream(runId));
  cleanups.push(() => resources.deleteRedisKeysWithPrefix(redisKeyPrefix));
  cleanups.push(() => resources.dropDatabasesWithPrefix(dbPrefix));

  const tool = await demoToolModule.startDemoTool({ port: 0 });
  cleanups.push(() => tool.close());
  const ports = await resources.freePlatformPorts();
  const env = benchPlatformEnv(platformModule, {
    ports,
    runId,
    dbPrefix,
    redisKeyPrefix,
    smsOutboxFile,
    toolUrl: tool.url,
    infra,
    extra: { 'api-gateway': { RATE_LIMITS: settings.rateLimits } },
  });
  console.log(`\nStarting the platform (run ${runId}, logs in ${logDir})…`);
  const started = performance.now();
  // Registered before the start, so that a signal during start-up still stops the processes;
  // startPlatform itself stops what it started when a service fails to become ready.
  const starting = platformModule.startPlatform({ root, env, ports, logDir });
  cleanups.push(async () => {
    const platform = await starting.catch(() => undefined);
    await platform?.stop();
  });
  await starting;
  console.log(`  platform ready in ${((performance.now() - started) / 1000).toFixed(1)} s; seeding the demo tenant…`);
  const gatewayUrl = `http://127.0.0.1:${ports['api-gateway'].http}`;
  const password = () => `${randomBytes(12).toString('base64url')}-Pc1`;
  const passwords = { owner: password(), admin: password(), user: password(), betaOwner: password() };
  const seeded = await seedModule.seedDemo({ gatewayUrl, toolUrl: tool.url, passwords, smsOutboxFile });
  const ownerToken = await seedModule.signIn(gatewayUrl, seedModule.demo.accounts.owner, passwords.owner, seeded.tenantId);
  return { gatewayUrl, host: seeded.host, ownerToken, httpJson: seedModule.httpJson };
}

/** A bare Express 5 app on 127.0.0.1: `GET /bare` answers `body` as JSON, nothing else runs. */
async function startBareServer(body: unknown): Promise<{ url: string; close: () => Promise<void> }> {
  const app = express();
  app.get('/bare', (_request, response) => {
    response.json(body);
  });
  const server = await new Promise<ReturnType<typeof app.listen>>((resolve, reject) => {
    const listening = app.listen(0, '127.0.0.1', (error?: Error) => {
      if (error) reject(error);
      else resolve(listening);
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Figures

const int = (value: number) => Math.round(value).toLocaleString('en-US');

/** Responses that were not 200, and connection errors: anything that was not the measured request. */
function unexpected(run: LoadRun): number {
  return run.responses - (run.statuses['200'] ?? 0) + run.errors;
}

function describeUnexpected(run: LoadRun): string {
  const statuses = Object.entries(run.statuses)
    .filter(([status]) => status !== '200')
    .map(([status, count]) => `${count} × ${status}`);
  if (run.errors > 0) statuses.push(`${run.errors} connection errors (${run.timeouts} timeouts)`);
  return statuses.join(', ');
}

function progressLine(target: string, connections: number, run: LoadRun): string {
  const s = run.latencyMs;
  const bad = unexpected(run);
  return (
    `  c=${String(connections).padEnd(4)} ${target.padEnd(8)} ${int(run.requestsPerSecond).padStart(7)} req/s  ` +
    `p50 ${fmt(s.p50).padStart(5)} ms  p99 ${fmt(s.p99).padStart(5)} ms  max ${fmt(s.max).padStart(6)} ms  ` +
    `n=${int(run.responses)} in ${run.durationS.toFixed(2)} s${bad > 0 ? `  !! ${describeUnexpected(run)}` : ''}`
  );
}

interface Row {
  connections: number;
  bare: LoadRun;
  gateway: LoadRun;
}

const ratioOf = (row: Row) => row.gateway.requestsPerSecond / row.bare.requestsPerSecond;

function printTable(rows: readonly Row[]): void {
  const header = [
    'conc'.padStart(5),
    'bare req/s'.padStart(11),
    'gateway req/s'.padStart(14),
    'ratio'.padStart(6),
    `≥${TARGETS.minRatio}`.padStart(5),
    'bare p50/p99 ms'.padStart(16),
    'gateway p50/p99 ms'.padStart(19),
    `p99≤${TARGETS.maxGatewayP99Ms}`.padStart(7),
    'not 200 (bare/gw)'.padStart(18),
  ];
  console.log(`  ${header.join('  ')}`);
  for (const row of rows) {
    const ratio = ratioOf(row);
    const latency = (run: LoadRun) => `${fmt(run.latencyMs.p50)} / ${fmt(run.latencyMs.p99)}`;
    const cells = [
      String(row.connections).padStart(5),
      int(row.bare.requestsPerSecond).padStart(11),
      int(row.gateway.requestsPerSecond).padStart(14),
      `${ratio.toFixed(2)}x`.padStart(6),
      (ratio >= TARGETS.minRatio ? 'yes' : 'NO').padStart(5),
      latency(row.bare).padStart(16),
      latency(row.gateway).padStart(19),
      (row.gateway.latencyMs.p99 <= TARGETS.maxGatewayP99Ms ? 'yes' : 'NO').padStart(7),
      `${unexpected(row.bare)} / ${unexpected(row.gateway)}`.padStart(18),
    ];
    console.log(`  ${cells.join('  ')}`);
  }
}

function printTargets(rows: readonly Row[]): void {
  const row = rows.find((r) => r.connections === TARGETS.concurrency);
  const cores = cpus().length;
  const onCores = cores === 2 ? '' : ` (the targets are stated for 2 cores; this machine has ${cores})`;
  if (!row) {
    console.log(`\nTargets at c=${TARGETS.concurrency}: not measured in this run${onCores}`);
    return;
  }
  const ratio = ratioOf(row);
  const p99 = row.gateway.latencyMs.p99;
  const verdict = (met: boolean) => (met ? 'met' : 'NOT MET');
  console.log(`\nTargets at c=${TARGETS.concurrency}${onCores}:`);
  console.log(`  throughput ratio gateway/bare ≥ ${TARGETS.minRatio}: ${verdict(ratio >= TARGETS.minRatio)} (${ratio.toFixed(2)})`);
  console.log(`  gateway p99 ≤ ${TARGETS.maxGatewayP99Ms} ms: ${verdict(p99 <= TARGETS.maxGatewayP99Ms)} (${fmt(p99)} ms)`);
}

// ---------------------------------------------------------------------------------------------
// The run

async function main(settings: Settings): Promise<number> {
  const logs = { keep: true };
  const runs = settings.concurrency.length * 2;
  const budgetMs = STARTUP_BUDGET_MS + runs * ((settings.warmupS + settings.durationS) * 1000 + RUN_GRACE_MS);
  const run = guardRun({ what: 'the platform', budgetMs });
  const { cleanups } = run;

  try {
    const platform = await startBenchPlatform(settings, cleanups, logs);
    const headers = { authorization: `Bearer ${platform.ownerToken}`, host: platform.host };
    const probe = await platform.httpJson(platform.gatewayUrl, 'GET', '/api/context', { token: platform.ownerToken, host: platform.host });
    if (probe.status !== 200) {
      console.error(
        `\nGET /api/context as Alpha Corp's owner (Host ${platform.host}) answered ${probe.status}, not 200: ` +
          `${JSON.stringify(probe.body)}\nNothing measured: the benchmark needs an authorized request.`,
      );
      return 1;
    }
    const bare = await startBareServer(probe.body);
    cleanups.push(() => bare.close());
    const bareProbe = await platform.httpJson(bare.url, 'GET', '/bare', { headers });
    if (bareProbe.status !== 200) throw new Error(`the bare route answered ${bareProbe.status}`);
    console.log(
      `  GET /api/context answers 200 (${JSON.stringify(probe.body).length} bytes of JSON); the bare route answers the same body`,
    );

    console.log(
      `\nLoad: autocannon in a worker thread, keep-alive, no pipelining; per level and target ` +
        `${settings.warmupS} s warm-up, then ${settings.durationS} s measured`,
    );
    const targets = { bare: `${bare.url}/bare`, gateway: `${platform.gatewayUrl}/api/context` };
    const rows: Row[] = [];
    const warnings: string[] = [];
    for (const connections of settings.concurrency) {
      const measure = async (target: keyof typeof targets) => {
        const { warmupS, durationS } = settings;
        const order: LoadOrder = { kind: 'gateway-bench-load', url: targets[target], headers, connections, warmupS, durationS };
        const report = await runLoad(order);
        if (report.warmup && unexpected(report.warmup) > 0) {
          warnings.push(`c=${connections} ${target} warm-up: ${describeUnexpected(report.warmup)}`);
        }
        console.log(progressLine(target, connections, report.measured));
        return report.measured;
      };
      const bareRun = await measure('bare');
      const gatewayRun = await measure('gateway');
      rows.push({ connections, bare: bareRun, gateway: gatewayRun });
    }

    console.log('\nGET /api/context through the gateway vs. a bare Express route (latency per response, ms)');
    printTable(rows);
    printTargets(rows);
    for (const warning of warnings) console.log(`  warning: not all warm-up requests were answered 200 — ${warning}`);

    const failed = rows.flatMap((row) =>
      (['bare', 'gateway'] as const)
        .filter((target) => unexpected(row[target]) > 0)
        .map((target) => `c=${row.connections} ${target}: ${describeUnexpected(row[target])}`),
    );
    if (failed.length > 0) {
      console.error('\n!!! FAILED: measured requests were not all answered 200, so the figures above are not of authorized requests:');
      for (const line of failed) console.error(`!!!   ${line}`);
      console.error(
        '!!! (429: the gateway rate-limited the benchmark — set GATEWAY_BENCH_RATE_LIMITS to limits it cannot reach; 401/403: the token or capability; 5xx: see the service logs)',
      );
      return 1;
    }
    logs.keep = false;
    return 0;
  } finally {
    await run.end();
  }
}

// ---------------------------------------------------------------------------------------------

if (!isMainThread && (workerData as Partial<LoadOrder> | null)?.kind === 'gateway-bench-load') {
  await serveLoadOrder(workerData as LoadOrder);
} else if (isMainThread) {
  const settings = settingsOrExit(() => readSettings(process.argv.slice(2), process.env), USAGE);
  console.log(machineLine('Portcullis gateway benchmark'));
  console.log(
    `  levels ${settings.concurrency.join(', ')}; ${settings.warmupS} s warm-up + ${settings.durationS} s per target and level; ` +
      `gateway RATE_LIMITS ${process.env['GATEWAY_BENCH_RATE_LIMITS'] === undefined ? 'out of reach (counted, never refused)' : 'from GATEWAY_BENCH_RATE_LIMITS'}`,
  );
  // Every server and worker is stopped when main ends.
  await runAndExit(() => main(settings));
}
