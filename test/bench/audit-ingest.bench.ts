// Benchmark of sustained audit ingest with the hash chain on (issue 6): a real audit service stores
// events published the way the gateway publishes them, and the run reports what was stored, how
// fast, how late, whether anything was lost or stored twice, whether every chain verifies, and
// what each process spent per event. Not a test: it prints figures and judges them against the
// target, but fails — exits 1 — only when an event was lost or stored twice, a chain does not
// verify, the stream was not drained in time, or the run broke.
//
//   pnpm build && pnpm bench:audit
//   node test/dist/bench/audit-ingest.bench.js --events 50000 --rate 0      # publishers flat out
//   node test/dist/bench/audit-ingest.bench.js --rate 8000                  # lag at a rate it sustains
//   PORTCULLIS_PROFILE_DIR=/tmp/prof pnpm bench:audit                      # + a CPU profile of the service
//
// Options (argv, or the environment variable named; argv wins):
//   --events <n>      measured events, 1,000–2,000,000                     AUDIT_BENCH_EVENTS      (default 200000)
//   --warmup <n>      events stored before the measured ones, 0–200,000   AUDIT_BENCH_WARMUP      (default 20000)
//   --rate <n>        events/s offered, 0 = as fast as the publishers go   AUDIT_BENCH_RATE        (default 25000)
//   --tenants <n>     tenants the events are spread over, round robin, 1–1000  AUDIT_BENCH_TENANTS (default 8)
//   --publishers <n>  background publishers (gateway replicas), 1–16     AUDIT_BENCH_PUBLISHERS  (default 2)
//   --drain <s>       how long to wait for the last events once all are published, 5–600
//                                                                          AUDIT_BENCH_DRAIN_S     (default 120)
//
// What runs: the compiled audit service (services/audit/dist/src/main.js) as a child process with
// its own database (created and migrated by the service itself), a NATS subject prefix and stream
// of this run only, a fresh service identity, logs at warn. This process publishes
// AuditEventBatch messages on `<prefix>.audit.<tenant>._batch` with a JetStream message id each,
// shaped like the kit's background publisher under the gateway's defaults (AUDIT_BATCH_LINGER_MS
// 10, at most 256 events a flush): every 10 ms each publisher sends what it accepted meanwhile, one
// message per tenant, and awaits the acks before its next flush. The messages are encoded before
// the measured phase, so that this process's CPU goes to sending only; their events carry
// `seq`/`message`/`publisher` attributes for the checks. The warm-up events go first, at the same
// rate, and are stored before the measured ones start (the service's code is optimised by then).
//
// What is measured (the measured events only, except where said):
//   stored events/s  measured events ÷ (first published → last visible in Postgres); and per
//                    second of received_at, the steady rate (min / median / max over full seconds)
//   visible lag      the first event of every 10th message is looked for in Postgres every 10 ms
//                    from its publish: published → committed and visible (± the poll), p50/p99/max
//   stored lag       every event: its message's publish → received_at (the storing transaction's
//                    start, so without that transaction's own duration)
//   transactions     events per storing transaction (a tenant's rows sharing one received_at)
//   loss             every published event id (warm-up included) is stored exactly once under its
//                    tenant, and nothing else is stored
//   chain            VerifyChain over gRPC for every tenant: intact, and covering all its events;
//                    per (tenant, publisher) the chain keeps the publishing order (inversions)
//   CPU              seconds of CPU per 1,000 events of the audit process, its Postgres backends,
//                    the NATS server (shared with whatever else runs) and this process, from
//                    /proc; the machine's busy share and what other processes used meanwhile; and
//                    from these, the rate CPU would allow on an idle machine of this many cores
//                    (the audit process handles messages on one thread: at most one core's worth)
//
// Every phase is bounded; a watchdog stops the whole run. The service, its database and the
// stream are removed at the end, on failure and on SIGINT/SIGTERM.
import { createPrivateKey, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { create, toBinary } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import {
  auditStreamOf,
  completeAuditEvent,
  connectNats,
  createGrpcClient,
  createLogger,
  createServiceIdentity,
  type NatsConnection,
} from '@portcullis/kit';
import { AuditEventBatchSchema, AuditService, Outcome } from '@portcullis/proto/audit';
import { PrincipalKind, Role } from '@portcullis/proto/common';
import pg from 'pg';
import type * as platformTypes from '../../deploy/local/platform.mjs';
import {
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

const DEFAULTS = { events: 200_000, warmup: 20_000, rate: 25_000, tenants: 8, publishers: 2, drainS: 120 };
const LIMITS = {
  events: [1_000, 2_000_000],
  warmup: [0, 200_000],
  rate: [0, 1_000_000],
  tenants: [1, 1_000],
  publishers: [1, 16],
  drainS: [5, 600],
} as const;
/** The issue's target, stated for 2 cores. */
const TARGET_EVENTS_PER_S = 20_000;
/** The first event of every SAMPLE_EVERY-th message is polled for until it is visible. */
const SAMPLE_EVERY = 10;
const POLL_MS = 10;
/** The gateway's defaults for its background publisher: AUDIT_BATCH_LINGER_MS and maxBatch. */
const LINGER_MS = 10;
const MAX_BATCH = 256;
/** Service start (its migrations included) and the checks after the run. */
const STARTUP_BUDGET_MS = 90_000;
const VERIFY_BUDGET_MS = 180_000;
/** The audit service's durable consumer (AUDIT_CONSUMER_NAME's default). */
const DURABLE = 'audit-store';

interface Settings {
  events: number;
  warmup: number;
  rate: number;
  tenants: number;
  publishers: number;
  drainS: number;
}

const USAGE = `usage: node test/dist/bench/audit-ingest.bench.js [--events <n>] [--warmup <n>] [--rate <events/s, 0 = flat out>] [--tenants <n>] [--publishers <n>] [--drain <s>]
  env: AUDIT_BENCH_EVENTS, AUDIT_BENCH_WARMUP, AUDIT_BENCH_RATE, AUDIT_BENCH_TENANTS, AUDIT_BENCH_PUBLISHERS, AUDIT_BENCH_DRAIN_S`;

const boundedNumber = (text: string, what: string, range: readonly [number, number]) =>
  boundedInteger(text, what, range, { underscores: true });

function readSettings(argv: string[], env: NodeJS.ProcessEnv): Settings {
  const names = {
    events: 'EVENTS',
    warmup: 'WARMUP',
    rate: 'RATE',
    tenants: 'TENANTS',
    publishers: 'PUBLISHERS',
    drain: 'DRAIN_S',
  } as const;
  let values: Partial<Record<keyof typeof names, string>>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: Object.fromEntries(Object.keys(names).map((name) => [name, { type: 'string' as const }])),
      strict: true,
      allowPositionals: false,
    }) as { values: Partial<Record<keyof typeof names, string>> });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const read = (name: keyof typeof names, fallback: number, limits: readonly [number, number]) => {
    const text = values[name] ?? env[`AUDIT_BENCH_${names[name]}`];
    return text === undefined ? fallback : boundedNumber(text, name, limits);
  };
  return {
    events: read('events', DEFAULTS.events, LIMITS.events),
    warmup: read('warmup', DEFAULTS.warmup, LIMITS.warmup),
    rate: read('rate', DEFAULTS.rate, LIMITS.rate),
    tenants: read('tenants', DEFAULTS.tenants, LIMITS.tenants),
    publishers: read('publishers', DEFAULTS.publishers, LIMITS.publishers),
    drainS: read('drain', DEFAULTS.drainS, LIMITS.drainS),
  };
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc (Linux): seconds of user + system time of a process

