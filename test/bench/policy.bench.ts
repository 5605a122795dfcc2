// Benchmark of the policy service (not a test: it prints figures and asserts nothing about time).
//
//   pnpm build && pnpm bench:policy                          # 1,000 tenants / 100k rules, then 10,000 / 1M
//   node --expose-gc test/dist/bench/policy.bench.js small   # 1,000 tenants / 100k rules only
//
// (--expose-gc only makes the baseline's heap figure exact; the benchmark runs without it.)
//
// For each scale it fills a database of its own (the policy migrations, `createTestDatabase`) with
// 100 rules per tenant — 75 role assignments (tenant-wide and per assistant) and 25 permissions —
// through multi-row INSERTs as the table owner, then measures:
//
// 1. gRPC: the compiled policy service (services/policy/dist, started like the platform harness
//    starts it, production defaults, its own NATS subject prefix) driven by the generated client
//    at concurrency 1, 16 and 64 with single `Check`s over a warm working set of tenants (the same
//    800 tenants at both scales, so the two scales differ only in what is stored), a floor (Checks
//    of an unknown capability, denied before any rule: the transport alone), `BatchCheck` with
//    20 queries at concurrency 16, the first decision on tenants nothing has touched yet
//    (rules loaded from Postgres), the service's RSS warm and with every tenant loaded;
// 2. in-process: the compiled decision library over an in-memory rule source holding the same
//    rules, µs per decision;
// 3. baseline: ONE node-casbin enforcer holding every tenant's rules (classic RBAC with domains,
//    domain = tenant or tenant/assistant), the same requests, decisions per second.
//
// Afterwards it stops the service and drops the database. The service publishes and subscribes
// only on core NATS (`<prefix>.policy.changed`, no stream) and does not use Redis, so nothing
// else is left behind. Every loop is bounded by a count and by a time budget; only 127.0.0.1 is
// contacted.
import { createPrivateKey, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { create } from '@bufbuild/protobuf';
import { createGrpcClient, createServiceIdentity, type GrpcClient } from '@portcullis/kit';
import { PrincipalKind, PrincipalSchema, type Principal } from '@portcullis/proto/common';
import { PolicyService } from '@portcullis/proto/policy';
import type * as platformTypes from '../../deploy/local/platform.mjs';
import { createTestDatabase, infra, testRunId, withPg, type TestDatabase } from '../src/infra.js';
import { freePort } from '../src/ports.js';
import { fmt, loadCompiled, repositoryRoot, summarize, type Summary } from './bench-support.js';

// ---------------------------------------------------------------------------------------------
// Settings

const SCALES = [{ tenants: 1_000 }, { tenants: 10_000 }] as const;
/** Users and assistants per tenant; see `makeTenant` for the 100 rules they hold. */
const USERS_PER_TENANT = 40;
const ASSISTANTS_PER_TENANT = 5;
/** The warm working set: the first tenants, identical at both scales. */
const HOT_TENANTS = 800;
/** Tenants never touched before their first-decision measurement. */
const COLD_SAMPLES = 200;
const BATCH_SIZE = 20;

const GRPC_RUNS = {
  warmUpExtra: 2_000,
  levels: [
    { concurrency: 1, count: 5_000, budgetMs: 15_000 },
    { concurrency: 16, count: 40_000, budgetMs: 20_000 },
    { concurrency: 64, count: 40_000, budgetMs: 20_000 },
  ],
  batch: { concurrency: 16, count: 4_000, budgetMs: 20_000 },
  /** Checks of an unknown capability: denied before any rule is consulted, so this is the transport alone. */
  floor: { concurrency: 16, count: 20_000, budgetMs: 10_000 },
  cold: { count: COLD_SAMPLES, budgetMs: 30_000 },
  loadAll: { concurrency: 16, budgetMs: 90_000 },
  readyTimeoutMs: 60_000,
};
const IN_PROCESS_RUNS = { warmUp: 20_000, checks: 200_000, batches: 20_000, budgetMs: 10_000, cold: COLD_SAMPLES };
const BASELINE_RUNS = { decisions: 2_000, budgetMs: { 1000: 20_000, 10000: 30_000 } as Record<number, number>, agreement: 300 };
/** Linux clock ticks per second for /proc/<pid>/stat (USER_HZ, 100 on every mainstream kernel). */
const CLOCK_TICKS = 100;

// ---------------------------------------------------------------------------------------------
// Modules loaded at run time (compiled files at a different depth than this source file)

type PlatformModule = typeof platformTypes;

/** The parts of services/policy/src/libraries/catalogue.ts the benchmark uses. */
interface Catalogue {
  capabilities: readonly string[];
  templates: readonly (readonly [string, string, string])[];
  isPerAssistant(object: string): boolean;
  planAllows(plan: string, capability: string): boolean;
}

interface StoredRole {
  subject: string;
  role: string;
  assistantId: string | null;
}
interface StoredPermission {
  subject: string;
  object: string;
  action: string;
  assistantId: string | null;
}
interface TenantRules {
  roles: StoredRole[];
  permissions: StoredPermission[];
  plan: string | null;
}

interface Query {
  assistantId: string;
  object: string;
  action: string;
}
interface Decision {
  allowed: boolean;
  reason: string;
}

/** services/policy/src/libraries/decisions.ts */
interface DecisionsModule {
  createDecisionLibrary(deps: {
    modelText: string;
    catalogue: Catalogue;
    rules: { loadTenant(tenantId: string): Promise<TenantRules> };
    defaultPlan: string;
    maxCachedTenants: number;
    maxAgeMs: number;
  }): {
    check(request: Query & { principal: Principal; tenantId: string }): Promise<Decision>;
    checkMany(request: { principal: Principal; tenantId: string; queries: readonly Query[] }): Promise<Decision[]>;
  };
}

/** services/policy/src/libraries/policy-files.ts */
interface PolicyFilesModule {
  readPolicyFiles(dir: string): Promise<{ modelText: string; catalogue: Catalogue }>;
}

/** The parts of node-casbin the baseline uses. */
interface CasbinModule {
  newModelFromString(text: string): unknown;
  newEnforcer(model: unknown): Promise<{
    addPolicies(rules: string[][]): Promise<boolean>;
    addGroupingPolicies(rules: string[][]): Promise<boolean>;
    enforceSync(...request: string[]): boolean;
  }>;
}

const root = repositoryRoot();

// ---------------------------------------------------------------------------------------------
// Figures

const int = (value: number) => Math.round(value).toLocaleString('en-US');

/** Present when node runs with --expose-gc (the bench:policy script does), so heap figures are not noise. */
const collectGarbage = (globalThis as { gc?: () => void }).gc;

function heapUsedMb(): number {
  collectGarbage?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

/** The machine's load average: other work on the same cores moves every figure. */
const machineLoad = () =>
  `load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`;

function printRow(label: string, s: Summary, unit: string, extra = ''): void {
  console.log(
    `  ${label.padEnd(40)} n=${String(s.n).padStart(6)}  p50 ${fmt(s.p50).padStart(6)} ${unit}  p99 ${fmt(s.p99).padStart(6)} ${unit}  max ${fmt(s.max).padStart(6)} ${unit}${extra}`,
  );
}

/** A small seeded generator, so every run asks the same questions of the same shape. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(items: readonly T[], random: () => number): T {
  const item = items[Math.floor(random() * items.length)];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
}

function processRssMb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

/** User + system CPU time of a process, in ms. */
function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

// ---------------------------------------------------------------------------------------------
// Data: 100 rules per tenant

interface Tenant {
  id: string;
  users: string[];
  assistants: string[];
  /** Stored plan; null: the default plan (free). */
  plan: string | null;
  rules: TenantRules;
}

/**
 * One tenant's 100 rules. Users u0…u39, assistants A0…A4:
 * - roles (75): u0 owner; u1–u4 admin; u5–u24 user (tenant-wide); u5–u14 also admin on one
 *   assistant; u25–u39 user on two assistants; u25–u34 also admin on a third one;
 * - permissions (25): u5–u14 tools:invoke on one assistant; u15–u19 mcp:invoke tenant-wide
 *   (allowed only on plan pro); u20–u24 knowledge:manage on one assistant; u25–u29
 *   devices:manage tenant-wide.
 * Every fourth tenant is on plan pro, every fourth stores free, the rest have no plan row.
 */
function makeTenant(index: number): Tenant {
  const users = Array.from({ length: USERS_PER_TENANT }, () => randomUUID());
  const assistants = Array.from({ length: ASSISTANTS_PER_TENANT }, () => randomUUID());
  const u = (k: number) => `user:${users[k] ?? ''}`;
  const a = (k: number) => assistants[k % ASSISTANTS_PER_TENANT] ?? null;
  const roles: StoredRole[] = [{ subject: u(0), role: 'role:owner', assistantId: null }];
  const permissions: StoredPermission[] = [];
  const permit = (k: number, object: string, action: string, assistantId: string | null) => {
    permissions.push({ subject: u(k), object, action, assistantId });
  };
  for (let k = 1; k <= 4; k++) roles.push({ subject: u(k), role: 'role:admin', assistantId: null });
  for (let k = 5; k <= 24; k++) roles.push({ subject: u(k), role: 'role:user', assistantId: null });
  for (let k = 5; k <= 14; k++) roles.push({ subject: u(k), role: 'role:admin', assistantId: a(k) });
  for (let k = 25; k <= 39; k++) {
    roles.push({ subject: u(k), role: 'role:user', assistantId: a(k) }, { subject: u(k), role: 'role:user', assistantId: a(k + 1) });
    if (k <= 34) roles.push({ subject: u(k), role: 'role:admin', assistantId: a(k + 2) });
  }
  for (let k = 5; k <= 14; k++) permit(k, 'tools', 'invoke', a(k));
  for (let k = 15; k <= 19; k++) permit(k, 'mcp', 'invoke', null);
  for (let k = 20; k <= 24; k++) permit(k, 'knowledge', 'manage', a(k));
  for (let k = 25; k <= 29; k++) permit(k, 'devices', 'manage', null);
  const plan = index % 4 === 0 ? 'pro' : index % 4 === 1 ? 'free' : null;
  return { id: randomUUID(), users, assistants, plan, rules: { roles, permissions, plan } };
}

const rulesPerTenant = (tenant: Tenant) => tenant.rules.roles.length + tenant.rules.permissions.length;

/** Multi-row INSERTs (one `unnest` per column) as the table owner, 1,000 tenants per statement. */
async function insertTenants(ownerUrl: string, tenants: readonly Tenant[]): Promise<void> {
  await withPg(ownerUrl, async (client) => {
    for (let start = 0; start < tenants.length; start += 1_000) {
      const chunk = tenants.slice(start, start + 1_000);
      const roles = chunk.flatMap((t) => t.rules.roles.map((r) => ({ tenantId: t.id, ...r })));
      const permissions = chunk.flatMap((t) => t.rules.permissions.map((p) => ({ tenantId: t.id, ...p })));
      const plans = chunk.filter((t) => t.plan !== null);
      await client.query(
        `INSERT INTO role_assignments (tenant_id, subject, role, assistant_id)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[])`,
        [roles.map((r) => r.tenantId), roles.map((r) => r.subject), roles.map((r) => r.role), roles.map((r) => r.assistantId)],
      );
      await client.query(
        `INSERT INTO permissions (tenant_id, subject, object, action, assistant_id)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::uuid[])`,
        [
          permissions.map((p) => p.tenantId),
          permissions.map((p) => p.subject),
          permissions.map((p) => p.object),
          permissions.map((p) => p.action),
          permissions.map((p) => p.assistantId),
        ],
      );
      await client.query(`INSERT INTO tenant_plans (tenant_id, plan) SELECT * FROM unnest($1::uuid[], $2::text[])`, [
        plans.map((t) => t.id),
        plans.map((t) => t.plan),
      ]);
    }
    await client.query('ANALYZE role_assignments, permissions, tenant_plans');
  });
}

// ---------------------------------------------------------------------------------------------
// Requests

interface Request extends Query {
  tenant: Tenant;
  userId: string;
}

/** A single decision on a warm tenant: any user, any catalogue capability, often on an assistant. */
function makeRequests(tenants: readonly Tenant[], catalogue: Catalogue, count: number, seed: number): Request[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => {
    const tenant = pick(tenants, random);
    const [object = '', action = ''] = pick(catalogue.capabilities, random).split(':');
    const onAssistant = random() < (catalogue.isPerAssistant(object) ? 0.75 : 0.2);
    return { tenant, userId: pick(tenant.users, random), object, action, assistantId: onAssistant ? pick(tenant.assistants, random) : '' };
  });
}

interface Batch {
  tenant: Tenant;
  userId: string;
  queries: Query[];
}

function makeBatches(tenants: readonly Tenant[], catalogue: Catalogue, count: number, seed: number): Batch[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => {
    const [first] = makeRequests([pick(tenants, random)], catalogue, 1, Math.floor(random() * 2 ** 31));
    if (!first) throw new Error('no request');
    const queries = makeRequests([first.tenant], catalogue, BATCH_SIZE, Math.floor(random() * 2 ** 31)).map(
      ({ assistantId, object, action }) => ({
        assistantId,
        object,
        action,
      }),
    );
    return { tenant: first.tenant, userId: first.userId, queries };
  });
}

