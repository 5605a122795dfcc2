// In-memory stand-ins for the Redis and Postgres stores, for unit tests. They keep the
// contracts the real stores document (TTLs, ownership checks, the spend row lock).
/* eslint-disable @typescript-eslint/require-await -- test doubles implement async interfaces without awaiting anything */
import type { FailureCounter } from '../libraries/login-throttle.js';
import type { RefreshTokenRecord, RefreshTokenStore } from '../libraries/refresh-tokens.js';
import type { PhoneCodeStore } from '../libraries/phone-verification.js';
import type { SessionRecord, SessionStore } from '../libraries/sessions.js';

export interface Clock {
  now: () => number;
  advance: (ms: number) => void;
}

export function fakeClock(start = 1_750_000_000_000): Clock {
  let current = start;
  return {
    now: () => current,
    advance: (ms) => {
      current += ms;
    },
  };
}

export function memorySessionStore(clock: Clock) {
  const sessions = new Map<string, { record: SessionRecord; expiresAt: number }>();
  const userSets = new Map<string, Set<string>>();
  const live = (sessionId: string) => {
    const entry = sessions.get(sessionId);
    if (entry && entry.expiresAt <= clock.now()) sessions.delete(sessionId);
    return sessions.get(sessionId)?.record;
  };
  const setOf = (userId: string) => {
    let set = userSets.get(userId);
    if (!set) userSets.set(userId, (set = new Set()));
    return set;
  };
  const store: SessionStore = {
    async create(session, ttlSeconds) {
      sessions.set(session.sessionId, { record: { ...session }, expiresAt: clock.now() + ttlSeconds * 1000 });
      setOf(session.userId).add(session.sessionId);
    },
    async listForUser(userId) {
      const set = setOf(userId);
      const result: SessionRecord[] = [];
      for (const sessionId of [...set]) {
        const record = live(sessionId);
        if (record?.userId === userId) result.push({ ...record });
        else set.delete(sessionId);
      }
      return result;
    },
    async idsForUser(userId) {
      return [...setOf(userId)];
    },
    async touch(sessionId, userId, lastUsedAt, ttlSeconds) {
      const record = live(sessionId);
      if (record?.userId !== userId) return false;
      sessions.set(sessionId, { record: { ...record, lastUsedAt }, expiresAt: clock.now() + ttlSeconds * 1000 });
      return true;
    },
    async remove(sessionId, userId) {
      setOf(userId).delete(sessionId);
      const record = live(sessionId);
      if (record?.userId !== userId) return undefined;
      sessions.delete(sessionId);
      return record.tenantId;
    },
  };
  return { store, exists: (sessionId: string) => live(sessionId) !== undefined, get: live };
}

export type MemoryRefreshRow = RefreshTokenRecord & { tokenHash: string };

export function memoryRefreshTokenStore(clock: Clock) {
  const rows: MemoryRefreshRow[] = [];
  const locks = new Map<string, Promise<unknown>>();
  const store: RefreshTokenStore = {
    async insert(token, ttlSeconds) {
      if (rows.some((row) => row.tokenHash === token.tokenHash)) throw new Error('duplicate token hash');
      rows.push({
        ...token,
        createdAt: new Date(clock.now()),
        expiresAt: new Date(clock.now() + ttlSeconds * 1000),
        usedAt: null,
        revokedAt: null,
      });
    },
    async findByHash(tokenHash) {
      const row = rows.find((candidate) => candidate.tokenHash === tokenHash);
      return row && { ...row };
    },
    spend(tokenHash, ttlSeconds, next) {
      // Emulates the row lock: spends of one token run one after the other.
      const previous = locks.get(tokenHash) ?? Promise.resolve();
      const run = previous.then(async () => {
        const row = rows.find((candidate) => candidate.tokenHash === tokenHash);
        if (!row || row.usedAt !== null || row.revokedAt !== null || row.expiresAt.getTime() <= clock.now()) return undefined;
        const { successor, result } = await next({
          familyId: row.familyId,
          sessionId: row.sessionId,
          userId: row.userId,
          tenantId: row.tenantId,
        });
        // Committed only when `next` succeeded.
        row.usedAt = new Date(clock.now());
        await store.insert(successor, ttlSeconds);
        return result;
      });
      locks.set(
        tokenHash,
        run.catch(() => undefined),
      );
      return run;
    },
    async revokeFamilies(userId, familyIds) {
      let count = 0;
      for (const row of rows) {
        if (row.userId === userId && familyIds.includes(row.familyId) && row.revokedAt === null) {
          row.revokedAt = new Date(clock.now());
          count += 1;
        }
      }
      return count;
    },
    async purgeExpired(retainSeconds, limit) {
      const cutoff = clock.now() - retainSeconds * 1000;
      let purged = 0;
      for (let i = rows.length - 1; i >= 0 && purged < limit; i -= 1) {
        if ((rows[i]?.expiresAt.getTime() ?? Infinity) < cutoff) {
          rows.splice(i, 1);
          purged += 1;
        }
      }
      return purged;
    },
  };
  return { store, rows };
}