const CLOCK_TICKS_PER_S = 100;

function cpuSecondsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
  } catch {
    return undefined;
  }
}

function pidsNamed(name: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === name) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Busy and total jiffies of all cores together (/proc/stat). */
function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  const total = ticks.reduce((sum, n) => sum + n, 0);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  return { busy: total - idle, total };
}

// ---------------------------------------------------------------------------------------------
// The run

type PlatformModule = typeof platformTypes;

const root = repositoryRoot();
const int = (value: number) => Math.round(value).toLocaleString('en-US');
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function withDatabase(url: string, database: string, user?: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  if (user !== undefined) u.username = user;
  return u.toString();
}

/** The audit service of this run, started and ready; returns what the run needs to reach it. */
async function startAuditService(cleanups: Cleanups, logs: { keep: boolean }) {
  const platform = await loadCompiled<PlatformModule>('deploy/local/platform.mjs', 'the deploy scripts are part of the repository');
  if (!existsSync(join(root, 'services/audit/dist/src/main.js'))) {
    throw new Error('services/audit/dist/src/main.js is missing: build first (pnpm build)');
  }
  const { infra } = await import('../src/infra.js');
  const resources = await import('../src/run-resources.js');
  const { freePort } = await import('../src/ports.js');

  const runId = `b${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const dbPrefix = `pc_${runId}`;
  const logDir = join(tmpdir(), `portcullis-bench-${runId}`);
  cleanups.push(async () => {
    if (logs.keep) console.log(`  service log kept in ${logDir}`);
    else await rm(logDir, { recursive: true, force: true });
  });
  cleanups.push(() => resources.deleteAuditStream(runId));
  cleanups.push(() => resources.dropDatabasesWithPrefix(dbPrefix));

  const ports = await resources.freePlatformPorts();
  const serviceKeys = platform.generateServiceKeys();
  // Only the audit service's part is used; the rest of the platform's settings are placeholders.
  const env = platform.platformEnv({
    serviceKeys,
    ports,
    pgAdminUrl: infra.postgresAdminUrl,
    dbPrefix,
    redisUrl: infra.redisUrl,
    redisKeyPrefix: `${runId}:`,
    natsUrl: infra.natsUrl,
    natsSubjectPrefix: runId,
    signingKeySecret: randomBytes(32).toString('base64'),
    activationCodeSecret: randomBytes(32).toString('base64'),
    smsOutboxFile: join(tmpdir(), `portcullis-sms-${runId}.jsonl`),
    allowedToolTargets: [`127.0.0.1:${await freePort()}`],
    logLevel: 'warn',
  }).audit;
  const started = performance.now();
  const service = platform.startService({ root, name: 'audit', env, logDir });
  cleanups.push(() => service.stop());
  const adminUrl = `http://127.0.0.1:${ports.audit.admin}/readyz`;
  for (;;) {
    if (service.child.exitCode !== null) throw new Error(`the audit service exited with ${service.child.exitCode}; see ${service.logFile}`);
    if (performance.now() - started > STARTUP_BUDGET_MS)
      throw new Error(`the audit service was not ready within ${STARTUP_BUDGET_MS / 1000} s`);
    const ready = await fetch(adminUrl, { signal: AbortSignal.timeout(1_000) }).then(
      (response) => response.ok,
      () => false,
    );
    if (ready) break;
    await sleep(150);
  }
  console.log(`  audit service ready in ${((performance.now() - started) / 1000).toFixed(1)} s (run ${runId}, log in ${logDir})`);
  const operator = createServiceIdentity({
    name: platform.operatorName,
    privateKey: createPrivateKey(serviceKeys.privateKeys[platform.operatorName] ?? ''),
    trust: new Map(),
  });
  const pid = service.child.pid;
  if (pid === undefined) throw new Error('the audit service has no process id');
  return {
    runId,
    pid,
    natsUrl: infra.natsUrl,
    ownerUrl: withDatabase(infra.postgresAdminUrl, `${dbPrefix}_audit`),
    database: `${dbPrefix}_audit`,
    grpcAddress: `127.0.0.1:${ports.audit.grpc}`,
    credential: operator.credentialFor('audit'),
  };
}

