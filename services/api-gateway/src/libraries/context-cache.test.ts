import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from '@jest/globals';
import { AppError, createLogger } from '@portcullis/kit';
import { TenantStatus } from '@portcullis/proto/common';
import { AddDomainResponseSchema, VerifyDomainResponseSchema, ResolveContextResponseSchema } from '@portcullis/proto/tenant';
import {
  createContextCache,
  invalidatingContextWrites,
  lookupKeyOf,
  type ContextCacheStore,
  type ResolveContextCall,
} from './context-cache.js';

const tenantA = '00000000-0000-4000-8000-00000000000a';
const tenantB = '00000000-0000-4000-8000-00000000000b';
const assistantA1 = '00000000-0000-4000-8000-0000000000a1';
const assistantA2 = '00000000-0000-4000-8000-0000000000a2';
const assistantB1 = '00000000-0000-4000-8000-0000000000b1';
const unknownAssistant = '00000000-0000-4000-8000-0000000000ff';

const logger = createLogger({ name: 'context-cache-test', level: 'silent' });
const localTtlMs = 5_000;
const remoteTtlMs = 60_000;
const refusalTtlMs = 2_000;

/** A clock the test moves by hand. */
function fakeClock() {
  let at = 1_000_000;
  return { now: () => at, advance: (ms: number) => (at += ms) };
}

/** Redis as a map with expiry on the fake clock; `failing` makes every command throw like an unreachable server. */
function fakeRedis(now: () => number) {
  const data = new Map<string, { value: string; expiresAt: number }>();
  const read = (key: string) => {
    const item = data.get(key);
    if (!item) return null;
    if (item.expiresAt <= now()) {
      data.delete(key);
      return null;
    }
    return item.value;
  };
  const redis = {
    data,
    failing: false,
    failIncr: false,
    commands: 0,
    check() {
      redis.commands += 1;
      if (redis.failing) throw new Error("Stream isn't writeable and enableOfflineQueue options is false");
    },
    async mget(...keys: string[]) {
      redis.check();
      return keys.map(read);
    },
    async set(key: string, value: string, _mode: 'PX', ttlMs: number) {
      redis.check();
      data.set(key, { value, expiresAt: now() + ttlMs });
      return 'OK';
    },
    async incr(key: string) {
      redis.check();
      if (redis.failIncr) throw new Error('READONLY You cannot write against a read only replica.');
      const next = Number(read(key) ?? '0') + 1;
      data.set(key, { value: String(next), expiresAt: Number.POSITIVE_INFINITY });
      return next;
    },
  } satisfies ContextCacheStore & Record<string, unknown>;
  return redis;
}

/**
 * A fake tenant-registry: the truth, changed by the test, and every call made. `down` answers
 * DEPENDENCY_UNAVAILABLE; `hold` keeps the next answers pending until released.
 */
function fakeRegistry() {
  const world = {
    tenants: new Map([
      [tenantA, { name: 'Alpha', suspended: false }],
      [tenantB, { name: 'Beta', suspended: false }],
    ]),
    assistants: new Map([
      [assistantA1, tenantA],
      [assistantA2, tenantA],
      [assistantB1, tenantB],
    ]),
    hosts: new Map([
      ['chat.alpha.example', assistantA1],
      ['beta.example', assistantB1],
    ]),
  };
  const calls: string[] = [];
  const state = { down: false, held: [] as (() => void)[], holding: false };

  function answer(tenantId: string | undefined, assistantId: string, what: string) {
    const tenant = tenantId === undefined ? undefined : world.tenants.get(tenantId);
    if (tenantId === undefined || !tenant) throw new AppError('NOT_FOUND', `no tenant is configured for this ${what}`);
    if (tenant.suspended) throw new AppError('TENANT_SUSPENDED', 'tenant is suspended');
    return create(ResolveContextResponseSchema, {
      context: { tenantId, tenantName: tenant.name, tenantStatus: TenantStatus.ACTIVE, assistantId },
    });
  }

  const resolveContext: ResolveContextCall = async (request) => {
    const { host = '', assistantId = '', tenantId = '' } = request;
    calls.push(assistantId || tenantId || host);
    // Read the truth now, answer later when held: the answer predates whatever changes meanwhile.
    let outcome: () => ReturnType<typeof answer>;
    try {
      const value = (() => {
        if (state.down) throw new AppError('DEPENDENCY_UNAVAILABLE', 'a required service is unavailable');
        if (assistantId) return answer(world.assistants.get(assistantId), assistantId, 'assistant');
        if (tenantId) return answer(world.tenants.has(tenantId) ? tenantId : undefined, '', 'tenant');
        if (!/^[a-z0-9.-]+(:\d+)?$/i.test(host.trim())) throw new AppError('INVALID_ARGUMENT', 'host must be a valid DNS name');
        const canonical = host.trim().toLowerCase().replace(/:\d+$/, '');
        const assistant = world.hosts.get(canonical);
        return answer(assistant === undefined ? undefined : world.assistants.get(assistant), assistant ?? '', 'host');
      })();
      outcome = () => value;
    } catch (error) {
      outcome = () => {
        throw error;
      };
    }
    if (state.holding) await new Promise<void>((release) => state.held.push(release));
    return outcome();
  };
  return {
    world,
    calls,
    state,
    resolveContext,
    release() {
      state.holding = false;
      for (const release of state.held.splice(0)) release();
    },
  };
}

