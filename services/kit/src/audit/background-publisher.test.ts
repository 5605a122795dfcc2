import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import type { AuditEvent } from '@portcullis/proto/audit';
import { createLogger } from '../logger.js';
import { completeAuditEvent, type AuditEventInit } from './audit-publisher.js';
import { createBackgroundAuditPublisher } from './background-publisher.js';
import { openAuditSpool, type SpooledBatch } from './spool.js';

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

/** Lets queued work (setImmediate, timers of 0) run; `until` polls a condition that way, with a bound. */
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let round = 0; round < 10_000; round += 1) {
    if (condition()) return;
    await tick();
  }
  throw new Error(`never happened: ${what}`);
}

/** A JetStream stand-in that is down (every publish fails) until `up()`; it keeps each batch id once, like the stream. */
function switchableStream() {
  const stored = new Map<string, AuditEvent>();
  const attempts: { batchId: string; kinds: string[] }[] = [];
  const acked = new Set<string>();
  const state = { down: true };
  return {
    stored,
    attempts,
    acked,
    up: () => {
      state.down = false;
    },
    publisher: {
      publishBatch(_tenantId: string, events: readonly AuditEvent[], batchId: string): Promise<void> {
        attempts.push({ batchId, kinds: events.map((e) => e.kind) });
        if (state.down) return Promise.reject(new Error('nats down'));
        acked.add(batchId);
        for (const e of events) if (!stored.has(e.eventId)) stored.set(e.eventId, e);
        return Promise.resolve();
      },
    },
  };
}

/** An in-memory spool with a bound of events; `appended` lists batch ids in the order they were written. */
function memorySpool(maxEvents = 1_000) {
  const batches: SpooledBatch[] = [];
  const appended: string[] = [];
  const totalEvents = () => batches.reduce((sum, b) => sum + b.events.length, 0);
  return {
    batches,
    appended,
    append(batch: SpooledBatch): Promise<boolean> {
      if (totalEvents() + batch.events.length > maxEvents) return Promise.resolve(false);
      batches.push({ ...batch, events: [...batch.events] });
      appended.push(batch.batchId);
      return Promise.resolve(true);
    },
    oldest: () => Promise.resolve(batches[0] ? { ...batches[0], file: batches[0].batchId } : undefined),
    remove(file: string): Promise<void> {
      const at = batches.findIndex((b) => b.batchId === file);
      if (at >= 0) batches.splice(at, 1);
      return Promise.resolve();
    },
    stats: () => ({ batches: batches.length, events: totalEvents(), bytes: 0, corrupt: 0 }),
  };
}