/** A realistic event (the gateway's authorization decision); its attributes let the run check order and lag. */
function eventOf(tenant: { id: string; principal: string }, seq: number, message: number, publisher: number, occurredAt: Date) {
  return completeAuditEvent({
    tenantId: tenant.id,
    kind: 'authz.decision',
    principal: { kind: PrincipalKind.USER, id: tenant.principal, tenantId: tenant.id, role: Role.ADMIN },
    object: 'tools',
    action: 'invoke',
    outcome: Outcome.ALLOW,
    reason: 'role:admin',
    traceId: randomBytes(16).toString('hex'),
    requestId: `req-${seq}`,
    occurredAt: timestampFromDate(occurredAt),
    attributes: { route: '/api/tools/invoke', seq: String(seq), message: String(message), publisher: String(publisher) },
  });
}

/** One AuditEventBatch message as a background publisher sends it: one tenant's events of one flush. */
interface PlannedMessage {
  /** Position among all the run's messages (warm-up first); its events' `message` attribute. */
  index: number;
  tenantId: string;
  subject: string;
  msgId: string;
  bytes: Uint8Array;
  firstEventId: string;
  count: number;
}

interface Plan {
  /** Per publisher, its flushes in order; per flush, one message per tenant. */
  flushes: PlannedMessage[][][];
  events: number;
  messages: number;
  perFlush: number;
}

/**
 * `events` events as messages, encoded now so that publishing spends this process's CPU on
 * sending only. Shaped like the kit's background publisher at this load: every LINGER_MS each
 * publisher flushes what it accepted meanwhile (at most MAX_BATCH), one message per tenant;
 * events go to the tenants round robin. `from` numbers the first event and message (`seq` and
 * `message` attributes), so that a warm-up and the measured run never share numbers.
 */
