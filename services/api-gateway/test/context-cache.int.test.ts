import { create } from '@bufbuild/protobuf';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  AppError,
  connectNats,
  createLogger,
  subscribeTenantChanges,
  tenantChangeHeader,
  tenantChangedSubject,
  tracedHeaders,
  type NatsConnection,
} from '@portcullis/kit';
import { TenantStatus } from '@portcullis/proto/common';
import { ResolveContextResponseSchema } from '@portcullis/proto/tenant';
import { infra, pollUntil, testRunId } from '@portcullis/test';
import { Redis } from 'ioredis';
import { createContextCache, type ContextCache, type ResolveContextCall } from '../src/libraries/context-cache.js';

const logger = createLogger({ name: 'context-cache-int', level: 'silent' });
const keyPrefix = `${testRunId}:`;
/** "Within one second": how long every replica may take to answer the new truth after a change notice. */
const withinOneSecond = { timeoutMs: 1_000, intervalMs: 20 };

/** The registry's truth, changed by the tests, answered like tenant-registry answers ResolveContext. */
function fakeRegistry() {
  const tenants = new Map<string, { name: string; suspended: boolean }>();
  const assistants = new Map<string, string>();
  const hosts = new Map<string, string>();
  const calls: string[] = [];
  const resolveContext: ResolveContextCall = async ({ host = '', assistantId = '', tenantId = '' }) => {
    calls.push(assistantId || tenantId || host);
    const assistant = assistantId || (tenantId ? '' : hosts.get(host.toLowerCase()));
    const owner = assistant ? assistants.get(assistant) : tenantId;
    const tenant = owner === undefined ? undefined : tenants.get(owner);
    if (owner === undefined || !tenant) throw new AppError('NOT_FOUND', 'no tenant is configured for this host');
    if (tenant.suspended) throw new AppError('TENANT_SUSPENDED', 'tenant is suspended');
    return create(ResolveContextResponseSchema, {
      context: { tenantId: owner, tenantName: tenant.name, tenantStatus: TenantStatus.ACTIVE, assistantId: assistant ?? '' },
    });
  };
  return { tenants, assistants, hosts, calls, resolveContext };
}

/**
 * One gateway replica: its own NATS connection, Redis client and in-process cache. The Redis
 * client is configured as main.ts configures it (no offline queue); `redisReachable: false`
 * leaves it unconnected, where every command fails at once as it does while Redis is down.
 */
async function startReplica(registry: { resolveContext: ResolveContextCall }, { redisReachable = true } = {}) {
  const nc = await connectNats({ servers: infra.natsUrl, name: 'gateway-replica-test', logger });
  const redis = new Redis(infra.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true });
  if (redisReachable) await redis.connect();
  const cache = createContextCache({
    registry,
    store: redis,
    keyPrefix,
    // Long TTLs: in these tests only the change notices may make a replica see a change.
    localTtlMs: 600_000,
    remoteTtlMs: 600_000,
    refusalTtlMs: 600_000,
    maxEntries: 1_000,
    logger,
  });
  const unsubscribe = subscribeTenantChanges({
    nc,
    subjectPrefix: testRunId,
    logger,
    onChange: ({ tenantId }) => void cache.invalidate(tenantId),
  });
  await nc.flush();
  return {
    cache,
    async stop() {
      unsubscribe();
      await nc.drain();
      redis.disconnect();
    },
  };
}

