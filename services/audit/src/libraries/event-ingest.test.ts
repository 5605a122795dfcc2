import { randomUUID } from 'node:crypto';
import { create, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from '@jest/globals';
import { createLogger } from '@portcullis/kit';
import { AuditEventBatchSchema, AuditEventSchema } from '@portcullis/proto/audit';
import type { AuditRecord } from './audit-record.js';
import { countStoredEvents, createEventIngest } from './event-ingest.js';
import { maxEventsPerBatch } from './event-validation.js';

const prefix = 'unit';

/**
 * In-memory store with the database's semantics: one row per event id, a write stores all of its
 * records or (when it throws) none. Writes can be held open, to see what waits and is merged.
 */
function fakeStore() {
  const rows = new Map<string, AuditRecord>();
  /** Event ids of every storeMany call, in call order. */
  const writes: string[][] = [];
  /** Event ids whose write the database refuses. */
  const refused = new Set<string>();
  let failures = 0;
  let held: Promise<void> | undefined;
  let release = () => {};
  const inFlight = new Map<string, number>();
  const most = { total: 0, perTenant: 0 };

  async function write<T>(tenantId: string, records: readonly AuditRecord[], result: (stored: boolean[]) => T): Promise<T> {
    const running = (inFlight.get(tenantId) ?? 0) + 1;
    inFlight.set(tenantId, running);
    most.perTenant = Math.max(most.perTenant, running);
    most.total = Math.max(
      most.total,
      [...inFlight.values()].reduce((sum, n) => sum + n, 0),
    );
    try {
      await held;
      if (failures > 0) {
        failures -= 1;
        throw new Error('connection refused');
      }
      if (records.some((record) => refused.has(record.eventId))) throw new Error('value refused by the database');
      const stored = records.map((record) => {
        if (rows.has(record.eventId)) return false;
        rows.set(record.eventId, record);
        return true;
      });
      return result(stored);
    } finally {
      inFlight.set(tenantId, (inFlight.get(tenantId) ?? 1) - 1);
    }
  }

  return {
    rows,
    writes,
    refused,
    most,
    failOnce() {
      failures = 1;
    },
    failTimes(n: number) {
      failures = n;
    },
    /** Holds every write until `release()`. */
    hold() {
      held = new Promise<void>((resolve) => {
        release = () => {
          held = undefined;
          resolve();
        };
      });
    },
    release: () => {
      release();
    },
    store(record: AuditRecord): Promise<boolean> {
      return write(record.tenantId, [record], ([stored]) => stored === true);
    },
    storeMany(tenantId: string, records: readonly AuditRecord[]): Promise<boolean[]> {
      writes.push(records.map((record) => record.eventId));
      return write(tenantId, records, (stored) => stored);
    },
  };
}

/** The ingest over a fake store. */
const ingestOver = (store: ReturnType<typeof fakeStore>, logger = captureLogs().logger, options: { maxConcurrentWrites?: number } = {}) =>
  createEventIngest({ store: store.store, storeMany: store.storeMany, logger, subjectPrefix: prefix, ...options });

/** Lets every queued promise reaction run (no timer is involved). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function batchOf(tenantId: string, eventIds: string[] = [randomUUID(), randomUUID()]) {
  const events = eventIds.map((eventId) => create(AuditEventSchema, { eventId, tenantId, kind: 'authz.decision' }));
  return {
    eventIds,
    message: {
      subject: `${prefix}.audit.${tenantId}._batch`,
      data: toBinary(AuditEventBatchSchema, create(AuditEventBatchSchema, { events })),
    },
  };
}

/** Captures log lines so tests can prove what is (not) logged. */
function captureLogs() {
  const lines: string[] = [];
  const logger = createLogger({ name: 'audit-test', level: 'debug', destination: { write: (line: string) => lines.push(line) } });
  return { lines, logger };
}

function encoded(tenantId: string, subjectTenant: string, extra: { eventId?: string; reason?: string } = {}) {
  const event = create(AuditEventSchema, {
    eventId: extra.eventId ?? randomUUID(),
    tenantId,
    kind: 'authz.decision',
    reason: extra.reason ?? '',
  });
  return { subject: `${prefix}.audit.${subjectTenant}.authz.decision`, data: toBinary(AuditEventSchema, event), seq: 1 };
}

describe('event ingest', () => {
  it('stores a valid event once, however often it is delivered', async () => {
    const store = fakeStore();
    const ingest = ingestOver(store);
    const tenant = randomUUID();
    const msg = encoded(tenant, tenant);
    expect(await ingest.ingest(msg)).toBe('stored');
    expect(await ingest.ingest(msg)).toBe('duplicate');
    expect(store.rows.size).toBe(1);
    expect(ingest.counts()).toMatchObject({ stored: 1, duplicates: 1, rejected: 0 });
  });

  it('drops and counts an event filed under another tenant, logging no payload', async () => {
    const store = fakeStore();
    const { lines, logger } = captureLogs();
    const ingest = ingestOver(store, logger);
    const secret = 'payload-marker-7f3a';
    expect(await ingest.ingest(encoded(randomUUID(), randomUUID(), { reason: secret }))).toBe('rejected');
    expect(store.rows.size).toBe(0);
    expect(ingest.counts()).toMatchObject({ stored: 0, rejected: 1, rejectedByReason: { tenant_mismatch: 1 } });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('tenant_mismatch');
    expect(lines[0]).not.toContain(secret);
  });

  it('counts each rejection reason separately', async () => {
    const store = fakeStore();
    const ingest = ingestOver(store);
    const tenant = randomUUID();
    await ingest.ingest(encoded(tenant, tenant, { eventId: 'nope' }));
    await ingest.ingest({ subject: `${prefix}.audit.${tenant}.x`, data: new Uint8Array([0xff]) });
    await ingest.ingest({ subject: `${prefix}.audit.${tenant}.x`, data: new Uint8Array([0xff]) });
    expect(ingest.counts()).toMatchObject({ rejected: 3, rejectedByReason: { invalid_event_id: 1, undecodable: 2 } });
  });

  it('throws when storage fails, so the message is redelivered, and stores it on the next delivery', async () => {
    const store = fakeStore();
    const ingest = ingestOver(store);
    const tenant = randomUUID();
    const msg = encoded(tenant, tenant);
    store.failOnce();
    await expect(ingest.ingest(msg)).rejects.toThrow('connection refused');
    expect(ingest.counts()).toMatchObject({ stored: 0, rejected: 0 });
    expect(await ingest.ingest(msg)).toBe('stored');
    expect(store.rows.size).toBe(1);
  });

  it('stores the valid events of a batch once each and refuses the others with their reasons', async () => {
    const store = fakeStore();
    const { lines, logger } = captureLogs();
    const ingest = ingestOver(store, logger);
    const tenant = randomUUID();
    const secret = 'payload-marker-b4tch';
    const good = [randomUUID(), randomUUID()].map((eventId) =>
      create(AuditEventSchema, { eventId, tenantId: tenant, kind: 'authz.decision' }),
    );
    const foreign = create(AuditEventSchema, { eventId: randomUUID(), tenantId: randomUUID(), kind: 'authz.decision', reason: secret });
    const reserved = create(AuditEventSchema, { eventId: randomUUID(), tenantId: tenant, kind: '_batch' });
    const batch = {
      subject: `${prefix}.audit.${tenant}._batch`,
      data: toBinary(AuditEventBatchSchema, create(AuditEventBatchSchema, { events: [...good, foreign, reserved] })),
    };
    expect(await ingest.ingest(batch)).toBe('stored');
    expect(await ingest.ingest(batch)).toBe('duplicate');
    expect([...store.rows.keys()].sort()).toEqual(good.map((e) => e.eventId).sort());
    expect(ingest.counts()).toMatchObject({
      stored: 2,
      duplicates: 2,
      rejected: 4,
      rejectedByReason: { tenant_mismatch: 2, reserved_kind: 2 },
    });
    expect(lines.join('\n')).not.toContain(secret);
    expect(await ingest.ingest({ subject: `${prefix}.audit.${tenant}._batch`, data: new Uint8Array([0xff]) })).toBe('rejected');
    expect(await ingest.ingest({ subject: `${prefix}.audit.not-a-tenant._batch`, data: batch.data })).toBe('rejected');
    const huge = Array.from({ length: maxEventsPerBatch + 1 }, () =>
      create(AuditEventSchema, { eventId: randomUUID(), tenantId: tenant, kind: 'x' }),
    );
    expect(
      await ingest.ingest({
        subject: `${prefix}.audit.${tenant}._batch`,
        data: toBinary(AuditEventBatchSchema, create(AuditEventBatchSchema, { events: huge })),
      }),
    ).toBe('rejected');
    expect(ingest.counts().rejectedByReason).toMatchObject({ undecodable: 1, bad_subject: 1, batch_too_large: 1 });
  });

  it('stores the batches of a tenant that wait together in one write, in order, each message answered for itself', async () => {
    const store = fakeStore();
    const ingest = ingestOver(store);
    const tenant = randomUUID();
    const [first, second, third] = [batchOf(tenant), batchOf(tenant), batchOf(tenant)];
    const singleId = randomUUID();
    store.hold();
    const outcomes = [ingest.ingest(first.message)];
    await settle();
    // While the first write is open, the others queue behind it: the same batch again, a new
    // one, a single event and one more batch.
    outcomes.push(
      ingest.ingest(first.message),
      ingest.ingest(second.message),
      ingest.ingest(encoded(tenant, tenant, { eventId: singleId })),
      ingest.ingest(third.message),
    );
    store.release();
    expect(await Promise.all(outcomes)).toEqual(['stored', 'duplicate', 'stored', 'stored', 'stored']);
    // The two batches before the single event went in one write; the one after it in another.
    expect(store.writes).toEqual([first.eventIds, [...first.eventIds, ...second.eventIds], third.eventIds]);
    expect([...store.rows.keys()]).toEqual([...first.eventIds, ...second.eventIds, singleId, ...third.eventIds]);
    expect(ingest.counts()).toMatchObject({ stored: 7, duplicates: 2 });
  });

  it('writes tenants in parallel, one tenant at a time, and no more writes at once than allowed', async () => {
    const store = fakeStore();
    const ingest = ingestOver(store, captureLogs().logger, { maxConcurrentWrites: 2 });
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    store.hold();
    const first = [ingest.ingest(batchOf(a).message), ingest.ingest(batchOf(b).message), ingest.ingest(batchOf(c).message)];
    await settle();
    const later = [ingest.ingest(batchOf(a).message), ingest.ingest(batchOf(c).message)];
    store.release();
    expect(await Promise.all([...first, ...later])).toEqual(['stored', 'stored', 'stored', 'stored', 'stored']);
    expect(store.rows.size).toBe(10);
    expect(store.most).toEqual({ total: 2, perTenant: 1 });
  });

  it('rejects every message of a write the database failed, so each is redelivered, and stores them on the next delivery', async () => {
    const store = fakeStore();
    const ingest = ingestOver(store);
    const tenant = randomUUID();
    const [first, second, third] = [batchOf(tenant), batchOf(tenant), batchOf(tenant)];
    store.hold();
    const pending = ingest.ingest(first.message);
    await settle();
    const merged = [ingest.ingest(second.message), ingest.ingest(third.message)];
    // The first write fails, then the merged one, and each of its messages on its own.
    store.failTimes(4);
    store.release();
    await expect(pending).rejects.toThrow('connection refused');
    for (const outcome of merged) await expect(outcome).rejects.toThrow('connection refused');
    expect(store.rows.size).toBe(0);
    expect(await Promise.all([first, second, third].map((batch) => ingest.ingest(batch.message)))).toEqual(['stored', 'stored', 'stored']);
    expect(store.rows.size).toBe(6);
  });

  it('does not let one message the database refuses hold back the others written with it', async () => {
    const store = fakeStore();
    const ingest = ingestOver(store);
    const tenant = randomUUID();
    const [first, refused, third] = [batchOf(tenant), batchOf(tenant), batchOf(tenant)];
    store.refused.add(refused.eventIds[1] ?? '');
    store.hold();
    const pending = ingest.ingest(first.message);
    await settle();
    const merged = [ingest.ingest(refused.message), ingest.ingest(third.message)];
    store.release();
    expect(await pending).toBe('stored');
    await expect(merged[0]).rejects.toThrow('refused');
    expect(await merged[1]).toBe('stored');
    expect([...store.rows.keys()]).toEqual([...first.eventIds, ...third.eventIds]);
  });
});

describe('stored event metrics', () => {
  it('counts only newly stored events and observes their lag from their own time', () => {
    const counted: number[] = [];
    const lags: number[] = [];
    const metrics = countStoredEvents(
      { stored: { inc: (value = 1) => counted.push(value) }, lag: { observe: (seconds) => lags.push(seconds) } },
      () => Date.parse('2026-12-03T12:00:10Z'),
    );
    const at = (iso: string | null): AuditRecord => ({
      eventId: randomUUID(),
      tenantId: randomUUID(),
      kind: 'login',
      principalKind: null,
      principalId: null,
      principalRole: null,
      principalTenantId: null,
      assistantId: null,
      object: null,
      action: null,
      outcome: null,
      reason: null,
      traceId: null,
      requestId: null,
      occurredAt: iso === null ? null : new Date(iso),
      attributes: {},
    });
    expect(metrics.many([at('2026-12-03T12:00:00Z'), at('2026-12-03T12:00:08Z'), at(null)], [true, false, true])).toEqual([
      true,
      false,
      true,
    ]);
    expect(metrics.one(at('2026-12-03T12:00:09.5Z'), true)).toBe(true);
    expect(metrics.one(at('2026-12-03T12:00:09Z'), false)).toBe(false);
    expect(counted).toEqual([2, 1]);
    expect(lags).toEqual([10, 0.5]);
  });

  it('counts refused events by reason through the injected counter', async () => {
    const reasons: string[] = [];
    const ingest = createEventIngest({
      store: () => Promise.resolve(true),
      storeMany: (_tenant, records) => Promise.resolve(records.map(() => true)),
      logger: captureLogs().logger,
      subjectPrefix: prefix,
      rejected: { inc: ({ reason }) => reasons.push(reason) },
    });
    await expect(ingest.ingest({ subject: `${prefix}.audit.not-a-tenant.login`, data: new Uint8Array([1, 2, 3]) })).resolves.toBe(
      'rejected',
    );
    expect(reasons).toHaveLength(1);
    expect(ingest.counts().rejectedByReason).toMatchObject({ [reasons[0] as string]: 1 });
  });
});
