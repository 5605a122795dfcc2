import { randomUUID } from 'node:crypto';
import { create, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from '@jest/globals';
import { createLogger } from '@portcullis/kit';
import { AuditEventBatchSchema, AuditEventSchema } from '@portcullis/proto/audit';
import type { AuditRecord } from './audit-record.js';
import { createEventIngest } from './event-ingest.js';
import { maxEventsPerBatch } from './event-validation.js';

const prefix = 'unit';

/** In-memory store with the database's semantics: one row per event id. */
function fakeStore() {
  const rows = new Map<string, AuditRecord>();
  let failNext = false;
  return {
    rows,
    failOnce() {
      failNext = true;
    },
    async store(record: AuditRecord): Promise<boolean> {
      if (failNext) {
        failNext = false;
        throw new Error('connection refused');
      }
      if (rows.has(record.eventId)) return false;
      rows.set(record.eventId, record);
      return true;
    },
    async storeMany(_tenantId: string, records: readonly AuditRecord[]): Promise<number> {
      let stored = 0;
      for (const record of records) if (await this.store(record)) stored += 1;
      return stored;
    },
  };
}

/** The ingest over a fake store. */
const ingestOver = (store: ReturnType<typeof fakeStore>, logger = captureLogs().logger) =>
  createEventIngest({ store: store.store, storeMany: store.storeMany.bind(store), logger, subjectPrefix: prefix });

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
});
