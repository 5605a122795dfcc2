// End-to-end harness: the whole platform, spawned the way the local bring-up spawns it,
// on free ports, with databases, Redis keys and NATS subjects of this test run only.
import { afterAll, beforeAll } from '@jest/globals';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { createServiceIdentity } from '@portcullis/kit';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDemoTool } from '../../deploy/local/demo-tool.mjs';
import {
  generateServiceKeys,
  type operatorName,
  type auditorName,
  platformEnv,
  startPlatform,
  startService,
  type Platform,
  type PlatformOAuth,
  type RunningService,
  type ServiceName,
} from '../../deploy/local/platform.mjs';
import { demo, seedDemo, signIn } from '../../deploy/local/seed.mjs';
import { infra, pollUntil, testRunId } from './infra.js';
import { startDnsServer } from './dns-server.js';
import { startOtlpReceiver } from './otlp-receiver.js';
import { freePort } from './ports.js';
import { deleteAuditStream, deleteRedisKeysWithPrefix, dropDatabasesWithPrefix, freePlatformPorts } from './run-resources.js';
import { unreachableRateLimits } from './rate-limits.js';

const root = new URL('../..', import.meta.url).pathname;

export interface TestPlatformOptions {
  /**
   * Google/GitHub sign-in: called with the gateway URL (known only once ports are chosen) before
   * anything starts, so the test can start its providers with the right callback URLs.
   */
  oauth?: (gatewayUrl: string) => Promise<PlatformOAuth>;
  /** The Redis every service of this platform uses instead of the shared one (e.g. a private one a fault test stops). */
  redisUrl?: string;
  /** The NATS every service of this platform uses instead of the shared one (e.g. a private one a fault test stops). */
  natsUrl?: string;
  /** More environment for some services (e.g. smaller audit spool bounds), over the platform's own. */
  extraEnv?: Partial<Record<ServiceName, Record<string, string>>>;
  /**
   * The gateway's RATE_LIMITS. By default every limit is set out of the tests' reach — all of a
   * run's requests come from 127.0.0.1 and a few accounts — while still counted at every request;
   * the rate-limit tests give their own.
   */
  rateLimits?: object;
}

export { unreachableRateLimits };