function planMessages(
  settings: Settings,
  events: number,
  from: { seq: number; index: number },
  tenants: { id: string; principal: string }[],
  subjectPrefix: string,
  sent: Map<string, string>,
): Plan {
  const perFlush =
    settings.rate === 0
      ? MAX_BATCH
      : Math.max(1, Math.min(MAX_BATCH, Math.round((settings.rate / settings.publishers) * (LINGER_MS / 1000))));
  const flushes: PlannedMessage[][][] = Array.from({ length: settings.publishers }, () => []);
  const occurredAt = new Date();
  const end = from.seq + events;
  let seq = from.seq;
  let index = from.index;
  while (seq < end) {
    for (let publisher = 0; publisher < settings.publishers && seq < end; publisher += 1) {
      const byTenant = new Map<string, { index: number; events: ReturnType<typeof completeAuditEvent>[] }>();
      for (const stop = Math.min(end, seq + perFlush); seq < stop; seq += 1) {
        const tenant = tenants[seq % tenants.length];
        if (!tenant) throw new Error('no tenant');
        let group = byTenant.get(tenant.id);
        if (!group) {
          group = { index: index + byTenant.size, events: [] };
          byTenant.set(tenant.id, group);
        }
        const event = eventOf(tenant, seq, group.index, publisher, occurredAt);
        group.events.push(event);
        sent.set(event.eventId, tenant.id);
      }
      const messages: PlannedMessage[] = [];
      for (const [tenantId, group] of byTenant) {
        messages.push({
          index: group.index,
          tenantId,
          subject: `${subjectPrefix}.audit.${tenantId}._batch`,
          msgId: randomUUID(),
          bytes: toBinary(AuditEventBatchSchema, create(AuditEventBatchSchema, { events: group.events })),
          firstEventId: group.events[0]?.eventId ?? '',
          count: group.events.length,
        });
      }
      index += byTenant.size;
      flushes[publisher]?.push(messages);
    }
  }
  return { flushes, events, messages: index - from.index, perFlush };
}

interface Sample {
  tenantId: string;
  eventId: string;
  publishedAt: number;
}

interface RunFigures {
  firstPublishedAt: number;
  lastPublishedAt: number;
  /** When the poll saw every event stored; undefined when the drain budget ended first. */
  allVisibleAt: number | undefined;
  visibleLagMs: Summary;
  /** How late the publishers' flushes left against the schedule of the offered rate, at most. */
  maxBehindMs: number;
}

/**
 * Sends a plan's flushes — each publisher its own, one flush every LINGER_MS (flat out: as soon as
 * the previous one was acknowledged), awaiting a flush's acks before the next as the background
 * publisher does — and polls Postgres until `storedAtEnd` events are stored in all (or the drain
 * budget ends). The first event of every SAMPLE_EVERY-th message is polled for the visible lag.
 */