function setup({ maxEntries = 100 } = {}) {
  const clock = fakeClock();
  const redis = fakeRedis(clock.now);
  const registry = fakeRegistry();
  /** A gateway replica: its own in-process level, the shared Redis and registry. */
  const replica = () =>
    createContextCache({
      registry,
      store: redis,
      keyPrefix: 'test:',
      localTtlMs,
      remoteTtlMs,
      refusalTtlMs,
      maxEntries,
      logger,
      now: clock.now,
    });
  return { clock, redis, registry, replica, cache: replica() };
}

/** The error a lookup throws, or undefined when it resolves. */
const refusalOf = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error,
  );

describe('lookup keys', () => {
  it('follows the registry: assistant id first, then tenant id, then the canonical host', () => {
    expect(lookupKeyOf({ host: 'chat.alpha.example', assistantId: assistantA1.toUpperCase(), tenantId: tenantB })).toBe(
      `assistant:${assistantA1}`,
    );
    expect(lookupKeyOf({ host: 'chat.alpha.example', tenantId: tenantB })).toBe(`tenant:${tenantB}`);
    expect(lookupKeyOf({ host: ' CHAT.Alpha.example.:8443 ' })).toBe('host:chat.alpha.example');
  });

  it('caches nothing malformed: such lookups go to the registry as they are', () => {
    for (const request of [
      { assistantId: 'not-a-uuid' },
      { tenantId: 'x' },
      { host: '' },
      { host: 'a.example:70000' },
      { host: 'bad host' },
      { host: 'x'.repeat(254) },
      { host: '[::1]' },
    ]) {
      expect(lookupKeyOf(request)).toBeUndefined();
    }
  });
});

