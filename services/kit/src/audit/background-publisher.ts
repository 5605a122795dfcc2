import { randomUUID } from 'node:crypto';
import { context, ROOT_CONTEXT, type Context } from '@opentelemetry/api';
import type { AuditEvent } from '@portcullis/proto/audit';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { completeAuditEvent, type AuditEventInit, type AuditPublisher } from './audit-publisher.js';
import type { AuditSpool } from './spool.js';

export { auditSpoolConfigSchema, auditSpoolDirOf, checkAuditSpoolConfig, openAuditSpool, type AuditSpool } from './spool.js';

export interface BackgroundAuditPublisherOptions {
  publisher: Pick<AuditPublisher, 'publishBatch'>;
  /** Events accepted and neither acknowledged by JetStream nor spooled, at most; beyond it `publish` refuses. */
  maxPending: number;
  /** Events of one tenant in one message, at most. */
  maxBatch?: number;
  /**
   * How long a batch that is not full waits for more events before it leaves. Requests never wait
   * for it (events are accepted at once); it only trades a little audit lag for far fewer messages.
   */
  lingerMs?: number;
  logger: Logger;
  /** Waits between attempts; the last one repeats until the batch is stored. */
  retryDelaysMs?: readonly number[];
  sleep?: (ms: number) => Promise<void>;
  /**
   * Where a batch goes when JetStream has not acknowledged it after the first retry (and, while
   * the spool holds batches, every later one, to keep their order); replayed from there in order.
   * Without a spool, batches are retried in memory only.
   */
  spool?: Pick<AuditSpool, 'append' | 'oldest' | 'remove' | 'stats'>;
  /**
   * When `publish` resolves: `accepted` — at once (the event is in memory); `stored` — once
   * JetStream acknowledged the event or the spool holds it on disk (fsynced), for callers that must
   * not report success before their event is durable.
   */
  confirm?: 'accepted' | 'stored';
  /** With `confirm: 'stored'`: a publish not confirmed in this time rejects (the event may still be stored later). */
  confirmTimeoutMs?: number;
}

interface Accepted {
  event: AuditEvent & { eventId: string };
  /** The accepting request's context: the publish span of its batch continues that trace. */
  context: Context;
  /** With `confirm: 'stored'`: settles the caller's promise. */
  settle?: (error?: Error) => void;
}

const defaultRetryDelaysMs = [50, 200, 1_000, 3_000];
const sleepFor = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** NATS refuses a message above the server's max_payload; no retry of the same bytes can pass. */
function isTooLarge(error: unknown): boolean {
  for (let at: unknown = error, depth = 0; at instanceof Error && depth < 5; at = at.cause, depth += 1) {
    if (/max_payload/i.test(at.message)) return true;
  }
  return false;
}

/**
 * Audit events published without making the request wait for JetStream, and without losing them.
 *
 * - `publish` completes the event (id, trace id, time) and accepts it at once (or, with
 *   `confirm: 'stored'`, once it is acknowledged or spooled).
 * - Accepted events leave in batches, one message per tenant (`audit.<tenant>._batch`): whatever
 *   was accepted while the previous batch awaited its ack (and `lingerMs` more) goes next, up to
 *   `maxBatch` — one publish and one stored statement for many events at high load.
 * - A batch is retried with backoff under the same message id (the stream keeps it once; the
 *   consumer keeps each event once). When the first retry fails too, the batch is written to the
 *   `spool` (fsynced) and leaves memory; while the spool holds batches, later batches are appended
 *   behind them, and a replayer publishes the spooled batches in order under their own ids,
 *   deleting each after its ack. Batches a previous process spooled are replayed at start.
 * - A batch above NATS's message size limit is halved until it fits (halves under derived ids, so
 *   a replayed batch splits the same way); a single event above it cannot be stored and is logged
 *   and counted (`unpublishable`).
 * - Bounded: the spool by its own bytes and events; in memory, `maxPending` events. A batch the
 *   full spool refuses stays in memory, retried, and with `maxPending` events in memory `publish`
 *   throws DEPENDENCY_UNAVAILABLE, so the caller denies instead of acting unaudited. Nothing is
 *   dropped silently.
 * - `drain` (shutdown) waits until every accepted event is acknowledged or spooled (a failed
 *   attempt then goes to the spool at once); what is still only in memory when the process dies is
 *   lost — `pending()` and the shutdown log say how much.
 */