async function publishAndWatch(
  settings: Settings,
  nc: NatsConnection,
  db: pg.Client,
  plan: Plan,
  storedAtEnd: number,
  sentAtMs: Float64Array,
  label: string,
): Promise<RunFigures> {
  const js = jetstream(nc);
  const outstanding: Sample[] = [];
  const lags: number[] = [];
  let published = 0;
  let maxBehindMs = 0;
  let stored = 0;
  // An object: the poller reads it while the publishers run.
  const phase = { publishing: true };
  let allVisibleAt: number | undefined;

  const poller = (async () => {
    let lastTotalAt = 0;
    let drainDeadline = Number.POSITIVE_INFINITY;
    for (;;) {
      const now = performance.now();
      if (outstanding.length > 0) {
        const batch = outstanding.slice(0, 500);
        const { rows } = await db.query<{ event_id: string }>(
          'SELECT event_id::text FROM audit_events WHERE (tenant_id, event_id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))',
          [batch.map((s) => s.tenantId), batch.map((s) => s.eventId)],
        );
        const seenAt = performance.now();
        const seen = new Set(rows.map((row) => row.event_id));
        for (let i = outstanding.length - 1; i >= 0; i -= 1) {
          const sample = outstanding[i];
          if (sample && seen.has(sample.eventId)) {
            lags.push(seenAt - sample.publishedAt);
            outstanding.splice(i, 1);
          }
        }
      }
      if (now - lastTotalAt >= 100 || !phase.publishing) {
        lastTotalAt = now;
        const { rows } = await db.query<{ n: string | null }>('SELECT sum(last_seq)::text AS n FROM audit_chain_heads');
        stored = Number(rows[0]?.n ?? 0);
        if (!phase.publishing && stored >= storedAtEnd && outstanding.length === 0) {
          allVisibleAt = performance.now();
          return;
        }
      }
      if (!phase.publishing && drainDeadline === Number.POSITIVE_INFINITY) drainDeadline = performance.now() + settings.drainS * 1000;
      if (performance.now() > drainDeadline) return;
      await sleep(POLL_MS);
    }
  })();

  const startedAt = performance.now();
  let lastReport = { at: startedAt, stored };
  const progress = setInterval(() => {
    const now = performance.now();
    const rate = ((stored - lastReport.stored) * 1000) / (now - lastReport.at);
    lastReport = { at: now, stored };
    console.log(
      `  ${label} t=${((now - startedAt) / 1000).toFixed(0).padStart(3)} s  published ${int(published).padStart(9)}  stored in all ${int(stored).padStart(9)}  ` +
        `(${int(rate).padStart(6)}/s)  flushes late by ≤ ${int(maxBehindMs)} ms  lag samples pending ${outstanding.length}`,
    );
  }, 1_000);

  const firstPublishedAt = performance.now();
  let lastPublishedAt = firstPublishedAt;
  try {
    await Promise.all(
      plan.flushes.map(async (flushes, publisher) => {
        // Publishers start staggered over one linger period, as independent replicas would.
        const offset = (publisher * LINGER_MS) / plan.flushes.length;
        for (const [flush, messages] of flushes.entries()) {
          if (settings.rate > 0) {
            const wait = firstPublishedAt + offset + flush * LINGER_MS - performance.now();
            if (wait > 0) await sleep(wait);
            else maxBehindMs = Math.max(maxBehindMs, -wait);
          }
          const sentAt = performance.now();
          const wallMs = performance.timeOrigin + sentAt;
          await Promise.all(
            messages.map((message) => {
              sentAtMs[message.index] = wallMs;
              if (message.index % SAMPLE_EVERY === 0) {
                outstanding.push({ tenantId: message.tenantId, eventId: message.firstEventId, publishedAt: sentAt });
              }
              published += message.count;
              return js.publish(message.subject, message.bytes, { msgID: message.msgId });
            }),
          );
          lastPublishedAt = performance.now();
        }
      }),
    );
    phase.publishing = false;
    await poller;
  } finally {
    phase.publishing = false;
    clearInterval(progress);
  }
  return { firstPublishedAt, lastPublishedAt, allVisibleAt, visibleLagMs: summarize(lags), maxBehindMs };
}

interface Checks {
  rows: number;
  distinct: number;
  missing: number;
  unexpected: number;
  chainsIntact: number;
  chainsBroken: string[];
  inversions: number;
  /** The measured events only, from here on. */
  storedLagMs: Summary;
  perSecond: Summary;
  perSecondMin: number;
  /** Events per storing transaction (a tenant's rows sharing a received_at: now() is the transaction's start). */
  perTransaction: Summary;
}

