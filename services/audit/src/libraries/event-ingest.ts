import type { Logger } from '@portcullis/kit';
import type { AuditRecord } from './audit-record.js';
import {
  isAuditBatch,
  parseAuditBatch,
  parseAuditMessage,
  rejectReasons,
  type InboundMessage,
  type RejectReason,
} from './event-validation.js';

export interface IngestDeps {
  /** Stores the record inside its tenant's scope; false when its event id was already stored. Throws on a database failure. */
  store(record: AuditRecord): Promise<boolean>;
  /**
   * Stores records of one tenant in one transaction, in their order; resolves with, per record,
   * whether it was stored (false: its id was stored already, or came earlier in the list). Throws
   * on a database failure, having stored none of them.
   */
  storeMany(tenantId: string, records: readonly AuditRecord[]): Promise<readonly boolean[]>;
  logger: Logger;
  subjectPrefix: string;
  /** Writes (transactions) running at once across tenants, at most; keep it below the database pool's size. Default 4. */
  maxConcurrentWrites?: number;
  /** Events of one tenant in one transaction, at most, when several batches of that tenant wait together. Default 4,000. */
  maxEventsPerWrite?: number;
  /** Counts every refused event or batch by reason (`portcullis_audit_events_rejected_total`). */
  rejected?: { inc(labels: { reason: string }): void };
}

export type IngestOutcome = 'stored' | 'duplicate' | 'rejected';

export interface IngestCounts {
  stored: number;
  duplicates: number;
  rejected: number;
  rejectedByReason: Record<RejectReason, number>;
}

interface Settle<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
}

/** A write waiting in its tenant's lane: a single event, or the valid events of one batch message. */
type Write =
  { kind: 'one'; record: AuditRecord; done: Settle<boolean> } | { kind: 'many'; records: readonly AuditRecord[]; done: Settle<number> };

interface Lane {
  /** Writes not yet taken, in arrival order. */
  queue: Write[];
  /** The last turn queued; each write's turn runs after every earlier one. */
  tail: Promise<void>;
}

/** At most `size` holders at once; the others wait in arrival order. */
function createSlots(size: number) {
  let free = size;
  const waiting: (() => void)[] = [];
  return {
    async acquire(): Promise<void> {
      if (free > 0) {
        free -= 1;
        return;
      }
      await new Promise<void>((resolve) => waiting.push(resolve));
    },
    release(): void {
      const next = waiting.shift();
      if (next) next();
      else free += 1;
    },
  };
}

/**
 * Turns messages from the audit stream into stored events. Invalid messages are dropped
 * (logged without their payload and counted) so they are acknowledged rather than
 * redelivered forever; a storage failure is thrown so the message is redelivered.
 * Storing is idempotent on the event id, so redelivery never duplicates a row.
 *
 * Messages may be ingested concurrently. Each tenant's writes go through its own lane, one after
 * the other in arrival order (so its chain follows the stream's order); tenants are written in
 * parallel, `maxConcurrentWrites` at a time. Batches of one tenant that wait in its lane together
 * are stored in one transaction (at most `maxEventsPerWrite` events) and each message's `ingest`
 * resolves once that transaction committed — or rejects, for every message in it, if it failed.
 */
