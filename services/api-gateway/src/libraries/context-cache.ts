import { create } from '@bufbuild/protobuf';
import { AppError, isUuid, normalizeHost, type GrpcClient, type Logger } from '@portcullis/kit';
import { TenantStatus } from '@portcullis/proto/common';
import { ResolveContextResponseSchema, type ResolveContextResponse, type TenantRegistryService } from '@portcullis/proto/tenant';
import { setBounded, touch } from './lru.js';

/** tenant-registry's ResolveContext, the call this cache stands in front of (same shape, so callers cannot tell). */
export type ResolveContextCall = GrpcClient<typeof TenantRegistryService>['resolveContext'];

/** The Redis commands the cache needs; ioredis fits. */
export interface ContextCacheStore {
  mget(...keys: string[]): Promise<(string | null)[]>;
  set(key: string, value: string, mode: 'PX', ttlMs: number): Promise<unknown>;
  incr(key: string): Promise<number>;
}

export interface ContextCacheOptions {
  registry: { resolveContext: ResolveContextCall };
  store: ContextCacheStore;
  /** Prefix of every Redis key (REDIS_KEY_PREFIX). */
  keyPrefix: string;
  /** How long an answer is kept in this process: the bound on staleness when a change notice is missed. */
  localTtlMs: number;
  /** How long an answer is kept in Redis, for every replica: the bound when every replica missed a notice. */
  remoteTtlMs: number;
  /** How long a refusal (NOT_FOUND, TENANT_SUSPENDED) is kept, at either level (at most localTtlMs in-process). */
  refusalTtlMs: number;
  /** In-process entries kept at most; the least recently used go first. */
  maxEntries: number;
  /**
   * Whether tenant-registry is reachable now (its channel is connected). While it is not, nothing
   * cached is served: every lookup asks the registry, and fails (503) while it is down.
   */
  isRegistryAvailable?: () => boolean;
  logger: Logger;
  now?: () => number;
}

/** The refusals worth remembering: both are answers about the lookup key, not failures. */
type CachedRefusalCode = 'NOT_FOUND' | 'TENANT_SUSPENDED';

type Answer =
  | { kind: 'context'; tenantId: string; tenantName: string; tenantPlan: string; assistantId: string }
  | { kind: 'refusal'; code: CachedRefusalCode; message: string };

/**
 * The tag an entry is invalidated by: the tenant the answer is about, or ANY for a refusal,
 * which names no tenant (a suspended tenant is refused without its id; an unknown host may
 * become any tenant's). A notice of any tenant drops every ANY entry.
 */
const ANY = '*';

interface LocalEntry {
  answer: Answer;
  tag: string;
  expiresAt: number;
}

/** What Redis holds per lookup key: the answer, its tag and the tag's generation it was written under. */
interface RemoteEntry {
  answer: Answer;
  tag: string;
  generation: string;
}

const WARN_INTERVAL_MS = 10_000;

/**
 * The cache key of a lookup, with the registry's precedence: the assistant id wins, then the
 * tenant id, then the host. Undefined for a lookup that is not cached (malformed ids or hosts).
 */
export function lookupKeyOf(request: { host?: string; assistantId?: string; tenantId?: string }): string | undefined {
  const assistantId = request.assistantId ?? '';
  if (assistantId !== '') return isUuid(assistantId) ? `assistant:${assistantId.toLowerCase()}` : undefined;
  const tenantId = request.tenantId ?? '';
  if (tenantId !== '') return isUuid(tenantId) ? `tenant:${tenantId.toLowerCase()}` : undefined;
  // The registry's own canonical form, so a host is one key however it was written; a host that
  // is not a valid DNS name is never cached and goes to the registry (INVALID_ARGUMENT).
  const host = normalizeHost(request.host ?? '');
  return host === undefined ? undefined : `host:${host}`;
}