/** What Postgres holds after the run, and what VerifyChain says of every tenant's chain. */
async function check(
  db: pg.Client,
  sent: Map<string, string>,
  sentAtMs: Float64Array,
  firstMeasuredMessage: number,
  tenants: { id: string }[],
  verify: (tenantId: string) => Promise<{ intact: boolean; recordsChecked: bigint; firstBroken?: { reason: string } | undefined }>,
): Promise<Checks> {
  const { rows } = await db.query<{ tenant_id: string; event_id: string; message: string; received_ms: number }>(
    `SELECT tenant_id::text, event_id::text, attributes->>'message' AS message, extract(epoch FROM received_at)::float8 * 1000 AS received_ms
     FROM audit_events`,
  );
  const seen = new Set<string>();
  const lags: number[] = [];
  let unexpected = 0;
  for (const row of rows) {
    if (sent.get(row.event_id) !== row.tenant_id) unexpected += 1;
    seen.add(row.event_id);
    const message = Number(row.message);
    const sentAt = sentAtMs[message];
    if (message >= firstMeasuredMessage && sentAt !== undefined && sentAt > 0) lags.push(row.received_ms - sentAt);
  }
  let missing = 0;
  for (const eventId of sent.keys()) if (!seen.has(eventId)) missing += 1;

  const perTenant = new Map(
    (
      await db.query<{ tenant_id: string; n: number }>('SELECT tenant_id::text, count(*)::int AS n FROM audit_events GROUP BY tenant_id')
    ).rows.map((row) => [row.tenant_id, row.n]),
  );
  let chainsIntact = 0;
  const chainsBroken: string[] = [];
  for (const tenant of tenants) {
    const verdict = await verify(tenant.id);
    const expected = perTenant.get(tenant.id) ?? 0;
    if (verdict.intact && Number(verdict.recordsChecked) === expected) chainsIntact += 1;
    else
      chainsBroken.push(
        `${tenant.id}: intact ${verdict.intact}, ${verdict.recordsChecked} checked of ${expected}${verdict.firstBroken ? `, ${verdict.firstBroken.reason}` : ''}`,
      );
  }

  const inversions = await db.query<{ n: number }>(`
    SELECT count(*)::int AS n FROM (
      SELECT (attributes->>'seq')::bigint AS seq,
             lag((attributes->>'seq')::bigint) OVER (PARTITION BY tenant_id, attributes->>'publisher' ORDER BY chain_seq) AS before
      FROM audit_events
    ) ordered WHERE seq < before`);
  const measured = `(attributes->>'message')::int >= ${String(firstMeasuredMessage)}`;
  // Events stored per full second of received_at (the first and last seconds are partial).
  const seconds = await db.query<{ n: number }>(`
    SELECT count(*)::int AS n FROM audit_events WHERE ${measured}
    GROUP BY date_trunc('second', received_at) ORDER BY date_trunc('second', received_at)`);
  const full = seconds.rows.slice(1, -1).map((row) => row.n);
  const transactions = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM audit_events WHERE ${measured} GROUP BY tenant_id, received_at`,
  );
  return {
    rows: rows.length,
    distinct: seen.size,
    missing,
    unexpected,
    chainsIntact,
    chainsBroken,
    inversions: inversions.rows[0]?.n ?? -1,
    storedLagMs: summarize(lags),
    perSecond: summarize(full),
    perSecondMin: full.length > 0 ? Math.min(...full) : Number.NaN,
    perTransaction: summarize(transactions.rows.map((row) => row.n)),
  };
}

async function main(settings: Settings): Promise<number> {
  const logs = { keep: true };
  const events = settings.warmup + settings.events;
  // Encoding (about 20 µs an event), publishing at the offered rate (flat out: at 5,000/s or better)
  // twice over, both drains, the start and the checks.
  const publishMs = (events / (settings.rate === 0 ? 5_000 : settings.rate)) * 1000;
  const budgetMs = STARTUP_BUDGET_MS + events / 20 + publishMs * 2 + 2 * settings.drainS * 1000 + VERIFY_BUDGET_MS;
  const run = guardRun({ what: 'the audit service', budgetMs });
  const { cleanups } = run;

  try {
    console.log('\nStarting the audit service…');
    const service = await startAuditService(cleanups, logs);
    const logger = createLogger({ name: 'audit-bench', level: 'warn' });
    const nc = await connectNats({ servers: service.natsUrl, name: 'audit-bench', logger });
    cleanups.push(() => nc.close());
    const db = new pg.Client({ connectionString: service.ownerUrl });
    await db.connect();
    cleanups.push(() => db.end());
    const client = createGrpcClient(AuditService, { address: service.grpcAddress, deadlineMs: 60_000, credential: service.credential });
    cleanups.push(async () => {
      client.close();
    });

    const tenants = Array.from({ length: settings.tenants }, () => ({ id: randomUUID(), principal: randomUUID() }));
    const sent = new Map<string, string>();
    const encodingStarted = performance.now();
    const warmup = planMessages(settings, settings.warmup, { seq: 0, index: 0 }, tenants, service.runId, sent);
    const plan = planMessages(settings, settings.events, { seq: settings.warmup, index: warmup.messages }, tenants, service.runId, sent);
    const sentAtMs = new Float64Array(warmup.messages + plan.messages);
    const offered = settings.rate === 0 ? 'flat out' : `${int(settings.rate)} events/s offered`;
    console.log(
      `\n${int(settings.events)} measured events (after ${int(settings.warmup)} warm-up) in ${int(plan.messages)} AuditEventBatch messages ` +
        `(${fmt(settings.events / plan.messages)} events each on average: ${settings.publishers} publisher(s) flushing ≤ ${plan.perFlush} events ` +
        `every ${LINGER_MS} ms over ${settings.tenants} tenants), encoded in ${((performance.now() - encodingStarted) / 1000).toFixed(1)} s`,
    );

    if (warmup.events > 0) {
      console.log(`Warming up (${offered})…`);
      const warm = await publishAndWatch(settings, nc, db, warmup, warmup.events, sentAtMs, 'warm-up ');
      if (warm.allVisibleAt === undefined) throw new Error(`the warm-up events were not all stored within ${settings.drainS} s`);
    }

    const ownPid = process.pid;
    const natsPids = pidsNamed('nats-server');
    // The service's own connections (not this run's polling one) were opened for this run only.
    const backendPids = async () =>
      (
        await db.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [
          service.database,
        ])
      ).rows.map((row) => row.pid);
    const cpuNow = async () => ({
      audit: cpuSecondsOf(service.pid) ?? 0,
      nats: natsPids.reduce((sum, pid) => sum + (cpuSecondsOf(pid) ?? 0), 0),
      bench: cpuSecondsOf(ownPid) ?? 0,
      backends: new Map((await backendPids()).map((pid) => [pid, cpuSecondsOf(pid) ?? 0])),
      machine: machineTicks(),
      at: performance.now(),
    });
    const cpuBefore = await cpuNow();
    console.log(`Publishing the measured events (${offered})…`);
    const figures = await publishAndWatch(settings, nc, db, plan, warmup.events + plan.events, sentAtMs, 'measured');
    const cpuAfter = await cpuNow();
    const consumer = await (await jetstreamManager(nc)).consumers.info(auditStreamOf(service.runId).name, DURABLE);

    const drained = figures.allVisibleAt !== undefined;
    if (!drained) console.log(`\n  not every event was visible within ${settings.drainS} s after the last was published`);
    console.log('\nChecking what was stored (every row, every chain)…');
    const checks = await check(db, sent, sentAtMs, warmup.messages, tenants, async (tenantId) => {
      const verdict = await client.verifyChain({ tenantId });
      return { intact: verdict.intact, recordsChecked: verdict.recordsChecked, firstBroken: verdict.firstBroken };
    });

    // Seconds of CPU of the run's own processes while the measured events were stored, and of
    // everything else on the machine meanwhile.
    let backendCpu = 0;
    for (const [pid, cpuSeconds] of cpuAfter.backends) backendCpu += cpuSeconds - (cpuBefore.backends.get(pid) ?? 0);
    const own = {
      audit: cpuAfter.audit - cpuBefore.audit,
      postgres: backendCpu,
      nats: cpuAfter.nats - cpuBefore.nats,
      bench: cpuAfter.bench - cpuBefore.bench,
    };
    const ownSeconds = own.audit + own.postgres + own.nats + own.bench;
    const windowSeconds = (cpuAfter.at - cpuBefore.at) / 1000;
    const busySeconds = (cpuAfter.machine.busy - cpuBefore.machine.busy) / CLOCK_TICKS_PER_S;
    const machineBusy = (cpuAfter.machine.busy - cpuBefore.machine.busy) / Math.max(1, cpuAfter.machine.total - cpuBefore.machine.total);
    const othersCores = Math.max(0, busySeconds - ownSeconds) / windowSeconds;
    const cores = cpus().length;
    const perEvent = (cpuSeconds: number) => cpuSeconds / plan.events;
    const per1k = (cpuSeconds: number) => `${fmt(perEvent(cpuSeconds) * 1e6)} ms`;
    // What CPU would allow on an idle machine of these cores: all four processes share the cores,
    // and the audit process's main thread can use one of them at most.
    const capacity = Math.min(cores / perEvent(ownSeconds), 1 / perEvent(own.audit));
    const serviceCapacity = Math.min(cores / perEvent(own.audit + own.postgres + own.nats), 1 / perEvent(own.audit));

    const end = figures.allVisibleAt ?? performance.now();
    const seconds = (end - figures.firstPublishedAt) / 1000;
    const storedRate = plan.events / seconds;
    const publishSeconds = (figures.lastPublishedAt - figures.firstPublishedAt) / 1000;
    const onCores = cores === 2 ? '' : ` (the target is stated for 2 cores; this machine has ${cores})`;
    const zeroLoss = checks.missing === 0 && checks.rows === checks.distinct && checks.unexpected === 0 && checks.distinct === sent.size;

    console.log(
      `\nAudit ingest, hash chain on — ${int(plan.events)} measured events (+ ${int(warmup.events)} warm-up), ` +
        `${settings.tenants} tenants, ${settings.publishers} publisher(s)`,
    );
    console.log(
      `  published        ${int(plan.events / publishSeconds)} events/s over ${publishSeconds.toFixed(1)} s` +
        (settings.rate > 0 ? ` (flushes late by ≤ ${int(figures.maxBehindMs)} ms)` : ''),
    );
    console.log(
      `  stored           ${int(storedRate)} events/s (first published → all visible, ${seconds.toFixed(1)} s); ` +
        `per second of received_at: min ${int(checks.perSecondMin)} / median ${int(checks.perSecond.p50)} / max ${int(checks.perSecond.max)} ` +
        `over ${checks.perSecond.n} full seconds`,
    );
    const v = figures.visibleLagMs;
    console.log(
      `  visible lag      p50 ${fmt(v.p50)} ms  p99 ${fmt(v.p99)} ms  max ${fmt(v.max)} ms  ` +
        `(message published → its event visible in Postgres; ${int(v.n)} samples, polled every ${POLL_MS} ms)`,
    );
    const l = checks.storedLagMs;
    console.log(
      `  stored lag       p50 ${fmt(l.p50)} ms  p99 ${fmt(l.p99)} ms  max ${fmt(l.max)} ms  ` +
        `(message published → received_at, every event; received_at is its transaction's start)`,
    );
    const t = checks.perTransaction;
    console.log(
      `  transactions     ${int(t.n)}: events each p50 ${int(t.p50)}, mean ${int(t.mean)}, p99 ${int(t.p99)}, max ${int(t.max)} ` +
        `(${fmt(plan.events / plan.messages)} per message published)`,
    );
    console.log(
      `  consumer         ${int(consumer.num_redelivered)} messages redelivered, ${int(consumer.num_pending + consumer.num_ack_pending)} not acknowledged`,
    );
    console.log(
      `  loss             ${zeroLoss ? 'none' : 'EVENTS LOST OR DUPLICATED'}: ${int(checks.rows)} rows, ${int(checks.distinct)} distinct ids of ` +
        `${int(sent.size)} published (warm-up included), ${int(checks.missing)} missing, ${int(checks.rows - checks.distinct)} duplicated, ` +
        `${int(checks.unexpected)} unexpected`,
    );
    console.log(
      `  chain            ${checks.chainsIntact}/${settings.tenants} tenants verify intact over all their events (VerifyChain); ` +
        `${int(checks.inversions)} order inversions per (tenant, publisher)`,
    );
    for (const broken of checks.chainsBroken) console.log(`    !! ${broken}`);
    console.log(
      `  CPU per 1,000 events: audit ${per1k(own.audit)}, its Postgres backends ${per1k(own.postgres)}, ` +
        `nats-server ${per1k(own.nats)} (shared), this process ${per1k(own.bench)}; total ${per1k(ownSeconds)}`,
    );
    console.log(
      `  machine          busy ${(machineBusy * 100).toFixed(0)}% of ${cores} cores; other processes used ${fmt(othersCores)} cores meanwhile ` +
        `(load average ${loadavg()
          .map((x) => x.toFixed(2))
          .join(' ')})`,
    );
    console.log(
      `  CPU-bound rate   on ${cores} idle cores: ${int(capacity)} events/s with this publisher on them, ${int(serviceCapacity)} without it ` +
        `(from the CPU per event above; the audit process's main thread is one core at most; Postgres's background writers not counted)`,
    );
    const ratio = storedRate / TARGET_EVENTS_PER_S;
    console.log(`\nTarget${onCores}: ≥ ${int(TARGET_EVENTS_PER_S)} events/s stored with zero loss`);
    console.log(
      `  ${ratio >= 1 && zeroLoss && drained ? 'met' : 'NOT MET'}: ${int(storedRate)} events/s = ${ratio.toFixed(2)}x the target` +
        `${settings.rate > 0 ? ` (${(storedRate / settings.rate).toFixed(2)}x the offered ${int(settings.rate)}/s)` : ''}; zero loss ${zeroLoss ? 'yes' : 'NO'}` +
        `; CPU-bound rate ${(capacity / TARGET_EVENTS_PER_S).toFixed(2)}x the target (other processes used ${fmt(othersCores)} cores)`,
    );

    if (!zeroLoss || checks.chainsBroken.length > 0 || !drained) {
      console.error('\n!!! FAILED: events were lost or duplicated, a chain does not verify, or the stream was not drained in time');
      return 1;
    }
    logs.keep = false;
    return 0;
  } finally {
    await run.end();
  }
}

// ---------------------------------------------------------------------------------------------

const settings = settingsOrExit(() => readSettings(process.argv.slice(2), process.env), USAGE);
console.log(machineLine('Portcullis audit ingest benchmark'));
await runAndExit(() => main(settings));
