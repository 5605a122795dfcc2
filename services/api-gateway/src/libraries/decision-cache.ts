import type { GrpcClient } from '@portcullis/kit';
import type { PolicyService } from '@portcullis/proto/policy';
import { setBounded, touch } from './lru.js';

type CheckCall = GrpcClient<typeof PolicyService>['check'];
type CheckRequest = Parameters<CheckCall>[0];

interface Entry {
  allowed: boolean;
  reason: string;
  tenantId: string;
  expiresAt: number;
}

export interface DecisionCacheOptions {
  policy: { check: CheckCall };
  /** How long a decision is reused at most; change notices drop it sooner. */
  ttlMs: number;
  maxEntries: number;
  /**
   * Whether the policy service is reachable now (its channel is connected). While it is not, no
   * cached decision is served: every request asks, and is denied when the service cannot answer.
   */
  isPolicyAvailable(): boolean;
  /**
   * After a tenant's change notice, its answers are not kept for this long (other policy replicas
   * may still answer from the old rules until they hear the same notice). Default 1 s.
   */
  changeGraceMs?: number;
  now?: () => number;
}

/** Every field the decision depends on, in a fixed order; undefined for a request not cached. */
function keyOf(request: CheckRequest): string | undefined {
  const p = request.principal;
  if (!p || request.tenantId === undefined) return undefined;
  return JSON.stringify([
    request.tenantId,
    request.assistantId ?? '',
    request.object ?? '',
    request.action ?? '',
    p.kind ?? 0,
    p.id ?? '',
    p.tenantId ?? '',
    p.role ?? 0,
    p.actingUserId ?? '',
    [...(p.teamIds ?? [])].sort(),
  ]);
}

/**
 * The policy service's Check, remembered per exact question for a short bound. It answers like
 * Check itself (the same shape), so the authorize step cannot tell it from the service.
 *
 * - Kept: allow and deny answers, for `ttlMs` at most.
 * - Dropped: a tenant's answers at any policy or tenant change notice of that tenant
 *   (`invalidate`); everything after notices may have been missed (`reset`, e.g. a NATS reconnect).
 * - Races: an answer to a question asked before a notice of its tenant, or within `changeGraceMs`
 *   after it (another policy replica may not have heard it yet), is returned but not kept.
 * - Outage: nothing is served while the policy service is unreachable, so a request that needs
 *   a decision is denied (503) while it is down, cached or not.
 * - Failures are never kept.
 */
export function createDecisionCache({
  policy,
  ttlMs,
  maxEntries,
  isPolicyAvailable,
  changeGraceMs = 1_000,
  now = Date.now,
}: DecisionCacheOptions) {
  const entries = new Map<string, Entry>();
  /** When each tenant last changed; only changes within the grace are remembered. */
  const changedAt = new Map<string, number>();
  let resetAt = Number.NEGATIVE_INFINITY;
  /** An answer to a question asked at `askedAt` may be kept: no change of its tenant since, nor just before. */
  const keepable = (tenantId: string, askedAt: number) =>
    askedAt > Math.max(resetAt, changedAt.get(tenantId) ?? Number.NEGATIVE_INFINITY) + changeGraceMs;

  const check: CheckCall = async (request, options) => {
    const key = keyOf(request);
    if (key === undefined || !isPolicyAvailable()) return policy.check(request, options);
    const tenantId = request.tenantId ?? '';
    const hit = touch(entries, key);
    if (hit && hit.expiresAt > now()) {
      return { $typeName: 'portcullis.policy.v1.CheckResponse', allowed: hit.allowed, reason: hit.reason };
    }
    if (hit) entries.delete(key);
    const askedAt = now();
    const answer = await policy.check(request, options);
    if (keepable(tenantId, askedAt)) {
      setBounded(entries, key, { allowed: answer.allowed, reason: answer.reason, tenantId, expiresAt: now() + ttlMs }, maxEntries);
    }
    return answer;
  };

  return {
    check,
    /** A tenant's policy or data changed: forget its decisions now. */
    invalidate(tenantId: string): void {
      const at = now();
      for (const [tenant, when] of changedAt) if (when + changeGraceMs < at) changedAt.delete(tenant);
      changedAt.set(tenantId, at);
      for (const [key, entry] of entries) if (entry.tenantId === tenantId) entries.delete(key);
    },
    /** Notices may have been missed: forget everything. */
    reset(): void {
      resetAt = now();
      changedAt.clear();
      entries.clear();
    },
    size: () => entries.size,
  };
}

export type DecisionCache = ReturnType<typeof createDecisionCache>;