export function createEventIngest({
  store,
  storeMany,
  logger,
  subjectPrefix,
  maxConcurrentWrites = 4,
  maxEventsPerWrite = 4_000,
  rejected,
}: IngestDeps) {
  const counts = { stored: 0, duplicates: 0 };
  const rejectedByReason = Object.fromEntries(rejectReasons.map((reason) => [reason, 0])) as Record<RejectReason, number>;
  const refuse = (reason: RejectReason) => {
    rejectedByReason[reason] += 1;
    rejected?.inc({ reason });
  };
  const lanes = new Map<string, Lane>();
  const slots = createSlots(maxConcurrentWrites);

  /** Writes the queue's first write (and, for a batch, the batches behind it), and settles each write it took. */
  async function takeTurn(tenantId: string, lane: Lane, own: Write): Promise<void> {
    // Every earlier write is settled by now: `own` is first unless an earlier turn took it along.
    if (lane.queue[0] !== own) return;
    await slots.acquire();
    try {
      if (own.kind === 'one') {
        lane.queue.shift();
        await store(own.record).then(own.done.resolve, own.done.reject);
        return;
      }
      const group: Extract<Write, { kind: 'many' }>[] = [];
      const first = (): Write | undefined => lane.queue[0];
      let events = 0;
      for (let next = first(); next?.kind === 'many'; next = first()) {
        if (group.length > 0 && events + next.records.length > maxEventsPerWrite) break;
        group.push(next);
        events += next.records.length;
        lane.queue.shift();
      }
      try {
        const stored = await storeMany(
          tenantId,
          group.flatMap((write) => write.records),
        );
        let at = 0;
        for (const write of group) {
          let n = 0;
          for (let i = 0; i < write.records.length; i += 1) if (stored[at + i] === true) n += 1;
          at += write.records.length;
          write.done.resolve(n);
        }
      } catch (error) {
        if (group.length === 1) {
          group[0]?.done.reject(error);
          return;
        }
        // One message the database refuses must not hold back the others: each on its own.
        for (const write of group) {
          await storeMany(tenantId, write.records).then((stored) => {
            write.done.resolve(stored.filter(Boolean).length);
          }, write.done.reject);
        }
      }
    } finally {
      slots.release();
    }
  }

  /** Queues a write in its tenant's lane; its turn runs in the caller's context (its trace). */
  function enqueue(tenantId: string, write: Write): void {
    let lane = lanes.get(tenantId);
    if (!lane) {
      lane = { queue: [], tail: Promise.resolve() };
      lanes.set(tenantId, lane);
    }
    const current = lane;
    current.queue.push(write);
    const turn = current.tail
      .then(() => takeTurn(tenantId, current, write))
      .catch((error: unknown) => {
        // Not expected (a turn settles every write it takes), but a message must never be left unanswered.
        logger.error({ err: error, tenantId }, 'audit write failed unexpectedly');
        write.done.reject(error);
      });
    current.tail = turn;
    void turn.then(() => {
      if (current.tail === turn) lanes.delete(tenantId);
    });
  }

  const storeOne = (record: AuditRecord) =>
    new Promise<boolean>((resolve, reject) => {
      enqueue(record.tenantId, { kind: 'one', record, done: { resolve, reject } });
    });

  const storeBatch = (tenantId: string, records: readonly AuditRecord[]) =>
    new Promise<number>((resolve, reject) => {
      enqueue(tenantId, { kind: 'many', records, done: { resolve, reject } });
    });

  /** A batch: each valid event stored once, each invalid one refused and counted. */
  async function ingestBatch(message: InboundMessage & { seq?: number }): Promise<IngestOutcome> {
    const parsed = parseAuditBatch(message, subjectPrefix);
    if (!parsed.ok) {
      refuse(parsed.reason);
      logger.warn({ reason: parsed.reason, subject: message.subject, seq: message.seq }, 'audit batch rejected; not stored');
      return 'rejected';
    }
    for (const reason of parsed.rejected) refuse(reason);
    if (parsed.rejected.length > 0) {
      logger.warn({ reasons: parsed.rejected, subject: message.subject, seq: message.seq }, 'audit events of a batch rejected; not stored');
    }
    if (parsed.records.length === 0) return 'rejected';
    const stored = await storeBatch(parsed.tenantId, parsed.records);
    counts.stored += stored;
    counts.duplicates += parsed.records.length - stored;
    return stored > 0 ? 'stored' : 'duplicate';
  }

  return {
    async ingest(message: InboundMessage & { seq?: number }): Promise<IngestOutcome> {
      if (isAuditBatch(message.subject, subjectPrefix)) return ingestBatch(message);
      const parsed = parseAuditMessage(message, subjectPrefix);
      if (!parsed.ok) {
        refuse(parsed.reason);
        logger.warn({ reason: parsed.reason, subject: message.subject, seq: message.seq }, 'audit event rejected; not stored');
        return 'rejected';
      }
      if (await storeOne(parsed.record)) {
        counts.stored += 1;
        return 'stored';
      }
      counts.duplicates += 1;
      logger.debug({ eventId: parsed.record.eventId, seq: message.seq }, 'audit event already stored');
      return 'duplicate';
    },

    /** Running totals since start (exported as metrics later). */
    counts(): IngestCounts {
      const rejected = Object.values(rejectedByReason).reduce((sum, n) => sum + n, 0);
      return { ...counts, rejected, rejectedByReason: { ...rejectedByReason } };
    },
  };
}

export type EventIngest = ReturnType<typeof createEventIngest>;

export interface StoredEventMetrics {
  /** `portcullis_audit_events_stored_total`: events newly stored (a repeat of a stored id is not counted). */
  stored: { inc(value?: number): void };
  /** `portcullis_audit_ingest_lag_seconds`: from the event's own time to its being stored. */
  lag: { observe(seconds: number): void };
}

/**
 * Counts what the store calls report as newly stored and observes each one's lag, so the
 * service's metrics follow the database's answer, not the messages' number.
 */
export function countStoredEvents({ stored, lag }: StoredEventMetrics, now: () => number = Date.now) {
  const observe = (record: AuditRecord, at: number) => {
    if (record.occurredAt) lag.observe(Math.max(0, (at - record.occurredAt.getTime()) / 1000));
  };
  return {
    one(record: AuditRecord, isNew: boolean): boolean {
      if (isNew) {
        stored.inc();
        observe(record, now());
      }
      return isNew;
    },
    many(records: readonly AuditRecord[], flags: readonly boolean[]): readonly boolean[] {
      const at = now();
      let fresh = 0;
      for (const [index, record] of records.entries()) {
        if (flags[index] !== true) continue;
        fresh += 1;
        observe(record, at);
      }
      if (fresh > 0) stored.inc(fresh);
      return flags;
    },
  };
}
