import { randomUUID } from 'node:crypto';
import { create, toBinary } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { PrismaPg } from '@prisma/adapter-pg';
import {
  activeTraceId,
  auditStreamOf,
  completeAuditEvent,
  connectNats,
  createAuditPublisher,
  createGrpcClient,
  createGrpcServer,
  createTrustedIdentities,
  createLogger,
  createTenantScope,
  startTelemetry,
  tracer,
  type AuditPublisher,
  type GrpcClient,
  type GrpcServer,
  type NatsConnection,
  type Telemetry,
} from '@portcullis/kit';
import { AuditEventBatchSchema, AuditEventSchema, AuditService, Outcome } from '@portcullis/proto/audit';
import { PrincipalKind, Role } from '@portcullis/proto/common';
import { createTestDatabase, infra, pollUntil, testRunId, withPg, type TestDatabase } from '@portcullis/test';
import { startAuditConsumer, type AuditConsumer } from '../src/events/audit-consumer.js';
import { PrismaClient } from '../src/generated/prisma/client.js';
import { createAuditService } from '../src/grpc/audit-service.js';
import type { AuditRecord } from '../src/libraries/audit-record.js';
import { createEventIngest, type EventIngest } from '../src/libraries/event-ingest.js';
import { createEventLog } from '../src/libraries/event-log.js';
import { createChainVerifier } from '../src/libraries/hash-chain.js';
import { createAuditReadQueries } from '../src/queries/audit-read.js';
import { appendOnlyTables, createAuditEventQueries, undeletableTables } from '../src/queries/audit-events.js';

const identities = createTrustedIdentities();

const migrationsDir = new URL('../prisma/migrations', import.meta.url).pathname;
const logger = createLogger({ name: 'audit-test', level: 'silent' });
const prefix = `${testRunId}_audit`;
const stream = auditStreamOf(prefix);
const durable = 'audit-store';