function isCachedRefusal(error: unknown): error is AppError & { code: CachedRefusalCode } {
  return error instanceof AppError && (error.code === 'NOT_FOUND' || error.code === 'TENANT_SUSPENDED');
}

const isString = (value: unknown): value is string => typeof value === 'string';

/** A Redis entry read back, or undefined for anything not exactly what this cache writes. */
function parseRemote(raw: string | null | undefined): RemoteEntry | undefined {
  if (raw === null || raw === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { answer, tag, generation } = parsed as Record<string, unknown>;
  if (!isString(tag) || !isString(generation) || typeof answer !== 'object' || answer === null) return undefined;
  const a = answer as Record<string, unknown>;
  if (
    a['kind'] === 'context' &&
    isString(a['tenantId']) &&
    isString(a['tenantName']) &&
    isString(a['tenantPlan']) &&
    isString(a['assistantId'])
  ) {
    if (tag !== a['tenantId'] || !isUuid(tag)) return undefined;
    return {
      tag,
      generation,
      answer: { kind: 'context', tenantId: tag, tenantName: a['tenantName'], tenantPlan: a['tenantPlan'], assistantId: a['assistantId'] },
    };
  }
  if (a['kind'] === 'refusal' && (a['code'] === 'NOT_FOUND' || a['code'] === 'TENANT_SUSPENDED') && isString(a['message'])) {
    if (tag !== ANY) return undefined;
    return { tag, generation, answer: { kind: 'refusal', code: a['code'], message: a['message'] } };
  }
  return undefined;
}

/** The registry's answer again: a fresh response message, or the same refusal thrown. */
function replay(answer: Answer): ResolveContextResponse {
  if (answer.kind === 'refusal') throw new AppError(answer.code, answer.message);
  return create(ResolveContextResponseSchema, {
    context: {
      tenantId: answer.tenantId,
      tenantName: answer.tenantName,
      tenantStatus: TenantStatus.ACTIVE,
      tenantPlan: answer.tenantPlan,
      assistantId: answer.assistantId,
    },
  });
}

/**
 * Context resolution (host, assistant id or tenant id → tenant + assistant) cached at two
 * levels in front of tenant-registry: an in-process LRU, then Redis shared by every replica.
 *
 * Invalidation: tenant-registry publishes the tenant id on `tenant.changed` after every change;
 * every replica calls `invalidate(tenantId)`, which drops its in-process entries of that tenant
 * (and every refusal, which names no tenant) and bumps two generation counters in Redis — the
 * tenant's and the ANY one. A Redis entry carries the generation of its tag it was written
 * under and counts only while that is still the current one, so one INCR retires every Redis
 * entry of a tenant at once, for every replica.
 *
 * Races: an answer fetched from the registry while a change commits must not be cached as
 * current. In-process, a fill is kept only if no notice arrived while it was in flight (an
 * epoch counter). In Redis, the ANY generation is read before the registry is asked and checked
 * again, together with the tenant's, before writing: if a notice was handled meanwhile the
 * answer is not written; if one is handled after the check, its INCR (ANY first, then the
 * tenant's) retires what was written.
 *
 * Bounds when a notice is missed: in-process entries live `localTtlMs`, Redis entries
 * `remoteTtlMs`. After any sign that notices may have been missed or not applied (a failed
 * INCR, a NATS reconnect: `reset()`), this replica ignores Redis for `remoteTtlMs`, until every
 * entry that might be stale has expired. Redis failing ⇒ the registry is asked (never fail open,
 * never anything older than the in-process TTL); the registry failing ⇒ its error, never a
 * cached guess for an uncached key; the registry unreachable (`isRegistryAvailable`) ⇒ nothing
 * cached is served at all, so an outage denies every request that needs a context.
 */
export function createContextCache({
  registry,
  store,
  keyPrefix,
  localTtlMs,
  remoteTtlMs,
  refusalTtlMs,
  maxEntries,
  isRegistryAvailable = () => true,
  logger,
  now = Date.now,
}: ContextCacheOptions) {
  const entries = new Map<string, LocalEntry>();
  /** Counts notices (and resets); a fill begun under another epoch is not kept in-process. */
  let epoch = 0;
  /** Until when Redis is not trusted (reads and writes skipped). */
  let redisDistrustedUntil = 0;
  let lastWarning = Number.NEGATIVE_INFINITY;

  const entryKey = (lookup: string) => `${keyPrefix}context:${lookup}`;
  const generationKey = (tag: string) => `${keyPrefix}context-generation:${tag}`;

  /** Redis trouble is logged at most once per interval: an outage must not flood the log. */
  function warn(error: unknown, message: string): void {
    const at = now();
    if (at - lastWarning < WARN_INTERVAL_MS) return;
    lastWarning = at;
    logger.warn({ err: error }, message);
  }

  const redisTrusted = () => now() >= redisDistrustedUntil;

  function keepLocal(lookup: string, answer: Answer, tag: string, since: number): void {
    if (since !== epoch) return;
    const ttl = answer.kind === 'refusal' ? Math.min(refusalTtlMs, localTtlMs) : localTtlMs;
    setBounded(entries, lookup, { answer, tag, expiresAt: now() + ttl }, maxEntries);
  }

  function readLocal(lookup: string): Answer | undefined {
    const entry = touch(entries, lookup);
    if (!entry) return undefined;
    if (entry.expiresAt > now()) return entry.answer;
    entries.delete(lookup);
    return undefined;
  }

  /**
   * The Redis entry of a lookup if it is still current, and the ANY generation seen before the
   * registry is asked (undefined when Redis is not to be used for this lookup at all).
   */
  async function readRemote(lookup: string): Promise<{ hit?: RemoteEntry; anyGeneration?: string }> {
    if (!redisTrusted()) return {};
    try {
      const [raw, any] = await store.mget(entryKey(lookup), generationKey(ANY));
      const anyGeneration = any ?? '0';
      const entry = parseRemote(raw);
      if (!entry) return { anyGeneration };
      const [current] = entry.tag === ANY ? [any] : await store.mget(generationKey(entry.tag));
      return (current ?? '0') === entry.generation ? { hit: entry, anyGeneration } : { anyGeneration };
    } catch (error) {
      warn(error, 'context cache: Redis unavailable; asking tenant-registry');
      return {};
    }
  }

  async function keepRemote(lookup: string, answer: Answer, tag: string, anyGenerationBefore: string | undefined): Promise<void> {
    if (anyGenerationBefore === undefined || !redisTrusted()) return;
    try {
      const [tagGeneration, anyGeneration] = await store.mget(generationKey(tag), generationKey(ANY));
      // A notice was handled while the registry was asked: the answer may predate the change.
      if ((anyGeneration ?? '0') !== anyGenerationBefore) return;
      const entry: RemoteEntry = { answer, tag, generation: tag === ANY ? anyGenerationBefore : (tagGeneration ?? '0') };
      await store.set(entryKey(lookup), JSON.stringify(entry), 'PX', answer.kind === 'refusal' ? refusalTtlMs : remoteTtlMs);
    } catch (error) {
      warn(error, 'context cache: could not write to Redis');
    }
  }

  /** The answer worth caching for a lookup, or undefined (then it is passed on uncached). */
  function answerOf(lookup: string, response: ResolveContextResponse): Answer | undefined {
    const context = response.context;
    if (context?.tenantStatus !== TenantStatus.ACTIVE || !isUuid(context.tenantId)) return undefined;
    // The registry answered about what was asked; anything else is not remembered under this key.
    if (lookup.startsWith('tenant:') && lookup !== `tenant:${context.tenantId.toLowerCase()}`) return undefined;
    if (lookup.startsWith('assistant:') && lookup !== `assistant:${context.assistantId.toLowerCase()}`) return undefined;
    return {
      kind: 'context',
      tenantId: context.tenantId.toLowerCase(),
      tenantName: context.tenantName,
      tenantPlan: context.tenantPlan,
      assistantId: context.assistantId,
    };
  }

  const resolveContext: ResolveContextCall = async (request, options) => {
    const lookup = lookupKeyOf(request);
    if (lookup === undefined || !isRegistryAvailable()) return registry.resolveContext(request, options);

    const local = readLocal(lookup);
    if (local) return replay(local);

    const since = epoch;
    const remote = await readRemote(lookup);
    if (remote.hit) {
      keepLocal(lookup, remote.hit.answer, remote.hit.tag, since);
      return replay(remote.hit.answer);
    }

    let response: ResolveContextResponse;
    try {
      response = await registry.resolveContext(request, options);
    } catch (error) {
      if (isCachedRefusal(error)) {
        const answer: Answer = { kind: 'refusal', code: error.code, message: error.message };
        keepLocal(lookup, answer, ANY, since);
        await keepRemote(lookup, answer, ANY, remote.anyGeneration);
      }
      throw error;
    }
    const answer = answerOf(lookup, response);
    if (answer?.kind === 'context') {
      keepLocal(lookup, answer, answer.tenantId, since);
      await keepRemote(lookup, answer, answer.tenantId, remote.anyGeneration);
    }
    return response;
  };

  return {
    resolveContext,

    /**
     * A tenant changed: drop this process's entries of it and every refusal, then retire the
     * tenant's and every refusal's Redis entries for all replicas (ANY first: see the fill).
     */
    async invalidate(tenantId: string): Promise<void> {
      const tag = tenantId.toLowerCase();
      epoch += 1;
      for (const [lookup, entry] of entries) {
        if (entry.tag === tag || entry.tag === ANY) entries.delete(lookup);
      }
      try {
        await store.incr(generationKey(ANY));
        await store.incr(generationKey(tag));
      } catch (error) {
        // Other replicas may not have retired them either: do not trust Redis until they expired.
        redisDistrustedUntil = now() + remoteTtlMs;
        warn(error, 'context cache: could not retire Redis entries; ignoring Redis until they expire');
      }
    },

    /**
     * Notices may have been missed (e.g. the NATS connection was lost): drop everything held
     * in-process and ignore Redis until whatever it holds now has expired.
     */
    reset(): void {
      epoch += 1;
      entries.clear();
      redisDistrustedUntil = now() + remoteTtlMs;
    },

    /** In-process entries held now (for tests and diagnostics). */
    size: () => entries.size,
  };
}

export type ContextCache = ReturnType<typeof createContextCache>;

/** The tenant-registry writes routed through the gateway that change what a lookup answers. */
type ContextWrites = Pick<GrpcClient<typeof TenantRegistryService>, 'createAssistant' | 'addDomain' | 'verifyDomain'>;

/**
 * The tenant-registry client with read-your-writes on this replica: once a write that changes
 * what a lookup answers (a new assistant, a new or newly verified domain) has succeeded, the tenant's cached
 * answers — and every remembered NOT_FOUND, such as the one for the host just added — are
 * dropped before the route answers. The caller's next request through this replica therefore
 * never meets the old answer, even if it overtakes the change notice; other replicas drop theirs
 * when the notice reaches them.
 */
export function invalidatingContextWrites<C extends ContextWrites>(client: C, cache: Pick<ContextCache, 'invalidate'>): C {
  const after = async <R>(tenantId: string | undefined, response: R): Promise<R> => {
    if (tenantId !== undefined && isUuid(tenantId)) await cache.invalidate(tenantId);
    return response;
  };
  const writes: ContextWrites = {
    createAssistant: async (request, options) => after(request.tenantId, await client.createAssistant(request, options)),
    addDomain: async (request, options) => after(request.tenantId, await client.addDomain(request, options)),
    verifyDomain: async (request, options) => after(request.tenantId, await client.verifyDomain(request, options)),
  };
  return { ...client, ...writes };
}
