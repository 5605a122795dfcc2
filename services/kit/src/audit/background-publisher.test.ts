import { describe, expect, it } from '@jest/globals';
import type { AuditEvent } from '@portcullis/proto/audit';
import { createLogger } from '../logger.js';
import type { AuditEventInit } from './audit-publisher.js';
import { createBackgroundAuditPublisher } from './background-publisher.js';

const logger = createLogger({ name: 'background-publisher-test', level: 'silent' });
const tenantA = '00000000-0000-4000-8000-00000000000a';
const tenantB = '00000000-0000-4000-8000-00000000000b';
const event = (kind: string, tenantId = tenantA): AuditEventInit => ({ tenantId, kind });
const noWait = () => Promise.resolve();

/** A JetStream stand-in: fails the first `failures` batches, then stores; `hold` keeps acks back. */
function fakeStream({ failures = 0 } = {}) {
  const stored: AuditEvent[] = [];
  const batches: { tenantId: string; size: number; batchId: string }[] = [];
  const state = { failures, held: [] as (() => void)[], hold: false };
  return {
    state,
    stored,
    batches,
    publisher: {
      async publishBatch(tenantId: string, events: readonly AuditEvent[], batchId: string): Promise<void> {
        batches.push({ tenantId, size: events.length, batchId });
        if (state.hold) await new Promise<void>((resolve) => state.held.push(resolve));
        if (state.failures > 0) {
          state.failures -= 1;
          throw new Error('nats down');
        }
        for (const e of events) if (!stored.some((s) => s.eventId === e.eventId)) stored.push(e);
      },
    },
  };
}

describe('background audit publisher', () => {
  it('accepts at once with the id, trace id and time fixed, and stores the event', async () => {
    const stream = fakeStream();
    const audit = createBackgroundAuditPublisher({ publisher: stream.publisher, maxPending: 10, logger, sleep: noWait });
    const id = await audit.publish(event('authz.decision'));
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    await expect(audit.drain(1_000)).resolves.toBe(0);
    expect(stream.stored).toHaveLength(1);
    expect(stream.stored[0]).toMatchObject({
      eventId: id,
      kind: 'authz.decision',
      tenantId: tenantA,
      occurredAt: expect.anything() as unknown,
    });
  });

  it('sends events accepted together as one batch per tenant', async () => {
    const stream = fakeStream();
    const audit = createBackgroundAuditPublisher({ publisher: stream.publisher, maxPending: 100, maxBatch: 3, logger, sleep: noWait });
    for (const kind of ['a', 'b', 'c', 'd']) await audit.publish(event(kind));
    await audit.publish(event('e', tenantB));
    await audit.drain(1_000);
    expect(stream.batches.map(({ tenantId, size }) => [tenantId, size])).toEqual([
      [tenantA, 3],
      [tenantA, 1],
      [tenantB, 1],
    ]);
    expect(stream.stored.map((e) => e.kind).sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('lets a batch that is not full linger, so events accepted meanwhile leave with it', async () => {
    const stream = fakeStream();
    const waits: number[] = [];
    const later: { audit?: ReturnType<typeof createBackgroundAuditPublisher> } = {};
    const audit = createBackgroundAuditPublisher({
      publisher: stream.publisher,
      maxPending: 100,
      lingerMs: 10,
      logger,
      sleep: async (ms) => {
        waits.push(ms);
        // Events accepted while the batch lingers.
        if (waits.length === 1) for (const kind of ['b', 'c']) await later.audit?.publish(event(kind));
      },
    });
    later.audit = audit;
    await audit.publish(event('a'));
    await audit.drain(1_000);
    expect(waits).toEqual([10]);
    expect(stream.batches.map((b) => b.size)).toEqual([3]);
  });

  it('retries a batch with backoff under the same message id until stored: nothing lost, nothing twice', async () => {
    const stream = fakeStream({ failures: 5 });
    const waits: number[] = [];
    const audit = createBackgroundAuditPublisher({
      publisher: stream.publisher,
      maxPending: 10,
      logger,
      retryDelaysMs: [10, 20, 40],
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
    });
    const ids = [await audit.publish(event('a')), await audit.publish(event('b'))];
    await expect(audit.drain(1_000)).resolves.toBe(0);
    expect(stream.stored.map((e) => e.eventId).sort()).toEqual([...ids].sort());
    expect(new Set(stream.batches.map((b) => b.batchId)).size).toBe(1);
    expect(audit.failedAttempts()).toBe(5);
    expect(waits).toEqual([10, 20, 40, 40, 40]);
  });

  it('halves a batch NATS refuses as too large until it fits, and counts a single event that never will', async () => {
    const sizes: number[] = [];
    const stored: string[] = [];
    const tooLarge = new Error('event bus did not accept the event', { cause: new Error("'payload' max_payload size exceeded") });
    const audit = createBackgroundAuditPublisher({
      publisher: {
        publishBatch(_tenantId, events) {
          sizes.push(events.length);
          if (events.length > 2 || events.some((e) => e.kind === 'huge')) return Promise.reject(tooLarge);
          stored.push(...events.map((e) => e.kind));
          return Promise.resolve();
        },
      },
      maxPending: 100,
      logger,
      sleep: noWait,
    });
    for (const kind of ['a', 'b', 'c', 'd', 'e', 'huge']) await audit.publish(event(kind));
    await expect(audit.drain(1_000)).resolves.toBe(0);
    expect(stored).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(audit.unpublishable()).toBe(1);
    expect(audit.failedAttempts()).toBe(0);
    expect(sizes[0]).toBe(6);
  });

  it('refuses (so the caller denies) once maxPending events await their ack', async () => {
    const stream = fakeStream();
    stream.state.hold = true;
    const audit = createBackgroundAuditPublisher({ publisher: stream.publisher, maxPending: 2, logger, sleep: noWait });
    await audit.publish(event('a'));
    await audit.publish(event('b'));
    await expect(audit.publish(event('c'))).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(audit.pending()).toBe(2);
    stream.state.hold = false;
    await new Promise((resolve) => setImmediate(resolve));
    for (const release of stream.state.held) release();
    await expect(audit.drain(1_000)).resolves.toBe(0);
    await audit.publish(event('d'));
    await audit.drain(1_000);
    expect(stream.stored.map((e) => e.kind)).toEqual(['a', 'b', 'd']);
  });

  it('refuses a reserved kind, and reports what is left when the drain budget runs out', async () => {
    const stream = fakeStream();
    stream.state.hold = true;
    const audit = createBackgroundAuditPublisher({ publisher: stream.publisher, maxPending: 5, logger, sleep: noWait });
    await expect(audit.publish(event('_batch'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await audit.publish(event('a'));
    await expect(audit.drain(10)).resolves.toBe(1);
    for (const release of stream.state.held) release();
  });
});