describe('audit service against Postgres and NATS', () => {
  let db: TestDatabase;
  let telemetry: Telemetry;
  let prisma: PrismaClient;
  let nc: NatsConnection;
  let consumer: AuditConsumer;
  let ingest: EventIngest;
  let server: GrpcServer;
  let client: GrpcClient<typeof AuditService>;
  let publisher: AuditPublisher;

  /** Every store attempt per event id, with the trace id active while it ran. */
  const attempts = new Map<string, string[]>();
  /** Event ids whose first store commits and then fails, as if the ack were lost after the write. */
  const failAfterCommit = new Set<string>();

  const rowCount = (eventId: string) =>
    withPg(
      db.ownerUrl,
      async (c) =>
        (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_events WHERE event_id = $1', [eventId])).rows[0]?.n ?? -1,
    );

  const listAll = async (tenantId: string, pageSize: number) => {
    const events = [];
    let pageToken = '';
    for (let page = 0; page < 100; page += 1) {
      const response = await client.listEvents({ tenantId, pageSize, pageToken });
      events.push(...response.events);
      if (!response.nextPageToken) return events;
      pageToken = response.nextPageToken;
    }
    throw new Error('pagination did not end');
  };

  const waitForEvent = (tenantId: string, eventId: string) =>
    pollUntil(async () => (await client.listEvents({ tenantId, pageSize: 200 })).events.find((e) => e.eventId === eventId), {
      what: `event ${eventId} to be listed`,
    });

  beforeAll(async () => {
    telemetry = startTelemetry({ serviceName: 'audit-test' });
    // The grants runService applies on start: the app role may only read and append audit_events.
    db = await createTestDatabase('audit', migrationsDir, { appendOnlyTables, undeletableTables });
    prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.appUrl }) });
    nc = await connectNats({ servers: infra.natsUrl, name: 'audit-test', logger });
    const queries = createAuditEventQueries(createTenantScope(prisma));
    ingest = createEventIngest({
      logger,
      subjectPrefix: prefix,
      async store(record: AuditRecord) {
        attempts.set(record.eventId, [...(attempts.get(record.eventId) ?? []), activeTraceId()]);
        const stored = await queries.insert(record);
        if (failAfterCommit.delete(record.eventId)) throw new Error('simulated failure after commit');
        return stored;
      },
      storeMany: (tenantId, records) => queries.insertMany(tenantId, records),
    });
    consumer = await startAuditConsumer({ nc, subjectPrefix: prefix, durable, ingest, logger, redeliveryDelayMs: 50 });
    server = createGrpcServer({
      identity: identities['audit'],
      logger,
      services: [
        createAuditService({
          log: createEventLog({ ...createAuditReadQueries(createTenantScope(prisma), prisma), checkpointKeys: () => [] }),
          verifyChain: createChainVerifier(queries, undefined, { pageSize: 2 }),
        }),
      ],
    });
    const port = await server.listen('127.0.0.1', 0);
    server.setServing(true);
    client = createGrpcClient(AuditService, {
      address: `127.0.0.1:${port}`,
      deadlineMs: 3_000,
      credential: identities['platform-ops'].credentialFor('audit'),
    });
    publisher = createAuditPublisher({ nc, subjectPrefix: prefix });
  });

  afterAll(async () => {
    client.close();
    await server.drain(1_000);
    await consumer.stop();
    await (await jetstreamManager(nc)).streams.delete(stream.name);
    await nc.drain();
    await prisma.$disconnect();
    await db.drop();
    await telemetry.shutdown();
  });

  it('stores a published event and lists it with every field, continuing the publisher trace', async () => {
    const tenantId = randomUUID();
    const occurredAt = new Date('2026-03-04T05:06:07.089Z');
    let publisherTraceId = '';
    const eventId = await tracer.startActiveSpan('test publish', async (span) => {
      publisherTraceId = activeTraceId();
      try {
        return await publisher.publish({
          tenantId,
          kind: 'authz.decision',
          principal: { kind: PrincipalKind.USER, id: randomUUID(), tenantId, role: Role.ADMIN },
          object: 'tools',
          action: 'invoke',
          outcome: Outcome.ALLOW,
          reason: 'role:admin',
          requestId: 'req-1',
          occurredAt: timestampFromDate(occurredAt),
          attributes: { route: '/v1/tools' },
        });
      } finally {
        span.end();
      }
    });
    const listed = await waitForEvent(tenantId, eventId);
    expect(listed).toMatchObject({
      tenantId,
      kind: 'authz.decision',
      principal: { kind: PrincipalKind.USER, role: Role.ADMIN, tenantId },
      object: 'tools',
      action: 'invoke',
      outcome: Outcome.ALLOW,
      reason: 'role:admin',
      requestId: 'req-1',
      traceId: publisherTraceId,
      attributes: { route: '/v1/tools' },
    });
    expect(listed.occurredAt && new Date(Number(listed.occurredAt.seconds) * 1000 + listed.occurredAt.nanos / 1e6)).toEqual(occurredAt);
    expect(publisherTraceId).toMatch(/^[0-9a-f]{32}$/);
    // The store ran inside the consumer span that continues the publisher's trace.
    expect(attempts.get(eventId)).toEqual([publisherTraceId]);
    expect(consumer.isRunning()).toBe(true);
  });

  it('stores one row when the same event id is published twice', async () => {
    const tenantId = randomUUID();
    const eventId = randomUUID();
    const init = { eventId, tenantId, kind: 'tool.call' };
    const duplicatesBefore = ingest.counts().duplicates;
    await publisher.publish(init);
    await publisher.publish(init);
    // The same event under a fresh JetStream message id escapes the stream's dedup window,
    // so the consumer itself sees it twice.
    const bytes = toBinary(AuditEventSchema, create(AuditEventSchema, init));
    await jetstream(nc).publish(`${prefix}.audit.${tenantId}.tool.call`, bytes, { msgID: randomUUID() });
    await pollUntil(() => ((attempts.get(eventId)?.length ?? 0) >= 2 ? true : undefined), { what: 'the second delivery' });
    // Recognised as already stored (not a failed insert that would be redelivered forever).
    await pollUntil(() => (ingest.counts().duplicates > duplicatesBefore ? true : undefined), { what: 'the duplicate to be seen' });
    expect(attempts.get(eventId)).toHaveLength(2);
    expect(await rowCount(eventId)).toBe(1);
    expect((await listAll(tenantId, 50)).map((e) => e.eventId)).toEqual([eventId]);
  });

  it('stores every event of a batch once, also when the batch and its events are published again', async () => {
    const tenantId = randomUUID();
    const principalId = randomUUID();
    const events = ['authz.decision', 'tool.call', 'authz.decision'].map((kind, index) =>
      completeAuditEvent({
        tenantId,
        kind,
        principal: { kind: PrincipalKind.USER, id: principalId, tenantId, role: Role.USER },
        object: 'tools',
        action: 'invoke',
        outcome: Outcome.ALLOW,
        reason: 'batched',
        requestId: `req-${index}`,
        occurredAt: timestampFromDate(new Date(Date.UTC(2026, 11, 3, 10, 0, index))),
        attributes: { position: String(index) },
      }),
    );
    const batchId = randomUUID();
    await publisher.publishBatch(tenantId, events, batchId);
    await publisher.publishBatch(tenantId, events, batchId);
    // A new batch id escapes the stream's dedup window: the consumer sees the events again.
    await publisher.publishBatch(tenantId, events.slice(1), randomUUID());
    for (const event of events) await waitForEvent(tenantId, event.eventId);
    // Published after them, so listed once they were all handled.
    await publisher.publish({ tenantId, kind: 'marker' }).then((id) => waitForEvent(tenantId, id));
    const listed = (await listAll(tenantId, 50)).filter((e) => e.reason === 'batched');
    // Newest first: the batch's order is the stored order.
    expect(listed.map((e) => e.eventId)).toEqual(events.map((e) => e.eventId).reverse());
    for (const [index, event] of events.entries()) {
      expect(listed.find((e) => e.eventId === event.eventId)).toMatchObject({
        kind: event.kind,
        principal: { kind: PrincipalKind.USER, id: principalId, role: Role.USER, tenantId },
        object: 'tools',
        action: 'invoke',
        outcome: Outcome.ALLOW,
        requestId: `req-${index}`,
        occurredAt: { seconds: event.occurredAt?.seconds },
        attributes: { position: String(index) },
      });
    }
    for (const event of events) expect(await rowCount(event.eventId)).toBe(1);
  });

  it('refuses a batch filed under another tenant: none of its events is stored', async () => {
    const tenantId = randomUUID();
    const other = randomUUID();
    const event = completeAuditEvent({ tenantId, kind: 'authz.decision' });
    const rejectedBefore = ingest.counts().rejectedByReason.tenant_mismatch;
    const bytes = toBinary(AuditEventBatchSchema, create(AuditEventBatchSchema, { events: [event] }));
    await jetstream(nc).publish(`${prefix}.audit.${other}._batch`, bytes, { msgID: randomUUID() });
    await pollUntil(() => (ingest.counts().rejectedByReason.tenant_mismatch > rejectedBefore ? true : undefined), {
      what: 'the batch to be refused',
    });
    expect(await rowCount(event.eventId)).toBe(0);
  });

  describe('hash chain', () => {
    /** A tenant with five stored events (two batches and a single one), in chain order. */
    async function chainOfFive() {
      const tenantId = randomUUID();
      const events = ['a', 'b', 'c', 'd', 'e'].map((kind) => completeAuditEvent({ tenantId, kind, reason: `event ${kind}` }));
      await publisher.publishBatch(tenantId, events.slice(0, 2), randomUUID());
      await waitForEvent(tenantId, events[1]?.eventId ?? '');
      await publisher.publishBatch(tenantId, events.slice(2, 4), randomUUID());
      await waitForEvent(tenantId, events[3]?.eventId ?? '');
      await publisher.publish(events[4] ?? { tenantId, kind: 'missing' });
      await waitForEvent(tenantId, events[4]?.eventId ?? '');
      return { tenantId, ids: events.map((e) => e.eventId) };
    }
    const tamper = (sql: string, params: unknown[]) => withPg(db.ownerUrl, (c) => c.query(sql, params));

    it('links every stored record, across batches and single events, and verifies intact', async () => {
      const { tenantId, ids } = await chainOfFive();
      const verdict = await client.verifyChain({ tenantId });
      expect({ intact: verdict.intact, checked: verdict.recordsChecked, broken: verdict.firstBroken }).toEqual({
        intact: true,
        checked: 5n,
        broken: undefined,
      });
      const seqs = await withPg(
        db.ownerUrl,
        async (c) =>
          (
            await c.query<{ event_id: string; chain_seq: string }>(
              'SELECT event_id, chain_seq FROM audit_events WHERE tenant_id = $1 ORDER BY chain_seq',
              [tenantId],
            )
          ).rows,
      );
      expect(seqs).toEqual(ids.map((id, index) => ({ event_id: id, chain_seq: String(index + 1) })));
    });

    it('reports exactly the record whose stored fields were changed directly in Postgres', async () => {
      const { tenantId, ids } = await chainOfFive();
      await tamper('UPDATE audit_events SET reason = $1 WHERE event_id = $2', ['rewritten', ids[2]]);
      const verdict = await client.verifyChain({ tenantId });
      expect(verdict.intact).toBe(false);
      expect(verdict.firstBroken).toMatchObject({ chainSeq: 3n, eventId: ids[2], reason: 'record_altered' });
    });

    it('reports a deleted record, a relinked record and records cut off the end', async () => {
      const deleted = await chainOfFive();
      await tamper('DELETE FROM audit_events WHERE event_id = $1', [deleted.ids[1]]);
      expect((await client.verifyChain({ tenantId: deleted.tenantId })).firstBroken).toMatchObject({
        chainSeq: 2n,
        reason: 'record_missing',
      });

      const relinked = await chainOfFive();
      await tamper('UPDATE audit_events SET prev_hash = $1 WHERE event_id = $2', [Buffer.alloc(32, 9), relinked.ids[3]]);
      expect((await client.verifyChain({ tenantId: relinked.tenantId })).firstBroken).toMatchObject({
        chainSeq: 4n,
        eventId: relinked.ids[3],
        reason: 'link_altered',
      });

      const truncated = await chainOfFive();
      await tamper('DELETE FROM audit_events WHERE event_id = $1', [truncated.ids[4]]);
      expect((await client.verifyChain({ tenantId: truncated.tenantId })).firstBroken).toMatchObject({
        chainSeq: 5n,
        reason: 'head_mismatch',
      });
    });
  });

  it('stores one row when a message is redelivered after its write committed', async () => {
    const tenantId = randomUUID();
    const eventId = randomUUID();
    failAfterCommit.add(eventId);
    const duplicatesBefore = ingest.counts().duplicates;
    await publisher.publish({ eventId, tenantId, kind: 'tool.call' });
    await pollUntil(() => ((attempts.get(eventId)?.length ?? 0) >= 2 ? true : undefined), { what: 'the redelivery' });
    await pollUntil(() => (ingest.counts().duplicates > duplicatesBefore ? true : undefined), { what: 'the duplicate to be seen' });
    expect(await rowCount(eventId)).toBe(1);
  });

  it('does not store an event filed under another tenant, and acknowledges it', async () => {
    const tenantA = randomUUID();
    const tenantB = randomUUID();
    const eventId = randomUUID();
    const rejectedBefore = ingest.counts().rejectedByReason.tenant_mismatch;
    const bytes = toBinary(AuditEventSchema, create(AuditEventSchema, { eventId, tenantId: tenantA, kind: 'authz.decision' }));
    await jetstream(nc).publish(`${prefix}.audit.${tenantB}.authz.decision`, bytes, { msgID: eventId });
    await pollUntil(() => (ingest.counts().rejectedByReason.tenant_mismatch > rejectedBefore ? true : undefined), {
      what: 'the rejection',
    });
    expect(await rowCount(eventId)).toBe(0);
    expect(await listAll(tenantA, 50)).toHaveLength(0);
    expect(await listAll(tenantB, 50)).toHaveLength(0);
    const jsm = await jetstreamManager(nc);
    await pollUntil(
      async () => {
        const info = await jsm.consumers.info(stream.name, durable);
        return info.num_pending === 0 && info.num_ack_pending === 0 ? true : undefined;
      },
      { what: 'every message to be acknowledged' },
    );
  });

  it('pages newest first, returning every event exactly once', async () => {
    const tenantId = randomUUID();
    const published: string[] = [];
    for (let i = 0; i < 7; i += 1) published.push(await publisher.publish({ tenantId, kind: 'device.heartbeat' }));
    await pollUntil(async () => ((await listAll(tenantId, 200)).length === 7 ? true : undefined), { what: 'all seven events' });
    const paged = (await listAll(tenantId, 3)).map((e) => e.eventId);
    expect(paged).toHaveLength(7);
    expect(new Set(paged).size).toBe(7);
    expect(paged).toEqual([...published].reverse());
    const first = await client.listEvents({ tenantId, pageSize: 3 });
    expect(first.events).toHaveLength(3);
    expect(first.nextPageToken).not.toBe('');
  });

  it('rejects bad page sizes, malformed page tokens and tenant ids with INVALID_ARGUMENT', async () => {
    const tenantId = randomUUID();
    await expect(client.listEvents({ tenantId, pageSize: 201 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(client.listEvents({ tenantId, pageSize: -1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(client.listEvents({ tenantId, pageToken: 'not-a-cursor!' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(client.listEvents({ tenantId: 'acme' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  describe('row-level security', () => {
    it('returns zero rows when no tenant is set', async () => {
      const visible = await withPg(db.appUrl, async (c) => (await c.query<{ event_id: string }>('SELECT event_id FROM audit_events')).rows);
      expect(visible).toHaveLength(0);
      const all = await withPg(
        db.ownerUrl,
        async (c) => (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_events')).rows[0],
      );
      expect(all?.n).toBeGreaterThan(0);
    });

    it("with tenant A set never returns tenant B's rows, nor writes into B", async () => {
      const tenantA = randomUUID();
      const tenantB = randomUUID();
      const eventA = await publisher.publish({ tenantId: tenantA, kind: 'login' });
      const eventB = await publisher.publish({ tenantId: tenantB, kind: 'login' });
      await waitForEvent(tenantA, eventA);
      await waitForEvent(tenantB, eventB);
      expect((await listAll(tenantA, 50)).map((e) => e.eventId)).toEqual([eventA]);
      const rows = await withPg(db.appUrl, async (c) => {
        await c.query('BEGIN');
        await c.query("SELECT set_config('app.tenant_id', $1, true)", [tenantA]);
        const result = await c.query<{ tenant_id: string }>('SELECT tenant_id FROM audit_events');
        await expect(
          c.query("INSERT INTO audit_events (event_id, tenant_id, kind) VALUES ($1, $2, 'login')", [randomUUID(), tenantB]),
        ).rejects.toThrow(/row-level security/);
        await c.query('ROLLBACK');
        return result.rows;
      });
      expect(rows).toEqual([{ tenant_id: tenantA }]);
    });
  });

  describe('append-only', () => {
    it('lets the application role insert but never update, delete or truncate', async () => {
      const tenantId = randomUUID();
      const eventId = randomUUID();
      const inTenant = <T>(fn: (c: Parameters<Parameters<typeof withPg>[1]>[0]) => Promise<T>) =>
        withPg(db.appUrl, async (c) => {
          await c.query('BEGIN');
          try {
            await c.query("SELECT set_config('app.tenant_id', $1, true)", [tenantId]);
            const result = await fn(c);
            await c.query('COMMIT');
            return result;
          } catch (error) {
            await c.query('ROLLBACK');
            throw error;
          }
        });
      await inTenant((c) => c.query("INSERT INTO audit_events (event_id, tenant_id, kind) VALUES ($1, $2, 'login')", [eventId, tenantId]));
      await expect(inTenant((c) => c.query("UPDATE audit_events SET reason = 'tampered' WHERE event_id = $1", [eventId]))).rejects.toThrow(
        /permission denied/,
      );
      await expect(inTenant((c) => c.query('DELETE FROM audit_events WHERE event_id = $1', [eventId]))).rejects.toThrow(
        /permission denied/,
      );
      await expect(inTenant((c) => c.query('TRUNCATE audit_events'))).rejects.toThrow(/permission denied/);
      // A chain head moves forward but is never removed.
      await inTenant((c) =>
        c.query("INSERT INTO audit_chain_heads (tenant_id, last_seq, last_hash) VALUES ($1, 0, decode(repeat('00', 32), 'hex'))", [
          tenantId,
        ]),
      );
      await inTenant((c) => c.query('UPDATE audit_chain_heads SET last_seq = 1 WHERE tenant_id = $1', [tenantId]));
      await expect(inTenant((c) => c.query('DELETE FROM audit_chain_heads WHERE tenant_id = $1', [tenantId]))).rejects.toThrow(
        /permission denied/,
      );
      await expect(inTenant((c) => c.query('TRUNCATE audit_chain_heads'))).rejects.toThrow(/permission denied/);
      const stored = await withPg(
        db.ownerUrl,
        async (c) => (await c.query<{ reason: string | null }>('SELECT reason FROM audit_events WHERE event_id = $1', [eventId])).rows,
      );
      expect(stored).toEqual([{ reason: null }]);
    });
  });
});
