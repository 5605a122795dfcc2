// Benchmark of the identity flow (not a test: it prints figures and asserts nothing about time).
//
//   node_modules/.bin/tsc --build && pnpm run bench:auth            # both parts
//   node test/dist/bench/auth-tokens.bench.js tokens                # part 1 only (no services)
//   node test/dist/bench/auth-tokens.bench.js flow                  # part 2 only
//
// Part 1 runs the gateway's own access-token verifier in-process on ES256 tokens: with a key set
// held in memory, with the gateway's long-lived remote JWKS (fetched once, then cached), and
// "uncached" with a fresh remote JWKS per verify, so every verify includes the key fetch from a
// JWKS server on 127.0.0.1.
// Part 2 spawns the whole platform the way the end-to-end harness does (compiled services, free
// ports, databases, Redis key prefix and NATS subjects of this run only), seeds the demo tenant and
// times sign-in (`POST /api/auth/login`, argon2id verification included) and tenant selection
// (`POST /api/auth/select-tenant`) through the gateway over HTTP. Afterwards it stops every
// process, drops the run's databases, deletes its Redis keys and its NATS audit stream.
//
// Every loop is bounded by a count and by a time budget; only 127.0.0.1 is contacted.
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createLocalJWKSet, createRemoteJWKSet, exportJWK, generateKeyPair, SignJWT, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import type * as demoToolTypes from '../../deploy/local/demo-tool.mjs';
import type * as platformTypes from '../../deploy/local/platform.mjs';
import type * as seedTypes from '../../deploy/local/seed.mjs';
import { infra } from '../src/infra.js';
import { deleteAuditStream, deleteRedisKeysWithPrefix, dropDatabasesWithPrefix, freePlatformPorts } from '../src/run-resources.js';
import { benchPlatformEnv, fmt, loadCompiled, repositoryRoot, summarize, type Summary } from './bench-support.js';

// The deploy scripts and the gateway are loaded at run time from the repository root, because the
// compiled file (test/dist/bench) sits at a different depth than this source file. Only their
// types are imported statically.
type PlatformModule = typeof platformTypes;
type SeedModule = typeof seedTypes;
type DemoToolModule = typeof demoToolTypes;

/** The shape of services/api-gateway/src/libraries/access-tokens.ts (its compiled module is loaded). */
interface VerifierModule {
  createAccessTokenVerifier(deps: { keys: JWTVerifyGetKey; issuer: string; audience: string }): (token: string) => Promise<unknown>;
}

const ISSUER = 'portcullis-auth';
const AUDIENCE = 'portcullis';

const TOKEN_RUNS = { tokens: 200, cachedVerifies: 5000, uncachedVerifies: 300, warmUp: 1000, budgetMs: 20_000 };
const FLOW_RUNS = { warmUp: 3, rounds: 50, budgetMs: 120_000 };

const root = repositoryRoot();

// ---------------------------------------------------------------------------------------------
// Figures

function printRow(label: string, s: Summary, unit: string): void {
  console.log(
    `  ${label.padEnd(44)} n=${String(s.n).padStart(5)}  mean ${fmt(s.mean).padStart(7)} ${unit}  p50 ${fmt(s.p50).padStart(7)} ${unit}  p99 ${fmt(s.p99).padStart(7)} ${unit}`,
  );
}

/** Runs `fn` up to `count` times (stopping early when `budgetMs` is spent) and returns µs per call. */
async function timeEach(count: number, budgetMs: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  const deadline = performance.now() + budgetMs;
  for (let i = 0; i < count && performance.now() < deadline; i++) {
    const start = performance.now();
    await fn(i);
    samples.push((performance.now() - start) * 1000);
  }
  return samples;
}

// ---------------------------------------------------------------------------------------------
// Part 1: access-token verification

function serveJwks(jwks: JSONWebKeySet): Promise<{ url: URL; fetches: () => number; close: () => Promise<void> }> {
  let fetches = 0;
  const body = JSON.stringify(jwks);
  const server: Server = createServer((request, response) => {
    fetches++;
    if (request.url !== '/.well-known/jwks.json') {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=60' }).end(body);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      resolve({
        url: new URL(`http://127.0.0.1:${port}/.well-known/jwks.json`),
        fetches: () => fetches,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => {
              done();
            });
          }),
      });
    });
  });
}