describe('context cache', () => {
  it('asks the registry once, then answers from memory', async () => {
    const { cache, registry } = setup();
    const first = await cache.resolveContext({ host: 'chat.alpha.example' });
    const second = await cache.resolveContext({ host: 'Chat.Alpha.Example:443' });
    expect(second.context).toMatchObject({
      tenantId: tenantA,
      tenantName: 'Alpha',
      tenantStatus: TenantStatus.ACTIVE,
      assistantId: assistantA1,
    });
    expect(second.context).toEqual(first.context);
    expect(registry.calls).toEqual(['chat.alpha.example']);
  });

  it('shares answers between replicas through Redis', async () => {
    const { cache, replica, registry } = setup();
    await cache.resolveContext({ assistantId: assistantA1 });
    const other = replica();
    const { context } = await other.resolveContext({ assistantId: assistantA1 });
    expect(context).toMatchObject({ tenantId: tenantA, assistantId: assistantA1 });
    expect(registry.calls).toHaveLength(1);
  });

  it("drops only the changed tenant's entries on a notice", async () => {
    const { cache, registry } = setup();
    await cache.resolveContext({ assistantId: assistantA1 });
    await cache.resolveContext({ tenantId: tenantA });
    await cache.resolveContext({ assistantId: assistantB1 });
    expect(cache.size()).toBe(3);
    registry.world.tenants.set(tenantA, { name: 'Alpha Renamed', suspended: false });

    await cache.invalidate(tenantA);
    expect(cache.size()).toBe(1);
    expect((await cache.resolveContext({ assistantId: assistantA1 })).context?.tenantName).toBe('Alpha Renamed');
    expect((await cache.resolveContext({ tenantId: tenantA })).context?.tenantName).toBe('Alpha Renamed');
    await cache.resolveContext({ assistantId: assistantB1 });
    expect(registry.calls).toEqual([assistantA1, tenantA, assistantB1, assistantA1, tenantA]);
  });

  it("retires a tenant's Redis entries for every replica with one generation bump", async () => {
    const { cache, replica, registry, redis } = setup();
    await cache.resolveContext({ host: 'chat.alpha.example' });
    await cache.resolveContext({ host: 'beta.example' });
    registry.world.hosts.set('chat.alpha.example', assistantA2);
    await cache.invalidate(tenantA);
    expect(redis.data.get('test:context-generation:' + tenantA)?.value).toBe('1');

    // A replica that never held anything in memory: Alpha's entry is retired, Beta's is not.
    const other = replica();
    expect((await other.resolveContext({ host: 'chat.alpha.example' })).context?.assistantId).toBe(assistantA2);
    expect((await other.resolveContext({ host: 'beta.example' })).context?.assistantId).toBe(assistantB1);
    expect(registry.calls).toEqual(['chat.alpha.example', 'beta.example', 'chat.alpha.example']);
  });

  it('bounds staleness by the in-process TTL, then the Redis TTL, when notices are missed', async () => {
    const { cache, registry, clock } = setup();
    await cache.resolveContext({ assistantId: assistantA1 });
    registry.world.tenants.set(tenantA, { name: 'Changed', suspended: false });

    clock.advance(localTtlMs - 1);
    expect((await cache.resolveContext({ assistantId: assistantA1 })).context?.tenantName).toBe('Alpha');
    clock.advance(1);
    // Out of memory, but Redis still holds it (no notice was ever heard).
    expect((await cache.resolveContext({ assistantId: assistantA1 })).context?.tenantName).toBe('Alpha');
    expect(registry.calls).toHaveLength(1);
    clock.advance(remoteTtlMs);
    expect((await cache.resolveContext({ assistantId: assistantA1 })).context?.tenantName).toBe('Changed');
    expect(registry.calls).toHaveLength(2);
  });

  it('remembers NOT_FOUND briefly, and forgets it at any tenant change (the host may just have been added)', async () => {
    const { cache, registry, clock } = setup();
    const ask = () => refusalOf(cache.resolveContext({ host: 'new.alpha.example' }));
    expect(await ask()).toMatchObject({ code: 'NOT_FOUND', message: 'no tenant is configured for this host' });
    expect(await ask()).toMatchObject({ code: 'NOT_FOUND' });
    expect(registry.calls).toHaveLength(1);
    clock.advance(refusalTtlMs);
    expect(await ask()).toMatchObject({ code: 'NOT_FOUND' });
    expect(registry.calls).toHaveLength(2);

    registry.world.hosts.set('new.alpha.example', assistantA2);
    await cache.invalidate(tenantA);
    await expect(cache.resolveContext({ host: 'new.alpha.example' })).resolves.toMatchObject({ context: { assistantId: assistantA2 } });
  });

  it('refuses a suspended tenant from the cache, without its data, and serves it again once reactivated', async () => {
    const { cache, replica, registry } = setup();
    await cache.resolveContext({ host: 'chat.alpha.example' });
    registry.world.tenants.set(tenantA, { name: 'Alpha', suspended: true });
    await cache.invalidate(tenantA);

    for (const request of [{ host: 'chat.alpha.example' }, { assistantId: assistantA1 }, { tenantId: tenantA }]) {
      const error = await refusalOf(cache.resolveContext(request));
      expect(error).toBeInstanceOf(AppError);
      expect(error).toMatchObject({ code: 'TENANT_SUSPENDED', message: 'tenant is suspended', details: undefined });
    }
    const calls = registry.calls.length;
    // Remembered here and, through Redis, by another replica.
    expect(await refusalOf(cache.resolveContext({ tenantId: tenantA }))).toMatchObject({ code: 'TENANT_SUSPENDED' });
    const other = replica();
    expect(await refusalOf(other.resolveContext({ assistantId: assistantA1 }))).toMatchObject({ code: 'TENANT_SUSPENDED' });
    expect(registry.calls).toHaveLength(calls);

    registry.world.tenants.set(tenantA, { name: 'Alpha', suspended: false });
    await cache.invalidate(tenantA);
    await other.invalidate(tenantA);
    for (const c of [cache, other]) {
      await expect(c.resolveContext({ host: 'chat.alpha.example' })).resolves.toMatchObject({ context: { tenantId: tenantA } });
      await expect(c.resolveContext({ tenantId: tenantA })).resolves.toMatchObject({ context: { tenantId: tenantA } });
    }
  });

  it('never caches a failure: the registry is asked again and its error passed on', async () => {
    const { cache, registry } = setup();
    registry.state.down = true;
    expect(await refusalOf(cache.resolveContext({ assistantId: assistantA1 }))).toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    registry.state.down = false;
    await expect(cache.resolveContext({ assistantId: assistantA1 })).resolves.toMatchObject({ context: { tenantId: tenantA } });
    expect(await refusalOf(cache.resolveContext({ host: 'bad host' }))).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await refusalOf(cache.resolveContext({ host: 'bad host' }))).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(registry.calls).toEqual([assistantA1, assistantA1, 'bad host', 'bad host']);
  });

  it('falls back to the registry while Redis is down, never failing and never older than the in-process TTL', async () => {
    const { cache, registry, redis, clock } = setup();
    redis.failing = true;
    await expect(cache.resolveContext({ assistantId: assistantA1 })).resolves.toMatchObject({ context: { tenantName: 'Alpha' } });
    await cache.resolveContext({ assistantId: assistantA1 });
    expect(registry.calls).toHaveLength(1);
    registry.world.tenants.set(tenantA, { name: 'Changed', suspended: false });
    // The notice's Redis half fails; the in-process half still applies.
    await cache.invalidate(tenantA);
    await expect(cache.resolveContext({ assistantId: assistantA1 })).resolves.toMatchObject({ context: { tenantName: 'Changed' } });
    clock.advance(localTtlMs);
    await cache.resolveContext({ assistantId: assistantA1 });
    expect(registry.calls).toHaveLength(3);

    registry.state.down = true;
    clock.advance(localTtlMs);
    expect(await refusalOf(cache.resolveContext({ assistantId: assistantA1 }))).toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
  });

  it('ignores Redis for one Redis TTL after failing to retire entries there', async () => {
    const { cache, replica, registry, redis, clock } = setup();
    await cache.resolveContext({ assistantId: assistantA1 });
    registry.world.tenants.set(tenantA, { name: 'Changed', suspended: false });
    redis.failIncr = true;
    await cache.invalidate(tenantA);
    redis.failIncr = false;

    // Redis still holds the old answer, unretired: this replica must not read it.
    expect((await cache.resolveContext({ assistantId: assistantA1 })).context?.tenantName).toBe('Changed');
    clock.advance(localTtlMs);
    expect((await cache.resolveContext({ assistantId: assistantA1 })).context?.tenantName).toBe('Changed');
    expect(registry.calls).toHaveLength(3);
    // (A replica whose INCR had worked would have retired it; this one shows what was left.)
    expect((await replica().resolveContext({ assistantId: assistantA1 })).context?.tenantName).toBe('Alpha');

    clock.advance(remoteTtlMs);
    const commands = redis.commands;
    await cache.resolveContext({ assistantId: assistantA1 });
    expect(redis.commands).toBeGreaterThan(commands);
  });

  it('keeps no answer that was in flight while a notice arrived, in memory or in Redis', async () => {
    const { cache, replica, registry, redis } = setup();
    registry.state.holding = true;
    const inFlight = cache.resolveContext({ host: 'chat.alpha.example' });
    await new Promise((resolve) => setImmediate(resolve));
    // The registry has read the old truth; the change commits and its notice arrives before the answer.
    registry.world.hosts.set('chat.alpha.example', assistantA2);
    await cache.invalidate(tenantA);
    registry.release();
    expect((await inFlight).context?.assistantId).toBe(assistantA1);

    expect([...redis.data.keys()].filter((key) => key.startsWith('test:context:'))).toEqual([]);
    expect((await cache.resolveContext({ host: 'chat.alpha.example' })).context?.assistantId).toBe(assistantA2);
    expect((await replica().resolveContext({ host: 'chat.alpha.example' })).context?.assistantId).toBe(assistantA2);
  });

  it('retires a Redis entry written just before a notice another replica handled', async () => {
    const { cache, replica, registry } = setup();
    const other = replica();
    await cache.resolveContext({ host: 'chat.alpha.example' });
    registry.world.hosts.set('chat.alpha.example', assistantA2);
    // Only the other replica has heard the notice so far; it bumps the shared generations.
    await other.invalidate(tenantA);
    expect((await other.resolveContext({ host: 'chat.alpha.example' })).context?.assistantId).toBe(assistantA2);
    expect((await replica().resolveContext({ host: 'chat.alpha.example' })).context?.assistantId).toBe(assistantA2);
  });

  it('ignores Redis content it did not write', async () => {
    const { cache, registry, redis } = setup();
    const forged = { tag: tenantB, generation: '0', answer: { kind: 'context', tenantId: tenantA, tenantName: 'Forged', assistantId: '' } };
    for (const value of ['not json', '{}', JSON.stringify(forged), JSON.stringify({ ...forged, tag: '*' })]) {
      redis.data.set(`test:context:tenant:${tenantA}`, { value, expiresAt: Number.POSITIVE_INFINITY });
      cache.reset();
      expect((await cache.resolveContext({ tenantId: tenantA })).context?.tenantName).toBe('Alpha');
    }
    expect(registry.calls).toHaveLength(4);
  });

  it('keeps at most maxEntries in memory, dropping the least recently used', async () => {
    const { cache, registry, redis } = setup({ maxEntries: 2 });
    redis.failing = true; // so that only the in-process level answers
    await cache.resolveContext({ assistantId: assistantA1 });
    await cache.resolveContext({ assistantId: assistantA2 });
    await cache.resolveContext({ assistantId: assistantA1 });
    await cache.resolveContext({ assistantId: assistantB1 });
    expect(cache.size()).toBe(2);
    await cache.resolveContext({ assistantId: assistantA1 });
    expect(registry.calls).toEqual([assistantA1, assistantA2, assistantB1]);
    await cache.resolveContext({ assistantId: assistantA2 });
    expect(registry.calls).toEqual([assistantA1, assistantA2, assistantB1, assistantA2]);
  });

  it('forgets everything on reset (notices may have been missed) and ignores Redis until its entries expired', async () => {
    const { cache, registry, clock } = setup();
    await cache.resolveContext({ assistantId: assistantA1 });
    await refusalOf(cache.resolveContext({ assistantId: unknownAssistant }));
    cache.reset();
    expect(cache.size()).toBe(0);
    await cache.resolveContext({ assistantId: assistantA1 });
    expect(registry.calls).toEqual([assistantA1, unknownAssistant, assistantA1]);
    clock.advance(remoteTtlMs);
    await cache.resolveContext({ assistantId: assistantA2 });
    clock.advance(localTtlMs);
    // Redis is trusted again: the entry written after the reset answers.
    await cache.resolveContext({ assistantId: assistantA2 });
    expect(registry.calls).toEqual([assistantA1, unknownAssistant, assistantA1, assistantA2]);
  });
});