/** A FailureCounter with a fixed window from the first count, like the Redis one. */
export function memoryFailureCounter(max: number, windowMs: number, clock: Clock) {
  const counts = new Map<string, { count: number; resetAt: number }>();
  let failing: Error | undefined;
  const entry = (key: string) => {
    const current = counts.get(key);
    if (current && current.resetAt > clock.now()) return current;
    const fresh = { count: 0, resetAt: clock.now() + windowMs };
    counts.set(key, fresh);
    return fresh;
  };
  const counter: FailureCounter = {
    async take(key) {
      if (failing) throw failing;
      const current = entry(key);
      current.count += 1;
      return { allowed: current.count <= max, msBeforeReset: current.resetAt - clock.now() };
    },
    async giveBack(key) {
      if (failing) throw failing;
      entry(key).count -= 1;
    },
    async reset(key) {
      if (failing) throw failing;
      counts.delete(key);
    },
  };
  return {
    counter,
    count: (key: string) => {
      const current = counts.get(key);
      return current && current.resetAt > clock.now() ? current.count : 0;
    },
    failWith: (error: Error | undefined) => {
      failing = error;
    },
  };
}

/** A PhoneCodeStore with TTLs on the fake clock, like the Redis one. */
export function memoryPhoneCodeStore(clock: Clock) {
  const codes = new Map<string, { hash: string; phone: string; attempts: number; expiresAt: number }>();
  const resend = new Map<string, number>();
  const windows = new Map<string, { count: number; endsAt: number }>();
  const liveWindow = (key: string) => {
    const entry = windows.get(key);
    if (entry && entry.endsAt <= clock.now()) windows.delete(key);
    return windows.get(key);
  };
  const countIn = (key: string, windowSeconds: number) => {
    const entry = liveWindow(key) ?? { count: 0, endsAt: clock.now() + windowSeconds * 1000 };
    entry.count += 1;
    windows.set(key, entry);
    return entry.count;
  };
  const liveCode = (userId: string) => {
    const entry = codes.get(userId);
    if (entry && entry.expiresAt <= clock.now()) codes.delete(userId);
    return codes.get(userId);
  };
  const store: PhoneCodeStore = {
    async claimSend(userId, seconds) {
      const until = resend.get(userId);
      if (until !== undefined && until > clock.now()) return { claimed: false, retryAfterMs: until - clock.now() };
      resend.set(userId, clock.now() + seconds * 1000);
      return { claimed: true };
    },
    async releaseSend(userId) {
      resend.delete(userId);
    },
    async save(userId, { hash, phone }, ttlSeconds) {
      codes.set(userId, { hash, phone, attempts: 0, expiresAt: clock.now() + ttlSeconds * 1000 });
    },
    async countAttempt(userId) {
      const entry = liveCode(userId);
      if (!entry) return undefined;
      entry.attempts += 1;
      return { hash: entry.hash, phone: entry.phone, attempts: entry.attempts };
    },
    async consume(userId, hash) {
      if (liveCode(userId)?.hash !== hash) return false;
      codes.delete(userId);
      return true;
    },
    async discard(userId) {
      codes.delete(userId);
    },
    async takeDailySend(counters, windowSeconds) {
      for (const { key, limit } of counters) {
        const entry = liveWindow(`sends:${key}`);
        if (entry && entry.count >= limit) return { taken: false, retryAfterMs: entry.endsAt - clock.now() };
      }
      for (const { key } of counters) countIn(`sends:${key}`, windowSeconds);
      return { taken: true };
    },
    async countFailure(userId, windowSeconds) {
      return countIn(`failures:${userId}`, windowSeconds);
    },
    async failures(userId) {
      const entry = liveWindow(`failures:${userId}`);
      return { count: entry?.count ?? 0, retryAfterMs: entry ? entry.endsAt - clock.now() : 1 };
    },
  };
  return { store, pending: liveCode };
}