export function createBackgroundAuditPublisher({
  publisher,
  maxPending,
  maxBatch = 256,
  lingerMs = 0,
  logger,
  retryDelaysMs = defaultRetryDelaysMs,
  sleep = sleepFor,
  spool,
  confirm = 'accepted',
  confirmTimeoutMs = 10_000,
}: BackgroundAuditPublisherOptions) {
  const queue: Accepted[] = [];
  /** Taken from the queue and neither acknowledged nor spooled. */
  let sending = 0;
  let flushing = false;
  let draining = false;
  /** Set when `drain` ends: the replayer sends nothing more. */
  let stopped = false;
  let failures = 0;
  let unpublishable = 0;
  let spooledBatches = 0;
  let replayedBatches = 0;
  let idle: (() => void)[] = [];
  let replaying: Promise<void> | undefined;

  const pending = () => queue.length + sending;
  const delayOf = (attempt: number) => retryDelaysMs[Math.min(attempt, retryDelaysMs.length - 1)] ?? 1_000;
  const spoolHolds = () => (spool?.stats().batches ?? 0) > 0;

  /**
   * Publishes one batch and waits for the ack; a batch NATS refuses as too large is halved (each
   * half under `<id>-a`/`<id>-b`). Returns the ids of events too large to be stored at all; throws
   * when JetStream did not acknowledge.
   */
  async function send(tenantId: string, events: readonly AuditEvent[], batchId: string, parent: Context): Promise<string[]> {
    try {
      await context.with(parent, () => publisher.publishBatch(tenantId, events, batchId));
      return [];
    } catch (error) {
      if (!isTooLarge(error)) throw error;
      if (events.length > 1) {
        const half = Math.ceil(events.length / 2);
        return [
          ...(await send(tenantId, events.slice(0, half), `${batchId}-a`, parent)),
          ...(await send(tenantId, events.slice(half), `${batchId}-b`, parent)),
        ];
      }
      unpublishable += 1;
      logger.error({ eventId: events[0]?.eventId, kind: events[0]?.kind }, 'audit event larger than a NATS message may be; not stored');
      return events.map((event) => event.eventId);
    }
  }

  /** Writes a batch to the spool; false when the spool is full or cannot be written (the batch stays in memory). */
  async function toSpool(tenantId: string, events: AuditEvent[], batchId: string, attempt: number): Promise<boolean> {
    if (!spool) return false;
    try {
      if (await spool.append({ tenantId, batchId, events })) {
        spooledBatches += 1;
        startReplay();
        return true;
      }
      if (attempt % 20 === 0)
        logger.warn({ batchId, events: events.length, spool: spool.stats() }, 'audit spool is full; holding the batch in memory');
    } catch (error) {
      if (attempt % 20 === 0) logger.error({ err: error, batchId }, 'audit spool could not be written; holding the batch in memory');
    }
    return false;
  }

  function settle(items: readonly Accepted[], unstorable: readonly string[] = []): void {
    for (const item of items) {
      item.settle?.(
        unstorable.includes(item.event.eventId)
          ? new AppError('INVALID_ARGUMENT', 'the audit event is larger than the event bus accepts')
          : undefined,
      );
    }
  }

  async function deliver(tenantId: string, items: Accepted[]): Promise<void> {
    settle(items, await store(tenantId, items));
  }

  /** Stores one batch: acknowledged by JetStream, or spooled; resolves with the ids of events too large to store. */
  async function store(tenantId: string, items: Accepted[]): Promise<string[]> {
    const batchId = randomUUID();
    const events = items.map((item) => item.event);
    const parent = items[0]?.context ?? context.active();
    for (let attempt = 0; ; attempt += 1) {
      if (spoolHolds()) {
        // Behind batches already spooled: join them, so the replay keeps the order.
        if (await toSpool(tenantId, events, batchId, attempt)) return [];
      } else {
        try {
          return await send(tenantId, events, batchId, parent);
        } catch (error) {
          failures += 1;
          if (attempt === 0 || attempt % 20 === 0) {
            logger.warn({ err: error, batchId, events: events.length, attempt }, 'audit events not yet stored; retrying');
          }
        }
        if ((attempt >= 1 || draining) && (await toSpool(tenantId, events, batchId, attempt))) return [];
      }
      await sleep(delayOf(attempt));
    }
  }

  /**
   * Publishes spooled batches, oldest first, deleting each after its ack, until the spool is empty;
   * while draining, only until the first failure.
   */
  async function replay(): Promise<void> {
    if (!spool) return;
    for (let attempt = 0; !stopped;) {
      try {
        const batch = await spool.oldest();
        if (!batch) return;
        await send(batch.tenantId, batch.events, batch.batchId, context.active());
        await spool.remove(batch.file);
        replayedBatches += 1;
        if (attempt > 0) logger.info({ batchId: batch.batchId, spool: spool.stats() }, 'spooled audit events are being stored again');
        attempt = 0;
      } catch (error) {
        failures += 1;
        if (attempt % 20 === 0) logger.warn({ err: error, attempt, spool: spool.stats() }, 'spooled audit events not yet stored; retrying');
        if (draining) return;
        await sleep(delayOf(attempt));
        attempt += 1;
      }
    }
  }

  function startReplay(): void {
    if (!spool || replaying || stopped) return;
    // Not part of the request whose batch started it: its logs and spans stand alone.
    replaying = context.with(ROOT_CONTEXT, replay).finally(() => {
      replaying = undefined;
      // Appended while the last batch was acknowledged; at shutdown a failed replay is not repeated.
      if (!draining && spoolHolds()) startReplay();
    });
  }

  async function flush(): Promise<void> {
    flushing = true;
    try {
      while (queue.length > 0) {
        if (lingerMs > 0 && queue.length < maxBatch) await sleep(lingerMs);
        const taken = queue.splice(0, maxBatch);
        sending = taken.length;
        const byTenant = new Map<string, Accepted[]>();
        for (const item of taken) {
          const group = byTenant.get(item.event.tenantId);
          if (group) group.push(item);
          else byTenant.set(item.event.tenantId, [item]);
        }
        await Promise.all([...byTenant].map(([tenantId, items]) => deliver(tenantId, items)));
        sending = 0;
      }
    } finally {
      flushing = false;
      const waiting = idle;
      idle = [];
      for (const resolve of waiting) resolve();
    }
  }

  /** Waits for `settled` with a bound; the event stays queued either way. */
  function confirmed(eventId: string, settled: Promise<void>): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        reject(new AppError('DEPENDENCY_UNAVAILABLE', 'the audit trail did not confirm the event in time; request denied'));
      }, confirmTimeoutMs);
    });
    return Promise.race([settled, late])
      .then(() => eventId)
      .finally(() => clearTimeout(timer));
  }

  // Batches a previous process left in the spool go first.
  if (spoolHolds()) startReplay();

  return {
    /** Accepts an event for publication; resolves with its id at once, or once stored (`confirm: 'stored'`). */
    publish(init: AuditEventInit): Promise<string> {
      if (pending() >= maxPending) {
        return Promise.reject(new AppError('DEPENDENCY_UNAVAILABLE', 'the audit trail is unavailable; request denied'));
      }
      let event: Accepted['event'];
      try {
        event = completeAuditEvent(init);
      } catch (error) {
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
      const item: Accepted = { event, context: context.active() };
      const settled =
        confirm === 'stored'
          ? new Promise<void>((resolve, reject) => {
              item.settle = (error) => (error ? reject(error) : resolve());
            })
          : undefined;
      queue.push(item);
      // Events accepted in the same turn of the event loop leave together.
      if (!flushing) {
        flushing = true;
        setImmediate(() => void flush());
      }
      return settled ? confirmed(event.eventId, settled) : Promise.resolve(event.eventId);
    },

    /** Events accepted and neither acknowledged nor spooled (held in memory only). */
    pending,

    /** Events in the spool, waiting to be replayed. */
    spooled: () => spool?.stats().events ?? 0,

    /** Publish attempts that failed and were retried, since start. */
    failedAttempts: () => failures,

    /** Batches written to the spool, and spooled batches acknowledged and deleted, since start. */
    spoolCounts: () => ({ spooled: spooledBatches, replayed: replayedBatches }),

    /** Events that could not be stored at all (one event larger than NATS's message limit), since start. */
    unpublishable: () => unpublishable,

    /**
     * Waits until every accepted event is acknowledged or spooled, or `timeoutMs` passed; returns
     * how many are left in memory. Stops the replayer: what it has not sent stays spooled for the
     * next start.
     */
    async drain(timeoutMs: number): Promise<number> {
      draining = true;
      let timer: NodeJS.Timeout | undefined;
      const budget = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      });
      if (pending() > 0) await Promise.race([new Promise<void>((resolve) => idle.push(resolve)), budget]);
      if (replaying) await Promise.race([replaying, budget]);
      stopped = true;
      clearTimeout(timer);
      if (pending() > 0) logger.error({ pending: pending() }, 'audit events not stored at shutdown');
      if (spoolHolds()) logger.warn({ spool: spool?.stats() }, 'audit events left in the spool; replayed at the next start');
      return pending();
    },
  };
}

export type BackgroundAuditPublisher = ReturnType<typeof createBackgroundAuditPublisher>;