async function benchTokens(): Promise<void> {
  const { createAccessTokenVerifier } = await loadCompiled<VerifierModule>(
    'services/api-gateway/dist/src/libraries/access-tokens.js',
    'build first (node_modules/.bin/tsc --build)',
  );
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const kid = 'bench-key';
  const jwks: JSONWebKeySet = { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }] };
  // Tokens shaped like the auth service's: typ at+jwt, sub user uuid, tenantId, role, sid, 15 min.
  const tokens = await Promise.all(
    Array.from({ length: TOKEN_RUNS.tokens }, () =>
      new SignJWT({ tenantId: randomUUID(), role: 'user', sid: randomUUID() })
        .setProtectedHeader({ alg: 'ES256', kid, typ: 'at+jwt' })
        .setSubject(randomUUID())
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setIssuedAt()
        .setExpirationTime('15m')
        .setJti(randomUUID())
        .sign(privateKey),
    ),
  );
  const token = (i: number) => tokens[i % tokens.length]!;
  const server = await serveJwks(jwks);
  try {
    // The gateway's production configuration (services/api-gateway/src/main.ts): one remote key set for the process.
    const gatewayRemote = createRemoteJWKSet(server.url, { timeoutDuration: 3000, cooldownDuration: 30_000, cacheMaxAge: 600_000 });
    const verifiers = {
      local: createAccessTokenVerifier({ keys: createLocalJWKSet(jwks), issuer: ISSUER, audience: AUDIENCE }),
      remote: createAccessTokenVerifier({ keys: gatewayRemote, issuer: ISSUER, audience: AUDIENCE }),
    };
    const uncachedVerify = (t: string) =>
      createAccessTokenVerifier({ keys: createRemoteJWKSet(server.url, { timeoutDuration: 3000 }), issuer: ISSUER, audience: AUDIENCE })(t);

    // Warm-up: JIT, key import, the remote set's first fetch, HTTP keep-alive.
    for (let i = 0; i < TOKEN_RUNS.warmUp; i++) {
      await verifiers.local(token(i));
      await verifiers.remote(token(i));
      if (i < 30) await uncachedVerify(token(i));
    }
    const fetchesBefore = server.fetches();
    const local = summarize(await timeEach(TOKEN_RUNS.cachedVerifies, TOKEN_RUNS.budgetMs, (i) => verifiers.local(token(i))));
    const remote = summarize(await timeEach(TOKEN_RUNS.cachedVerifies, TOKEN_RUNS.budgetMs, (i) => verifiers.remote(token(i))));
    const fetchesCached = server.fetches() - fetchesBefore;
    const uncached = summarize(await timeEach(TOKEN_RUNS.uncachedVerifies, TOKEN_RUNS.budgetMs, (i) => uncachedVerify(token(i))));
    const fetchesUncached = server.fetches() - fetchesBefore - fetchesCached;

    console.log('\nAccess-token verification (gateway createAccessTokenVerifier, ES256), µs per verify');
    printRow('cached: local JWKS (createLocalJWKSet)', local, 'µs');
    printRow('cached: gateway remote JWKS, warm', remote, 'µs');
    printRow('uncached: new remote JWKS per verify', uncached, 'µs');
    console.log(`  JWKS fetches: ${fetchesCached} during the cached runs, ${fetchesUncached} during the uncached run`);
    console.log(
      `  ratio uncached/cached(local): mean ${(uncached.mean / local.mean).toFixed(1)}x, p50 ${(uncached.p50 / local.p50).toFixed(1)}x; ` +
        `gateway-remote/local: p50 ${(remote.p50 / local.p50).toFixed(2)}x`,
    );
    console.log(`  verifies per second per core (cached, local, from mean): ${fmt(1e6 / local.mean)}`);
  } finally {
    await server.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Part 2: sign-in and tenant selection through the running platform

function bodyOf(response: { status: number; body: unknown }, what: string): unknown {
  if (response.status !== 200) throw new Error(`${what} answered ${response.status}: ${JSON.stringify(response.body)}`);
  return response.body;
}

async function benchFlow(): Promise<void> {
  const platformModule = await loadCompiled<PlatformModule>('deploy/local/platform.mjs', 'the deploy scripts are part of the repository');
  const seedModule = await loadCompiled<SeedModule>('deploy/local/seed.mjs', 'the deploy scripts are part of the repository');
  const demoToolModule = await loadCompiled<DemoToolModule>('deploy/local/demo-tool.mjs', 'the deploy scripts are part of the repository');
  for (const name of platformModule.serviceNames) {
    if (!existsSync(join(root, 'services', name, 'dist/src/main.js'))) {
      throw new Error(`services/${name}/dist/src/main.js is missing: build first (node_modules/.bin/tsc --build)`);
    }
  }

  const runId = `b${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const dbPrefix = `pc_${runId}`;
  const redisKeyPrefix = `${runId}:`;
  const smsOutboxFile = join(tmpdir(), `portcullis-sms-${runId}.jsonl`);
  const logDir = join(tmpdir(), `portcullis-bench-${runId}`);
  const cleanups: (() => Promise<unknown>)[] = [];
  let cleaned = false;
  const cleanUp = async () => {
    if (cleaned) return;
    cleaned = true;
    for (const step of cleanups.reverse()) {
      await step().catch((error: unknown) => {
        console.error('cleanup step failed:', error);
      });
    }
  };
  const onSignal = () => {
    void cleanUp().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let keepLogs = true;
  try {
    cleanups.push(async () => {
      await rm(smsOutboxFile, { force: true });
      if (!keepLogs) await rm(logDir, { recursive: true, force: true });
    });
    cleanups.push(() => deleteAuditStream(runId));
    cleanups.push(async () => {
      console.log(`  cleanup: ${await deleteRedisKeysWithPrefix(redisKeyPrefix)} Redis keys deleted`);
    });
    cleanups.push(async () => {
      console.log(`  cleanup: ${await dropDatabasesWithPrefix(dbPrefix)} databases dropped`);
    });
    const tool = await demoToolModule.startDemoTool({ port: 0 });
    cleanups.push(() => tool.close());
    const ports = await freePlatformPorts();
    const env = benchPlatformEnv(platformModule, { ports, runId, dbPrefix, redisKeyPrefix, smsOutboxFile, toolUrl: tool.url, infra });
    console.log(`\nStarting the platform (run ${runId}, logs in ${logDir})…`);
    const started = performance.now();
    // startPlatform stops what it started when a service fails to become ready.
    const platform = await platformModule.startPlatform({ root, env, ports, logDir });
    cleanups.push(() => platform.stop());
    console.log(`  platform ready in ${((performance.now() - started) / 1000).toFixed(1)} s; seeding…`);
    const gatewayUrl = `http://127.0.0.1:${ports['api-gateway'].http}`;
    const password = () => `${randomBytes(12).toString('base64url')}-Pc1`;
    const passwords = { owner: password(), admin: password(), user: password(), betaOwner: password() };
    const seeded = await seedModule.seedDemo({ gatewayUrl, toolUrl: tool.url, passwords, smsOutboxFile });

    // The plain member of the demo tenant signs in and selects it, again and again.
    const email = seedModule.demo.accounts.user;
    const login = async () => {
      const response = await seedModule.httpJson(gatewayUrl, 'POST', '/api/auth/login', { body: { email, password: passwords.user } });
      return (bodyOf(response, 'login') as { loginTicket: string }).loginTicket;
    };
    const selectTenant = async (loginTicket: string) => {
      const response = await seedModule.httpJson(gatewayUrl, 'POST', '/api/auth/select-tenant', {
        body: { loginTicket, tenantId: seeded.tenantId },
      });
      return (bodyOf(response, 'select-tenant') as { accessToken: string }).accessToken;
    };
    for (let i = 0; i < FLOW_RUNS.warmUp; i++) await selectTenant(await login());

    const loginUs: number[] = [];
    const selectUs: number[] = [];
    const deadline = performance.now() + FLOW_RUNS.budgetMs;
    for (let i = 0; i < FLOW_RUNS.rounds && performance.now() < deadline; i++) {
      let start = performance.now();
      const ticket = await login();
      loginUs.push((performance.now() - start) * 1000);
      start = performance.now();
      await selectTenant(ticket);
      selectUs.push((performance.now() - start) * 1000);
    }
    const ms = (s: Summary): Summary => ({ n: s.n, mean: s.mean / 1000, p50: s.p50 / 1000, p99: s.p99 / 1000, max: s.max / 1000 });
    const loginMs = ms(summarize(loginUs));
    const selectMs = ms(summarize(selectUs));
    console.log('\nSign-in through the gateway (HTTP on 127.0.0.1, sequential), ms per request');
    printRow('POST /api/auth/login (argon2id verify)', loginMs, 'ms');
    printRow('POST /api/auth/select-tenant', selectMs, 'ms');
    console.log(
      `  ratio login/select-tenant: p50 ${(loginMs.p50 / selectMs.p50).toFixed(1)}x; full sign-in (login + select) p50 ≈ ${fmt(loginMs.p50 + selectMs.p50)} ms`,
    );
    keepLogs = false;
  } finally {
    console.log('\nStopping the platform and removing the run’s data…');
    await cleanUp();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

// ---------------------------------------------------------------------------------------------

const part = process.argv[2] ?? 'all';
if (!['all', 'tokens', 'flow'].includes(part)) {
  console.error('usage: node test/dist/bench/auth-tokens.bench.js [all|tokens|flow]');
  process.exit(2);
}
const cpu = cpus();
console.log(`Portcullis auth benchmark — ${new Date().toISOString()}, node ${process.version}, ${cpu.length} × ${cpu[0]?.model ?? 'cpu'}`);
if (part !== 'flow') await benchTokens();
if (part !== 'tokens') await benchFlow();