export async function startTestPlatform(options: TestPlatformOptions = {}) {
  const otlp = await startOtlpReceiver();
  const dns = await startDnsServer();
  const tool = await startDemoTool({ port: 0 });
  const ports = await freePlatformPorts();
  const oauth = options.oauth ? await options.oauth(`http://127.0.0.1:${ports['api-gateway'].http}`) : undefined;
  const dbPrefix = `pc_${testRunId}`;
  const smsOutboxFile = join(tmpdir(), `portcullis-sms-${testRunId}.jsonl`);
  const serviceKeys = generateServiceKeys();
  /** Each service spools audit events under `<auditSpoolDir>/<service>`, beside the run's logs. */
  const auditSpoolDir = join(tmpdir(), `portcullis-e2e-${testRunId}`, 'audit-spool');
  const env = platformEnv({
    serviceKeys,
    dnsServers: [dns.address],
    ports,
    pgAdminUrl: infra.postgresAdminUrl,
    dbPrefix,
    redisUrl: options.redisUrl ?? infra.redisUrl,
    rateLimits: options.rateLimits ?? unreachableRateLimits,
    redisKeyPrefix: `${testRunId}:`,
    natsUrl: options.natsUrl ?? infra.natsUrl,
    natsSubjectPrefix: testRunId,
    auditSpoolDir,
    signingKeySecret: randomBytes(32).toString('base64'),
    activationCodeSecret: randomBytes(32).toString('base64'),
    smsOutboxFile,
    // The demo tool on loopback is the one private endpoint the tool gateway may call.
    allowedToolTargets: [`127.0.0.1:${new URL(tool.url).port || '80'}`],
    otlpEndpoint: otlp.endpoint,
    logLevel: 'info',
    // Chains are checkpointed every half second, so tests see signed checkpoints without waiting a minute.
    extra: { ...options.extraEnv, audit: { AUDIT_CHECKPOINT_INTERVAL_MS: '500', ...options.extraEnv?.audit } },
    ...(oauth ? { oauth } : {}),
  });
  const logDir = join(tmpdir(), `portcullis-e2e-${testRunId}`);
  /** Releases what start-up made when it fails half-way, so no process outlives the test run. */
  const abandon = async (error: unknown, started?: Platform): Promise<never> => {
    await started?.stop().catch(() => undefined);
    await tool.close().catch(() => undefined);
    await otlp.close().catch(() => undefined);
    await dns.close().catch(() => undefined);
    throw error;
  };
  const platform: Platform = await startPlatform({ root, env, ports, logDir }).catch((error: unknown) => abandon(error));
  const gatewayUrl = `http://127.0.0.1:${ports['api-gateway'].http}`;
  const password = () => `${randomBytes(12).toString('base64url')}-Pc1`;
  const passwords = { owner: password(), admin: password(), user: password(), betaOwner: password() };
  const seeded = await seedDemo({ gatewayUrl, toolUrl: tool.url, passwords, smsOutboxFile }).catch((error: unknown) =>
    abandon(error, platform),
  );
  const gatewayReplicas: RunningService[] = [];

  return {
    gatewayUrl,
    ports,
    otlp,
    tool,
    /** The DNS server tenant-registry asks for domain ownership records: `dns.publishTxt(name, value)`. */
    dns,
    seeded,
    passwords,
    logDir,
    /** The services' audit spools: `<auditSpoolDir>/<service>` (AUDIT_SPOOL_DIR). */
    auditSpoolDir,
    /** NATS_SUBJECT_PREFIX of every service of this run (robots publish on `<prefix>.robots.<tenant>.<robot>.events`). */
    natsSubjectPrefix: testRunId,
    /**
     * The service identities of this run (every service's, the operator's, `platform-ops`, and the
     * platform auditor's, `platform-auditor`),
     * as trusted by the services: to call gRPC as a given service would, e.g. the operator for the
     * platform-operation RPCs (tenant status, plan) that have no gateway route.
     */
    identityOf: (name: ServiceName | typeof operatorName | typeof auditorName) =>
      createServiceIdentity({ name, privateKey: createPrivateKey(serviceKeys.privateKeys[name] ?? ''), trust: new Map() }),
    /** The development SMS outbox the auth service writes phone codes to. */
    smsOutboxFile,
    /** Stops one service (e.g. to prove the gateway fails closed without it). */
    stopService: (name: ServiceName) => platform.services[name].stop(),
    /** Starts a stopped service again with the same configuration. */
    restartService(name: ServiceName) {
      platform.services[name] = startService({ root, name, env: env[name], logDir });
    },
    /**
     * Starts one more api-gateway process — a second replica with the same configuration (same
     * Redis, NATS and services, plus `extraEnv`) on its own ports — and waits until it is ready.
     * Stopped with the platform. `url` is plain http; a replica given TLS settings serves https there.
     */
    async startGatewayReplica(extraEnv: Record<string, string> = {}) {
      const http = await freePort();
      const admin = await freePort();
      const replicaEnv = { ...env['api-gateway'], ...extraEnv, HTTP_PORT: String(http), ADMIN_PORT: String(admin) };
      const replica = startService({ root, name: 'api-gateway', env: replicaEnv, logDir: join(logDir, `api-gateway-${http}`) });
      gatewayReplicas.push(replica);
      await pollUntil(
        async () => {
          const exitCode = replica.child.exitCode;
          if (exitCode !== null) throw new Error(`gateway replica exited with ${exitCode}; see ${replica.logFile}`);
          const response = await fetch(`http://127.0.0.1:${admin}/readyz`, { signal: AbortSignal.timeout(1_000) });
          return response.ok ? true : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 150, what: 'the gateway replica to be ready' },
      );
      return { url: `http://127.0.0.1:${http}`, stop: () => replica.stop() };
    },
    async stop() {
      await Promise.all(gatewayReplicas.map((replica) => replica.stop()));
      await platform.stop();
      await tool.close();
      await otlp.close();
      await dns.close();
      await dropDatabasesWithPrefix(dbPrefix);
      await rm(smsOutboxFile, { force: true });
      await deleteAuditStream(testRunId);
      await deleteRedisKeysWithPrefix(`${testRunId}:`);
    },
  };
}

export type TestPlatform = Awaited<ReturnType<typeof startTestPlatform>>;

/** Access tokens of the seeded accounts: Alpha Corp's owner, admin and user, and Beta Labs' owner. */
export async function signInDemoAccounts({ gatewayUrl, passwords, seeded }: Pick<TestPlatform, 'gatewayUrl' | 'passwords' | 'seeded'>) {
  return {
    owner: await signIn(gatewayUrl, demo.accounts.owner, passwords.owner, seeded.tenantId),
    admin: await signIn(gatewayUrl, demo.accounts.admin, passwords.admin, seeded.tenantId),
    user: await signIn(gatewayUrl, demo.accounts.user, passwords.user, seeded.tenantId),
    betaOwner: await signIn(gatewayUrl, demo.accounts.betaOwner, passwords.betaOwner, seeded.beta.tenantId),
  };
}

/**
 * For a describe block: starts a platform (and signs in the demo accounts) before its tests and
 * stops it after them. `run.platform` and `run.tokens` are there once the tests run.
 */
export function useDemoPlatform(options: TestPlatformOptions = {}) {
  const run = {} as { platform: TestPlatform; tokens: Awaited<ReturnType<typeof signInDemoAccounts>> };
  beforeAll(async () => {
    run.platform = await startTestPlatform(options);
    run.tokens = await signInDemoAccounts(run.platform);
  }, 180_000);
  afterAll(async () => {
    // beforeAll may have failed before the platform existed.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
    await run.platform?.stop();
  }, 60_000);
  return run;
}

/** An audit event as `GET /api/audit/events` lists it (the fields the end-to-end tests read). */
export interface ListedAuditEvent {
  kind: string;
  outcome: string;
  reason: string;
  object: string;
  action: string;
  traceId: string;
  requestId: string;
  principal: { id: string } | null;
}