describe('writes through this replica', () => {
  it("drop the tenant's answers and remembered NOT_FOUNDs before the route answers (read-your-writes)", async () => {
    const { cache, registry } = setup();
    const host = 'new.alpha.example';
    expect(await refusalOf(cache.resolveContext({ host }))).toMatchObject({ code: 'NOT_FOUND' });
    const invalidated: string[] = [];
    const claimed = new Map<string, { host: string; assistantId: string }>();
    const client = {
      // A claimed domain routes nothing until it is verified.
      async addDomain(request: { tenantId?: string; assistantId?: string; host?: string }) {
        claimed.set('d1', { host: request.host ?? '', assistantId: request.assistantId ?? '' });
        return create(AddDomainResponseSchema, { domain: { id: 'd1', tenantId: request.tenantId ?? '', host } });
      },
      async verifyDomain(request: { tenantId?: string; domainId?: string }) {
        const domain = claimed.get(request.domainId ?? '');
        if (!domain) throw new AppError('NOT_FOUND', 'domain not found');
        registry.world.hosts.set(domain.host, domain.assistantId);
        return create(VerifyDomainResponseSchema, { domain: { id: 'd1', tenantId: request.tenantId ?? '', host } });
      },
      async createAssistant(request: { tenantId?: string; name?: string }) {
        throw new AppError('NOT_FOUND', `tenant ${request.tenantId ?? ''} not found`);
      },
      listTeams: () => Promise.resolve('untouched'),
    };
    const wrapped = invalidatingContextWrites(client, {
      invalidate: async (tenantId) => {
        invalidated.push(tenantId);
        await cache.invalidate(tenantId);
      },
    });
    await wrapped.addDomain({ tenantId: tenantA, assistantId: assistantA2, host });
    expect(await refusalOf(cache.resolveContext({ host }))).toMatchObject({ code: 'NOT_FOUND' });
    await wrapped.verifyDomain({ tenantId: tenantA, domainId: 'd1' });
    // No change notice has arrived, yet the next lookup on this replica sees the verified domain.
    await expect(cache.resolveContext({ host })).resolves.toMatchObject({ context: { assistantId: assistantA2 } });
    // A failed write invalidates nothing; other methods pass through untouched.
    await expect(wrapped.createAssistant({ tenantId: tenantB, name: 'x' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(wrapped.listTeams()).resolves.toBe('untouched');
    expect(invalidated).toEqual([tenantA, tenantA]);
  });
});