const principalOf = (tenant: Tenant, userId: string) => ({ kind: PrincipalKind.USER, id: userId, tenantId: tenant.id });

/** Spread evenly over the tenants from `from` on, none of them in the warm set. */
function coldTenants(tenants: readonly Tenant[], from: number, count: number): Tenant[] {
  const step = (tenants.length - from) / count;
  return Array.from({ length: count }, (_, k) => tenants[from + Math.floor(k * step)]).filter((t): t is Tenant => t !== undefined);
}

// ---------------------------------------------------------------------------------------------
// Load generation

interface Run {
  latenciesMs: number[];
  wallMs: number;
  errors: number;
  firstError: unknown;
  /** CPU used by the service and by this (client) process, % of one core. */
  serviceCpu: number;
  clientCpu: number;
}

/** Runs `call` `count` times from `concurrency` workers, stopping when `budgetMs` is spent. */
async function drive(
  concurrency: number,
  count: number,
  budgetMs: number,
  pid: number,
  call: (i: number) => Promise<unknown>,
): Promise<Run> {
  const latenciesMs: number[] = [];
  let next = 0;
  let errors = 0;
  let firstError: unknown;
  const started = performance.now();
  const deadline = started + budgetMs;
  const serviceCpuBefore = processCpuMs(pid);
  const clientCpuBefore = process.cpuUsage();
  const worker = async () => {
    while (next < count && performance.now() < deadline) {
      const i = next++;
      const start = performance.now();
      try {
        await call(i);
        latenciesMs.push(performance.now() - start);
      } catch (error) {
        errors++;
        firstError ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const wallMs = performance.now() - started;
  const client = process.cpuUsage(clientCpuBefore);
  return {
    latenciesMs,
    wallMs,
    errors,
    firstError,
    serviceCpu: ((processCpuMs(pid) - serviceCpuBefore) / wallMs) * 100,
    clientCpu: ((client.user + client.system) / 1000 / wallMs) * 100,
  };
}

const perSecond = (run: Run, per = 1) => (run.latenciesMs.length * per * 1000) / run.wallMs;

function describeRun(run: Run, count: number): string {
  const stopped =
    run.latenciesMs.length + run.errors < count
      ? `, stopped by the budget after ${int(run.latenciesMs.length + run.errors)} of ${int(count)}`
      : '';
  const failed = run.errors > 0 ? `, ${run.errors} ERRORS (first: ${String(run.firstError)})` : '';
  return `  CPU service ${run.serviceCpu.toFixed(0)}% client ${run.clientCpu.toFixed(0)}%${stopped}${failed}`;
}

// ---------------------------------------------------------------------------------------------
// 1. gRPC against the service process

interface GrpcFigures {
  levels: { concurrency: number; perSecond: number; latency: Summary }[];
  floor: { perSecond: number; latency: Summary };
  batch: { decisionsPerSecond: number; latency: Summary };
  cold: Summary;
  /** Every tenant not touched before, once; undefined when there is none. */
  loadAll: { tenantsPerSecond: number; latency: Summary } | undefined;
  rssMb: { idle: number; warm: number; afterRuns: number; allLoaded: number };
  allowedShare: number;
}

async function waitReady(adminPort: number, child: { exitCode: number | null }, logFile: string): Promise<void> {
  const deadline = Date.now() + GRPC_RUNS.readyTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`policy exited with code ${child.exitCode}; see ${logFile}`);
    try {
      const response = await fetch(`http://127.0.0.1:${adminPort}/readyz`, { signal: AbortSignal.timeout(1000) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  throw new Error(`policy was not ready within ${GRPC_RUNS.readyTimeoutMs} ms; see ${logFile}`);
}

async function benchGrpc(options: {
  platform: PlatformModule;
  db: TestDatabase;
  logDir: string;
  tenants: readonly Tenant[];
  hot: readonly Tenant[];
  cold: readonly Tenant[];
  requests: readonly Request[];
  batches: readonly Batch[];
}): Promise<GrpcFigures> {
  const { platform, db, logDir, tenants, hot, cold, requests, batches } = options;
  const grpcPort = await freePort();
  const adminPort = await freePort();
  const keys = platform.generateServiceKeys(['policy', 'tenant-registry']);
  const service = platform.startService({
    root,
    name: 'policy',
    logDir,
    env: {
      LOG_LEVEL: 'warn',
      LISTEN_HOST: '127.0.0.1',
      GRPC_PORT: String(grpcPort),
      ADMIN_PORT: String(adminPort),
      DATABASE_URL: db.appUrl,
      NATS_URL: infra.natsUrl,
      NATS_SUBJECT_PREFIX: testRunId,
      SERVICE_IDENTITY_KEY: keys.privateKeys['policy'] ?? '',
      SERVICE_TRUST: keys.trust,
    },
  });
  let client: GrpcClient<typeof PolicyService> | undefined;
  try {
    await waitReady(adminPort, service.child, service.logFile);
    const pid = service.child.pid;
    if (pid === undefined) throw new Error('the policy process has no pid');
    // Asks as tenant-registry would (a platform service may ask about any tenant).
    const caller = createServiceIdentity({
      name: 'tenant-registry',
      privateKey: createPrivateKey(keys.privateKeys['tenant-registry'] ?? ''),
      trust: new Map(),
    });
    client = createGrpcClient(PolicyService, {
      address: `127.0.0.1:${grpcPort}`,
      deadlineMs: 5_000,
      credential: caller.credentialFor('policy'),
    });
    const grpc = client;
    const idle = processRssMb(pid);
    const check = (r: Request) =>
      grpc.check({
        principal: principalOf(r.tenant, r.userId),
        tenantId: r.tenant.id,
        assistantId: r.assistantId,
        object: r.object,
        action: r.action,
      });
    const request = (i: number) => requests[i % requests.length]!;

    // Warm-up: every warm tenant once (loads its rules), then more decisions for the JIT.
    const owners = hot.map((tenant) => ({ tenant, userId: tenant.users[0]!, object: 'tenant', action: 'read', assistantId: '' }));
    const warmUp = await drive(16, owners.length, 60_000, pid, (i) => check(owners[i]!));
    await drive(16, GRPC_RUNS.warmUpExtra, 30_000, pid, (i) => check(request(i)));
    if (warmUp.errors > 0) throw new Error(`warm-up failed: ${String(warmUp.firstError)}`);
    const warm = processRssMb(pid);
    let allowed = 0;
    for (let i = 0; i < 1_000; i++) if ((await check(request(i))).allowed) allowed++;

    console.log(`\n  gRPC Check over ${int(hot.length)} warm tenants (ms per call); ${machineLoad()}`);
    const levels: GrpcFigures['levels'] = [];
    let offset = 0;
    for (const { concurrency, count, budgetMs } of GRPC_RUNS.levels) {
      const start = offset;
      const run = await drive(concurrency, count, budgetMs, pid, (i) => check(request(start + i)));
      offset += count;
      const latency = summarize(run.latenciesMs);
      levels.push({ concurrency, perSecond: perSecond(run), latency });
      printRow(`Check, concurrency ${concurrency}`, latency, 'ms', `  ${int(perSecond(run)).padStart(6)} decisions/s`);
      console.log(describeRun(run, count));
    }

    const floorRun = await drive(GRPC_RUNS.floor.concurrency, GRPC_RUNS.floor.count, GRPC_RUNS.floor.budgetMs, pid, (i) =>
      check({ ...request(i), object: 'bench', action: 'unknown' }),
    );
    const floor = { perSecond: perSecond(floorRun), latency: summarize(floorRun.latenciesMs) };
    printRow(
      `unknown capability, concurrency ${GRPC_RUNS.floor.concurrency}`,
      floor.latency,
      'ms',
      `  ${int(floor.perSecond).padStart(6)} decisions/s`,
    );
    console.log(`${describeRun(floorRun, GRPC_RUNS.floor.count)} (denied before any rule: gRPC and validation alone)`);

    const { concurrency, count, budgetMs } = GRPC_RUNS.batch;
    const batchRun = await drive(concurrency, count, budgetMs, pid, (i) => {
      const b = batches[i % batches.length]!;
      return grpc.batchCheck({ principal: principalOf(b.tenant, b.userId), tenantId: b.tenant.id, queries: b.queries });
    });
    const batchLatency = summarize(batchRun.latenciesMs);
    printRow(
      `BatchCheck ×${BATCH_SIZE}, concurrency ${concurrency}`,
      batchLatency,
      'ms',
      `  ${int(perSecond(batchRun, BATCH_SIZE)).padStart(6)} decisions/s`,
    );
    console.log(describeRun(batchRun, count));
    const afterRuns = processRssMb(pid);

    // First decision on tenants nothing has asked about yet: their rules come from Postgres.
    const coldRun = await drive(1, Math.min(GRPC_RUNS.cold.count, cold.length), GRPC_RUNS.cold.budgetMs, pid, (i) => {
      const tenant = cold[i]!;
      return grpc.check({
        principal: principalOf(tenant, tenant.users[0]!),
        tenantId: tenant.id,
        assistantId: tenant.assistants[0]!,
        object: 'tools',
        action: 'read',
      });
    });
    const coldLatency = summarize(coldRun.latenciesMs);
    printRow('cold tenant, first Check (sequential)', coldLatency, 'ms');
    console.log(describeRun(coldRun, GRPC_RUNS.cold.count));

    // Every other tenant loaded once (the LRU holds POLICY_MAX_CACHED_TENANTS = 10,000 by default).
    const touched = new Set([...hot, ...cold]);
    const rest = tenants.filter((t) => !touched.has(t));
    let loadAll: GrpcFigures['loadAll'];
    let loaded = touched.size;
    if (rest.length > 0) {
      const loadRun = await drive(GRPC_RUNS.loadAll.concurrency, rest.length, GRPC_RUNS.loadAll.budgetMs, pid, (i) => {
        const tenant = rest[i]!;
        return grpc.check({ principal: principalOf(tenant, tenant.users[0]!), tenantId: tenant.id, object: 'tenant', action: 'read' });
      });
      const latency = summarize(loadRun.latenciesMs);
      loadAll = { tenantsPerSecond: perSecond(loadRun), latency };
      loaded += loadRun.latenciesMs.length;
      printRow(
        `${int(rest.length)} other tenants once, concurrency ${GRPC_RUNS.loadAll.concurrency}`,
        latency,
        'ms',
        `  ${int(perSecond(loadRun)).padStart(6)} tenants/s`,
      );
      console.log(describeRun(loadRun, rest.length));
    }
    const allLoaded = processRssMb(pid);
    console.log(
      `  service RSS: ${fmt(idle)} MB idle, ${fmt(warm)} MB warm (${int(hot.length)} tenants), ${fmt(afterRuns)} MB after the runs, ` +
        `${fmt(allLoaded)} MB with ${int(loaded)} tenants loaded; ${((allowed / 1_000) * 100).toFixed(0)}% of the single Checks allow`,
    );
    return {
      levels,
      floor,
      batch: { decisionsPerSecond: perSecond(batchRun, BATCH_SIZE), latency: batchLatency },
      cold: coldLatency,
      loadAll,
      rssMb: { idle, warm, afterRuns, allLoaded },
      allowedShare: allowed / 1_000,
    };
  } finally {
    client?.close();
    await service.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// 2. The decision library in-process

interface InProcessFigures {
  check: Summary;
  checksPerSecond: number;
  batchPerDecisionUs: number;
  cold: Summary;
  decisions: boolean[];
}

async function timeEach(
  count: number,
  budgetMs: number,
  fn: (i: number) => Promise<unknown>,
): Promise<{ samplesUs: number[]; wallMs: number }> {
  const samplesUs: number[] = [];
  const started = performance.now();
  const deadline = started + budgetMs;
  for (let i = 0; i < count && performance.now() < deadline; i++) {
    const start = performance.now();
    await fn(i);
    samplesUs.push((performance.now() - start) * 1000);
  }
  return { samplesUs, wallMs: performance.now() - started };
}

async function benchInProcess(options: {
  decisionsModule: DecisionsModule;
  modelText: string;
  catalogue: Catalogue;
  tenants: readonly Tenant[];
  hot: readonly Tenant[];
  cold: readonly Tenant[];
  requests: readonly Request[];
  batches: readonly Batch[];
}): Promise<InProcessFigures> {
  const { decisionsModule, modelText, catalogue, tenants, hot, cold, requests, batches } = options;
  const byId = new Map(tenants.map((t) => [t.id, t.rules]));
  const library = decisionsModule.createDecisionLibrary({
    modelText,
    catalogue,
    rules: {
      loadTenant(tenantId) {
        const rules = byId.get(tenantId);
        return rules ? Promise.resolve(rules) : Promise.reject(new Error(`no tenant ${tenantId}`));
      },
    },
    defaultPlan: 'free',
    maxCachedTenants: 10_000,
    // Long enough that no reload happens during the measurement: this is the decision cost alone.
    maxAgeMs: 3_600_000,
  });
  // Built once per request, as the gRPC handler has a decoded message in hand.
  const principals = requests.map((r) => create(PrincipalSchema, principalOf(r.tenant, r.userId)));
  const check = (i: number) => {
    const r = requests[i % requests.length]!;
    return library.check({
      principal: principals[i % requests.length]!,
      tenantId: r.tenant.id,
      assistantId: r.assistantId,
      object: r.object,
      action: r.action,
    });
  };
  for (const tenant of hot) {
    await library.check({
      principal: create(PrincipalSchema, principalOf(tenant, tenant.users[0]!)),
      tenantId: tenant.id,
      assistantId: '',
      object: 'tenant',
      action: 'read',
    });
  }
  for (let i = 0; i < IN_PROCESS_RUNS.warmUp; i++) await check(i);
  const decisions: boolean[] = [];
  for (let i = 0; i < BASELINE_RUNS.agreement; i++) decisions.push((await check(i)).allowed);

  const checks = await timeEach(IN_PROCESS_RUNS.checks, IN_PROCESS_RUNS.budgetMs, check);
  const checkSummary = summarize(checks.samplesUs);
  const batchPrincipals = batches.map((b) => create(PrincipalSchema, principalOf(b.tenant, b.userId)));
  const batchRun = await timeEach(IN_PROCESS_RUNS.batches, IN_PROCESS_RUNS.budgetMs, (i) => {
    const b = batches[i % batches.length]!;
    return library.checkMany({ principal: batchPrincipals[i % batches.length]!, tenantId: b.tenant.id, queries: b.queries });
  });
  const batchSummary = summarize(batchRun.samplesUs);
  const coldRun = await timeEach(Math.min(IN_PROCESS_RUNS.cold, cold.length), IN_PROCESS_RUNS.budgetMs, (i) => {
    const tenant = cold[i]!;
    return library.check({
      principal: create(PrincipalSchema, principalOf(tenant, tenant.users[0]!)),
      tenantId: tenant.id,
      assistantId: tenant.assistants[0]!,
      object: 'tools',
      action: 'read',
    });
  });
  const coldSummary = summarize(coldRun.samplesUs);

  console.log(`\n  In-process decision library (in-memory rules), µs per call; ${machineLoad()}`);
  const checksPerSecond = (checks.samplesUs.length * 1000) / checks.wallMs;
  printRow('check, warm tenant', checkSummary, 'µs', `  ${int(checksPerSecond).padStart(7)} decisions/s`);
  printRow(`checkMany ×${BATCH_SIZE}, warm tenant`, batchSummary, 'µs', `  ${fmt(batchSummary.mean / BATCH_SIZE)} µs per decision`);
  printRow('cold tenant, first check (builds enforcer)', coldSummary, 'µs');
  return { check: checkSummary, checksPerSecond, batchPerDecisionUs: batchSummary.mean / BATCH_SIZE, cold: coldSummary, decisions };
}

// ---------------------------------------------------------------------------------------------
// 3. Baseline: one node-casbin enforcer with every tenant's rules

/**
 * Classic RBAC with domains in one enforcer. The domain is the tenant (tenant-wide grants) or
 * `<tenant>/<assistant>` (grants on one assistant); the role templates are stored once for every
 * domain (`*`), each tenant's permissions as `p` rules of its user in their domain, its role
 * assignments as `g` rules in their domain.
 */
const baselineModel = `
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub, r.dom) && (p.dom == r.dom || p.dom == "*") && r.obj == p.obj && r.act == p.act
`;

interface BaselineFigures {
  buildMs: number;
  heapMb: number;
  perSecond: number;
  latencyUs: Summary;
  completed: number;
  stoppedByBudget: boolean;
  agreed: number;
  compared: number;
}

async function benchBaseline(options: {
  casbin: CasbinModule;
  catalogue: Catalogue;
  tenants: readonly Tenant[];
  requests: readonly Request[];
  decisions: readonly boolean[];
  budgetMs: number;
}): Promise<BaselineFigures> {
  const { casbin, catalogue, tenants, requests, decisions, budgetMs } = options;
  const heapBefore = heapUsedMb();
  const started = performance.now();
  const enforcer = await casbin.newEnforcer(casbin.newModelFromString(baselineModel));
  const domain = (tenantId: string, assistantId: string | null) => (assistantId === null ? tenantId : `${tenantId}/${assistantId}`);
  // Tenants in a shuffled order, so where a warm tenant's rows sit in the policy list is arbitrary.
  const random = seededRandom(7);
  const order = tenants
    .map((t) => ({ t, key: random() }))
    .sort((x, y) => x.key - y.key)
    .map(({ t }) => t);
  const policies = catalogue.templates.map(([role, object, action]) => [role, '*', object, action]);
  const groupings: string[][] = [];
  for (const t of order) {
    for (const p of t.rules.permissions) policies.push([p.subject, domain(t.id, p.assistantId), p.object, p.action]);
    for (const r of t.rules.roles) groupings.push([r.subject, r.role, domain(t.id, r.assistantId)]);
  }
  // One call each on an empty enforcer (casbin checks every new rule against the stored ones).
  const added = (await enforcer.addPolicies(policies)) && (await enforcer.addGroupingPolicies(groupings));
  if (!added) throw new Error('the baseline enforcer refused the rules');
  const buildMs = performance.now() - started;
  const heapMb = heapUsedMb() - heapBefore;

  const plans = new Map(tenants.map((t) => [t.id, t.plan ?? 'free']));
  const decide = (r: Request): boolean => {
    if (!catalogue.planAllows(plans.get(r.tenant.id) ?? 'free', `${r.object}:${r.action}`)) return false;
    const subject = `user:${r.userId}`;
    if (r.assistantId === '' || !catalogue.isPerAssistant(r.object)) return enforcer.enforceSync(subject, r.tenant.id, r.object, r.action);
    return (
      enforcer.enforceSync(subject, r.tenant.id, r.object, r.action) ||
      enforcer.enforceSync(subject, `${r.tenant.id}/${r.assistantId}`, r.object, r.action)
    );
  };
  const answers: boolean[] = [];
  const run = await timeEach(BASELINE_RUNS.decisions, budgetMs, (i) => {
    answers.push(decide(requests[i % requests.length]!));
    return Promise.resolve();
  });
  let agreed = 0;
  const compared = Math.min(decisions.length, answers.length);
  for (let i = 0; i < compared; i++) if (answers[i] === decisions[i]) agreed++;
  const latencyUs = summarize(run.samplesUs);
  const perSecondFigure = (run.samplesUs.length * 1000) / run.wallMs;
  console.log(
    `\n  Baseline: one node-casbin enforcer, ${int(policies.length)} p + ${int(groupings.length)} g rules, built in ${fmt(buildMs / 1000)} s, heap +${fmt(heapMb)} MB; ${machineLoad()}`,
  );
  printRow('enforceSync, same requests', latencyUs, 'µs', `  ${fmt(perSecondFigure).padStart(7)} decisions/s`);
  const stoppedByBudget = run.samplesUs.length < BASELINE_RUNS.decisions;
  if (stoppedByBudget)
    console.log(
      `  stopped by the ${budgetMs / 1000} s budget after ${int(run.samplesUs.length)} of ${int(BASELINE_RUNS.decisions)} decisions`,
    );
  console.log(`  agrees with the decision library on ${agreed} of ${compared} requests`);
  return { buildMs, heapMb, perSecond: perSecondFigure, latencyUs, completed: run.samplesUs.length, stoppedByBudget, agreed, compared };
}

// ---------------------------------------------------------------------------------------------

interface ScaleFigures {
  tenants: number;
  rules: number;
  loadMs: number;
  grpc: GrpcFigures;
  inProcess: InProcessFigures;
  baseline: BaselineFigures;
}

function printTable(results: readonly ScaleFigures[]): void {
  const head = results.map((r) => `${int(r.tenants)} t / ${int(r.rules)} rules`.padStart(28));
  const ratioHead = results.length === 2 ? '   large / small' : '';
  console.log(`\nSummary (${cpus().length} cores)\n  ${''.padEnd(46)}${head.join('')}${ratioHead}`);
  /** `ratio`: what the last column compares (e.g. p99) and how to read it from one scale's figures. */
  const row = (label: string, cell: (r: ScaleFigures) => string, ratio?: [string, (r: ScaleFigures) => number]) => {
    const cells = results.map((r) => cell(r).padStart(28)).join('');
    const [small, large] = results;
    const r = ratio && small && large ? `   ${ratio[0]} ${(ratio[1](large) / ratio[1](small)).toFixed(2)}×` : '';
    console.log(`  ${label.padEnd(46)}${cells}${r}`);
  };
  row('load into Postgres (INSERT … unnest, ANALYZE)', (r) => `${fmt(r.loadMs / 1000)} s`);
  for (const [index, { concurrency }] of GRPC_RUNS.levels.entries()) {
    const level = (r: ScaleFigures) => r.grpc.levels[index];
    row(
      `gRPC Check c${concurrency}: decisions/s, p50 / p99 ms`,
      (r) => `${int(level(r)?.perSecond ?? 0)}/s ${fmt(level(r)?.latency.p50 ?? Number.NaN)} / ${fmt(level(r)?.latency.p99 ?? Number.NaN)}`,
      ['p99', (r) => level(r)?.latency.p99 ?? Number.NaN],
    );
  }
  row(
    `gRPC floor c${GRPC_RUNS.floor.concurrency} (unknown capability): /s, p50 / p99`,
    (r) => `${int(r.grpc.floor.perSecond)}/s ${fmt(r.grpc.floor.latency.p50)} / ${fmt(r.grpc.floor.latency.p99)}`,
  );
  row(
    `gRPC BatchCheck ×${BATCH_SIZE} c${GRPC_RUNS.batch.concurrency}: decisions/s, p50 / p99 ms`,
    (r) => `${int(r.grpc.batch.decisionsPerSecond)}/s ${fmt(r.grpc.batch.latency.p50)} / ${fmt(r.grpc.batch.latency.p99)}`,
    ['p99', (r) => r.grpc.batch.latency.p99],
  );
  row('gRPC cold tenant first Check p50 / p99 ms', (r) => `${fmt(r.grpc.cold.p50)} / ${fmt(r.grpc.cold.p99)}`, [
    'p50',
    (r) => r.grpc.cold.p50,
  ]);
  row('gRPC other tenants once c16: tenants/s, p99 ms', (r) =>
    r.grpc.loadAll ? `${int(r.grpc.loadAll.tenantsPerSecond)}/s, ${fmt(r.grpc.loadAll.latency.p99)}` : '–',
  );
  row('service RSS warm / all tenants loaded, MB', (r) => `${fmt(r.grpc.rssMb.warm)} / ${fmt(r.grpc.rssMb.allLoaded)}`);
  row(
    'in-process check µs p50 / p99 (decisions/s)',
    (r) => `${fmt(r.inProcess.check.p50)} / ${fmt(r.inProcess.check.p99)} (${int(r.inProcess.checksPerSecond)}/s)`,
    ['p50', (r) => r.inProcess.check.p50],
  );
  row(`in-process checkMany ×${BATCH_SIZE}: µs per decision`, (r) => fmt(r.inProcess.batchPerDecisionUs));
  row('in-process cold tenant first check µs p50', (r) => fmt(r.inProcess.cold.p50));
  row(
    'baseline one casbin enforcer: decisions/s',
    (r) => `${fmt(r.baseline.perSecond)}/s${r.baseline.stoppedByBudget ? ` (${r.baseline.completed}, budget)` : ''}`,
  );
  row('baseline µs p50 / p99', (r) => `${fmt(r.baseline.latencyUs.p50)} / ${fmt(r.baseline.latencyUs.p99)}`, [
    'p50',
    (r) => r.baseline.latencyUs.p50,
  ]);
  row('baseline build s, heap MB', (r) => `${fmt(r.baseline.buildMs / 1000)} s, ${fmt(r.baseline.heapMb)} MB`);
  row('per-tenant in-process vs baseline (decisions/s)', (r) => `${fmt(r.inProcess.checksPerSecond / r.baseline.perSecond)}×`);
  row('per-tenant gRPC c16 vs baseline (decisions/s)', (r) => `${fmt((r.grpc.levels[1]?.perSecond ?? 0) / r.baseline.perSecond)}×`);

  console.log('\nTargets (printed, not asserted)');
  for (const r of results) {
    const c16 = r.grpc.levels.find((l) => l.concurrency === 16);
    if (!c16) continue;
    const met = c16.perSecond >= 5_000 && c16.latency.p99 <= 5;
    console.log(
      `  ${int(r.rules)} rules: ≥ 5,000 Check/s at c16 with p99 ≤ 5 ms: ${int(c16.perSecond)}/s, p99 ${fmt(c16.latency.p99)} ms → ${met ? 'met' : 'MISSED'}`,
    );
  }
  const [small, large] = results;
  if (small && large) {
    for (const index of GRPC_RUNS.levels.keys()) {
      const a = small.grpc.levels[index];
      const b = large.grpc.levels[index];
      if (!a || !b) continue;
      const p50 = b.latency.p50 / a.latency.p50;
      const p99 = b.latency.p99 / a.latency.p99;
      console.log(
        `  c${a.concurrency}: latency 1M/100k rules p50 ${p50.toFixed(2)}×, p99 ${p99.toFixed(2)}× (≤ 1.2×) → ${Math.max(p50, p99) <= 1.2 ? 'met' : 'MISSED'}`,
      );
    }
  }
}

async function main(): Promise<void> {
  const part = process.argv[2] ?? 'all';
  if (!['all', 'small'].includes(part)) {
    console.error('usage: node test/dist/bench/policy.bench.js [all|small]');
    process.exit(2);
  }
  const scales = part === 'small' ? SCALES.slice(0, 1) : SCALES;
  const cpu = cpus();
  console.log(
    `Portcullis policy benchmark — ${new Date().toISOString()}, node ${process.version}, ${cpu.length} × ${cpu[0]?.model ?? 'cpu'}, ${machineLoad()}`,
  );

  const platform = await loadCompiled<PlatformModule>('deploy/local/platform.mjs');
  const decisionsModule = await loadCompiled<DecisionsModule>('services/policy/dist/src/libraries/decisions.js');
  const { readPolicyFiles } = await loadCompiled<PolicyFilesModule>('services/policy/dist/src/libraries/policy-files.js');
  if (!existsSync(join(root, 'services/policy/dist/src/main.js')))
    throw new Error('services/policy/dist/src/main.js is missing: build first (pnpm build)');
  // node-casbin is the policy service's dependency, so it is resolved from there.
  const casbin = createRequire(join(root, 'services/policy/package.json'))('casbin') as CasbinModule;
  const { modelText, catalogue } = await readPolicyFiles(join(root, 'policies'));

  const logDir = join(tmpdir(), `portcullis-bench-${testRunId}`);
  let db: TestDatabase | undefined;
  let cleaned = false;
  const cleanUp = async () => {
    if (cleaned) return;
    cleaned = true;
    if (db) {
      await db.drop().catch((error: unknown) => {
        console.error('cleanup: dropping the database failed:', error);
      });
      console.log('  cleanup: database dropped');
    }
  };
  const onSignal = () => {
    void cleanUp().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let keepLogs = true;
  const results: ScaleFigures[] = [];
  try {
    db = await createTestDatabase('policy', join(root, 'services/policy/prisma/migrations'));
    const tenants: Tenant[] = [];
    for (const { tenants: count } of scales) {
      const added = Array.from({ length: count - tenants.length }, (_, k) => makeTenant(tenants.length + k));
      const loadStarted = performance.now();
      await insertTenants(db.ownerUrl, added);
      const loadMs = performance.now() - loadStarted;
      tenants.push(...added);
      const rules = tenants.reduce((sum, t) => sum + rulesPerTenant(t), 0);
      const hot = tenants.slice(0, HOT_TENANTS);
      const cold = coldTenants(tenants, HOT_TENANTS, COLD_SAMPLES);
      const requests = makeRequests(hot, catalogue, 100_000, 1);
      const batches = makeBatches(hot, catalogue, 2_000, 2);
      console.log(
        `\n=== ${int(tenants.length)} tenants, ${int(rules)} rules (${int(added.length * 100)} rows inserted in ${fmt(loadMs / 1000)} s, ` +
          `${int((added.length * 100 * 1000) / loadMs)} rows/s) ===`,
      );
      const grpc = await benchGrpc({ platform, db, logDir, tenants, hot, cold, requests, batches });
      const inProcess = await benchInProcess({ decisionsModule, modelText, catalogue, tenants, hot, cold, requests, batches });
      const baseline = await benchBaseline({
        casbin,
        catalogue,
        tenants,
        requests,
        decisions: inProcess.decisions,
        budgetMs: BASELINE_RUNS.budgetMs[count] ?? 30_000,
      });
      results.push({ tenants: tenants.length, rules, loadMs, grpc, inProcess, baseline });
    }
    printTable(results);
    keepLogs = false;
  } finally {
    console.log('\nStopping and removing the run’s data…');
    await cleanUp();
    if (!keepLogs) await rm(logDir, { recursive: true, force: true });
    else console.log(`  service logs kept in ${logDir}`);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

await main();
