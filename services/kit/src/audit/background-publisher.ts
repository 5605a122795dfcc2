import { randomUUID } from 'node:crypto';
import { context, type Context } from '@opentelemetry/api';
import type { AuditEvent } from '@portcullis/proto/audit';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { completeAuditEvent, type AuditEventInit, type AuditPublisher } from './audit-publisher.js';

export interface BackgroundAuditPublisherOptions {
  publisher: Pick<AuditPublisher, 'publishBatch'>;
  /** Events accepted but not yet acknowledged by JetStream, at most; beyond it `publish` refuses. */
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
}

interface Accepted {
  event: AuditEvent & { eventId: string };
  /** The accepting request's context: the publish span of its batch continues that trace. */
  context: Context;
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
 * - `publish` completes the event (id, trace id, time) and accepts it at once.
 * - Accepted events leave in batches, one message per tenant (`audit.<tenant>._batch`): whatever
 *   was accepted while the previous batch awaited its ack (and `lingerMs` more) goes next, up to
 *   `maxBatch` — one publish and one stored statement for many events at high load.
 * - A batch that is not acknowledged is retried with backoff under the same message id (the
 *   stream keeps it once; the consumer keeps each event once) until it is stored. A batch above
 *   NATS's message size limit is halved until it fits; a single event above it cannot be stored
 *   and is logged and counted (`unpublishable`).
 * - Bounded: with `maxPending` events unacknowledged (JetStream unreachable for a while),
 *   `publish` throws DEPENDENCY_UNAVAILABLE, so the caller denies instead of acting unaudited.
 * - `drain` waits for every accepted event (at shutdown); what is still pending when the process
 *   dies is lost — `pending()` and the shutdown log say how much.
 */
export function createBackgroundAuditPublisher({
  publisher,
  maxPending,
  maxBatch = 256,
  lingerMs = 0,
  logger,
  retryDelaysMs = defaultRetryDelaysMs,
  sleep = sleepFor,
}: BackgroundAuditPublisherOptions) {
  const queue: Accepted[] = [];
  /** Taken from the queue and not yet acknowledged. */
  let sending = 0;
  let flushing = false;
  let failures = 0;
  let unpublishable = 0;
  let idle: (() => void)[] = [];

  const pending = () => queue.length + sending;

  async function deliver(tenantId: string, items: Accepted[]): Promise<void> {
    const batchId = randomUUID();
    const events = items.map((item) => item.event);
    const parent = items[0]?.context ?? context.active();
    for (let attempt = 0; ; attempt += 1) {
      try {
        await context.with(parent, () => publisher.publishBatch(tenantId, events, batchId));
        return;
      } catch (error) {
        if (isTooLarge(error)) {
          // Retrying cannot help: halve the batch (each half its own message), down to one event.
          if (items.length > 1) {
            const half = Math.ceil(items.length / 2);
            await deliver(tenantId, items.slice(0, half));
            await deliver(tenantId, items.slice(half));
          } else {
            unpublishable += 1;
            logger.error(
              { eventId: events[0]?.eventId, kind: events[0]?.kind },
              'audit event larger than a NATS message may be; not stored',
            );
          }
          return;
        }
        failures += 1;
        if (attempt === 0 || attempt % 20 === 0) {
          logger.warn({ err: error, batchId, events: events.length, attempt }, 'audit events not yet stored; retrying');
        }
        await sleep(retryDelaysMs[Math.min(attempt, retryDelaysMs.length - 1)] ?? 1_000);
      }
    }
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

  return {
    /** Accepts an event for publication; resolves with its id at once. */
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
      queue.push({ event, context: context.active() });
      // Events accepted in the same turn of the event loop leave together.
      if (!flushing) {
        flushing = true;
        setImmediate(() => void flush());
      }
      return Promise.resolve(event.eventId);
    },

    /** Events accepted and not yet acknowledged. */
    pending,

    /** Publish attempts that failed and were retried, since start. */
    failedAttempts: () => failures,

    /** Events that could not be stored at all (one event larger than NATS's message limit), since start. */
    unpublishable: () => unpublishable,

    /** Waits until every accepted event is stored, or `timeoutMs` passed; returns how many are left. */
    async drain(timeoutMs: number): Promise<number> {
      if (pending() > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => idle.push(resolve)),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, timeoutMs);
          }),
        ]);
        clearTimeout(timer);
      }
      if (pending() > 0) logger.error({ pending: pending() }, 'audit events not stored at shutdown');
      return pending();
    },
  };
}

export type BackgroundAuditPublisher = ReturnType<typeof createBackgroundAuditPublisher>;