describe('context cache across two gateway replicas with real Redis and NATS', () => {
  const registry = fakeRegistry();
  let publisher: NatsConnection;
  let replicas: { cache: ContextCache; stop(): Promise<void> }[];
  let redis: Redis;

  beforeAll(async () => {
    publisher = await connectNats({ servers: infra.natsUrl, name: 'tenant-registry-stand-in', logger });
    redis = new Redis(infra.redisUrl);
    replicas = [await startReplica(registry), await startReplica(registry)];
  });

  afterAll(async () => {
    await Promise.all(replicas.map((replica) => replica.stop()));
    await publisher.drain();
    const keys = await redis.keys(`${keyPrefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  /** What tenant-registry publishes after a committed change. */
  const announce = (tenantId: string, change: string) =>
    publisher.publish(tenantChangedSubject(testRunId), tenantId, { headers: tracedHeaders({ [tenantChangeHeader]: change }) });

  /** A tenant with two assistants and a host routed to the first. */
  function newTenant(name: string) {
    const tenantId = randomUUID();
    const first = randomUUID();
    const second = randomUUID();
    const host = `${name.toLowerCase()}.${testRunId}.example`;
    registry.tenants.set(tenantId, { name, suspended: false });
    registry.assistants.set(first, tenantId).set(second, tenantId);
    registry.hosts.set(host, first);
    return { tenantId, first, second, host };
  }

  const answerOf = (cache: ContextCache, request: { host?: string; assistantId?: string; tenantId?: string }) =>
    cache.resolveContext(request).then(
      ({ context }) => (context?.assistantId ? context.assistantId : context?.tenantId),
      (error: unknown) => (error instanceof AppError ? error.code : 'unexpected error'),
    );

  /** Every replica gives `expected` for the request — polled, within one second. */
  const everyReplicaAnswers = (request: { host?: string; assistantId?: string; tenantId?: string }, expected: string) =>
    pollUntil(
      async () => {
        const answers = await Promise.all(replicas.map(({ cache }) => answerOf(cache, request)));
        return answers.every((answer) => answer === expected) ? answers : undefined;
      },
      { ...withinOneSecond, what: `every replica answering ${expected}` },
    );

  it('shares an answer through Redis: the second replica does not ask the registry again', async () => {
    const t = newTenant('Shared');
    const [a, b] = replicas;
    expect(await answerOf(a!.cache, { host: t.host })).toBe(t.first);
    expect(await answerOf(b!.cache, { host: t.host })).toBe(t.first);
    expect(registry.calls.filter((call) => call === t.host)).toHaveLength(1);
  });

  it('moves a domain: both replicas route the host to the new assistant within one second of the notice', async () => {
    const t = newTenant('Moving');
    await everyReplicaAnswers({ host: t.host }, t.first);
    registry.hosts.set(t.host, t.second);
    // Without a notice, nothing changes: the long TTLs keep the old answer.
    expect(await answerOf(replicas[0]!.cache, { host: t.host })).toBe(t.first);

    announce(t.tenantId, 'domain.moved');
    await everyReplicaAnswers({ host: t.host }, t.second);
  });

  it('suspends a tenant: both replicas refuse it by host, assistant and tenant id within one second; reactivated, both serve it again', async () => {
    const t = newTenant('Suspended');
    const other = newTenant('Bystander');
    const lookups = [{ host: t.host }, { assistantId: t.first }, { tenantId: t.tenantId }];
    for (const request of lookups) await everyReplicaAnswers(request, request.tenantId ?? t.first);
    await everyReplicaAnswers({ host: other.host }, other.first);

    registry.tenants.set(t.tenantId, { name: 'Suspended', suspended: true });
    announce(t.tenantId, 'tenant.status.changed');
    for (const request of lookups) await everyReplicaAnswers(request, 'TENANT_SUSPENDED');
    // The refusal is remembered: asking again does not reach the registry.
    const calls = registry.calls.length;
    for (const request of lookups) await everyReplicaAnswers(request, 'TENANT_SUSPENDED');
    expect(registry.calls).toHaveLength(calls);

    registry.tenants.set(t.tenantId, { name: 'Suspended', suspended: false });
    announce(t.tenantId, 'tenant.status.changed');
    for (const request of lookups) await everyReplicaAnswers(request, request.tenantId ?? t.first);
    await everyReplicaAnswers({ host: other.host }, other.first);
  });

  it('forgets a remembered NOT_FOUND when a tenant adds the host', async () => {
    const t = newTenant('Growing');
    const host = `new.${t.host}`;
    await everyReplicaAnswers({ host }, 'NOT_FOUND');
    registry.hosts.set(host, t.second);
    announce(t.tenantId, 'domain.added');
    await everyReplicaAnswers({ host }, t.second);
  });

  it('answers from the registry when Redis is unreachable', async () => {
    const t = newTenant('Redisless');
    const isolated = await startReplica(registry, { redisReachable: false });
    try {
      expect(await answerOf(isolated.cache, { host: t.host })).toBe(t.first);
      registry.hosts.set(t.host, t.second);
      announce(t.tenantId, 'domain.moved');
      await pollUntil(async () => ((await answerOf(isolated.cache, { host: t.host })) === t.second ? true : undefined), {
        ...withinOneSecond,
        what: 'the new assistant without Redis',
      });
    } finally {
      await isolated.stop();
    }
  });
});