describe('background audit publisher with a spool', () => {
  it('spools a batch JetStream did not ack after the first retry, queues later ones behind it, and replays them in order once', async () => {
    const stream = switchableStream();
    const spool = memorySpool();
    const audit = createBackgroundAuditPublisher({ publisher: stream.publisher, maxPending: 100, logger, spool, sleep: tick });
    await audit.publish(event('a'));
    await until(() => spool.batches.length === 1, 'the first batch spooled');
    // Two attempts (the first and its retry), then the spool under the same id; memory is free again.
    const [first, retry] = stream.attempts;
    expect([first?.kinds, retry?.batchId, spool.appended[0]]).toEqual([['a'], first?.batchId, first?.batchId]);
    expect(audit.pending()).toBe(0);

    // While the spool holds batches, later ones go behind them without trying JetStream first.
    await audit.publish(event('b'));
    await until(() => spool.batches.length === 2, 'the second batch spooled');
    expect(stream.attempts.some((a) => a.kinds.includes('b'))).toBe(false);
    expect(audit.spooled()).toBe(2);

    stream.up();
    await until(() => spool.batches.length === 0, 'the spool replayed');
    expect([...stream.acked]).toEqual(spool.appended);
    expect([...stream.stored.values()].map((e) => e.kind)).toEqual(['a', 'b']);
    expect(audit.spoolCounts()).toEqual({ spooled: 2, replayed: 2 });

    // With the spool empty, events go straight to JetStream again.
    await audit.publish(event('c'));
    await expect(audit.drain(1_000)).resolves.toBe(0);
    expect(spool.appended).toHaveLength(2);
    expect([...stream.stored.values()].map((e) => e.kind)).toEqual(['a', 'b', 'c']);
  });

  it('replays what a previous process left in the spool under the same ids: stored once, even when one had been acked', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-publisher-test-'));
    try {
      const previous = await openAuditSpool({ dir, maxBytes: 1_000_000, maxEvents: 1_000, logger });
      const left = ['first', 'second'].map((kind, at) => ({
        tenantId: tenantA,
        batchId: `batch-${at}`,
        events: [completeAuditEvent(event(kind))],
      }));
      for (const batch of left) await previous.append(batch);

      // The first batch reached JetStream before the process died, but its file was not yet deleted.
      const stream = switchableStream();
      stream.up();
      await stream.publisher.publishBatch(tenantA, left[0]?.events ?? [], 'batch-0');

      const spool = await openAuditSpool({ dir, maxBytes: 1_000_000, maxEvents: 1_000, logger });
      const audit = createBackgroundAuditPublisher({ publisher: stream.publisher, maxPending: 10, logger, spool, sleep: tick });
      await until(() => spool.stats().batches === 0, 'the left-over batches replayed');
      expect(stream.attempts.map((a) => a.batchId)).toEqual(['batch-0', 'batch-0', 'batch-1']);
      expect([...stream.stored.values()].map((e) => e.kind)).toEqual(['first', 'second']);
      expect(await readdir(dir)).toEqual([]);
      await audit.drain(1_000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('holds a batch the full spool refuses in memory, refuses new events at maxPending, and loses none of those it accepted', async () => {
    const stream = switchableStream();
    const spool = memorySpool(2);
    const audit = createBackgroundAuditPublisher({ publisher: stream.publisher, maxPending: 2, logger, spool, sleep: tick });
    const accepted: string[] = [];
    accepted.push(await audit.publish(event('a')), await audit.publish(event('b')));
    await until(() => spool.batches.length === 1, 'a and b spooled');
    accepted.push(await audit.publish(event('c')));
    await tick();
    accepted.push(await audit.publish(event('d')));
    await until(() => audit.pending() === 2, 'c and d held in memory');
    await expect(audit.publish(event('e'))).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(spool.stats().events).toBe(2);

    stream.up();
    await until(() => spool.batches.length === 0 && audit.pending() === 0, 'everything stored');
    await expect(audit.drain(1_000)).resolves.toBe(0);
    expect([...stream.stored.keys()].sort()).toEqual([...accepted].sort());
    expect([...stream.stored.values()].map((e) => e.kind)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('at shutdown, spools at the first failed attempt and stops the replayer, leaving the spool for the next start', async () => {
    const stream = switchableStream();
    const spool = memorySpool();
    const audit = createBackgroundAuditPublisher({ publisher: stream.publisher, maxPending: 10, logger, spool, sleep: tick });
    await audit.publish(event('a'));
    await expect(audit.drain(1_000)).resolves.toBe(0);
    expect(stream.attempts).toHaveLength(2); // the batch's one attempt, then one replay attempt
    expect(spool.batches.map((b) => b.events.map((e) => e.kind))).toEqual([['a']]);
    const attemptsAtShutdown = stream.attempts.length;
    for (let round = 0; round < 20; round += 1) await tick();
    expect(stream.attempts).toHaveLength(attemptsAtShutdown);
  });

  it('splits a spooled batch that is too large under derived ids, so a repeated replay splits it the same way', async () => {
    const batchIds: string[] = [];
    const stored: string[] = [];
    const tooLarge = new Error("'payload' max_payload size exceeded");
    const spool = memorySpool();
    await spool.append({ tenantId: tenantA, batchId: 'spooled', events: ['a', 'b', 'c'].map((kind) => completeAuditEvent(event(kind))) });
    const audit = createBackgroundAuditPublisher({
      publisher: {
        publishBatch(_tenantId, events, batchId) {
          batchIds.push(batchId);
          if (events.length > 1) return Promise.reject(tooLarge);
          stored.push(...events.map((e) => e.kind));
          return Promise.resolve();
        },
      },
      maxPending: 10,
      logger,
      spool,
      sleep: tick,
    });
    await until(() => spool.batches.length === 0, 'the spooled batch replayed');
    expect(stored).toEqual(['a', 'b', 'c']);
    expect(batchIds).toEqual(['spooled', 'spooled-a', 'spooled-a-a', 'spooled-a-b', 'spooled-b']);
    await audit.drain(1_000);
  });
});

describe("background audit publisher confirming storage ('stored')", () => {
  it('resolves only once JetStream acknowledged the event', async () => {
    const stream = fakeStream();
    stream.state.hold = true;
    const audit = createBackgroundAuditPublisher({ publisher: stream.publisher, maxPending: 10, logger, sleep: noWait, confirm: 'stored' });
    let resolved = false;
    const published = audit.publish(event('a')).then((id) => {
      resolved = true;
      return id;
    });
    await until(() => stream.state.held.length === 1, 'the publish to be in flight');
    expect(resolved).toBe(false);
    for (const release of stream.state.held) release();
    const id = await published;
    expect(stream.stored.map((e) => e.eventId)).toEqual([id]);
  });

  it('resolves once the spool holds the event when JetStream is down', async () => {
    const stream = switchableStream();
    const spool = memorySpool();
    const audit = createBackgroundAuditPublisher({
      publisher: stream.publisher,
      maxPending: 10,
      logger,
      spool,
      sleep: tick,
      confirm: 'stored',
    });
    const id = await audit.publish(event('a'));
    expect(spool.batches.flatMap((b) => b.events.map((e) => e.eventId))).toEqual([id]);
    expect(stream.stored.size).toBe(0);
    stream.up();
    await until(() => stream.stored.has(id), 'the spooled event stored');
    await audit.drain(1_000);
  });

  it('rejects when the event is not stored in time, and when it can never be', async () => {
    const stream = fakeStream();
    stream.state.hold = true;
    const slow = createBackgroundAuditPublisher({
      publisher: stream.publisher,
      maxPending: 10,
      logger,
      sleep: noWait,
      confirm: 'stored',
      confirmTimeoutMs: 5,
    });
    await expect(slow.publish(event('a'))).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    for (const release of stream.state.held) release();

    const tooLarge = createBackgroundAuditPublisher({
      publisher: { publishBatch: () => Promise.reject(new Error('max_payload exceeded')) },
      maxPending: 10,
      logger,
      sleep: noWait,
      confirm: 'stored',
    });
    await expect(tooLarge.publish(event('huge'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(tooLarge.unpublishable()).toBe(1);
  });
});
