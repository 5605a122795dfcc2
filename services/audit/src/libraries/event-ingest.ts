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
  /** Stores records of one tenant in one statement; returns how many were new. Throws on a database failure. */
  storeMany(tenantId: string, records: readonly AuditRecord[]): Promise<number>;
  logger: Logger;
  subjectPrefix: string;
}

export type IngestOutcome = 'stored' | 'duplicate' | 'rejected';

export interface IngestCounts {
  stored: number;
  duplicates: number;
  rejected: number;
  rejectedByReason: Record<RejectReason, number>;
}

/**
 * Turns messages from the audit stream into stored events. Invalid messages are dropped
 * (logged without their payload and counted) so they are acknowledged rather than
 * redelivered forever; a storage failure is thrown so the message is redelivered.
 * Storing is idempotent on the event id, so redelivery never duplicates a row.
 */
export function createEventIngest({ store, storeMany, logger, subjectPrefix }: IngestDeps) {
  const counts = { stored: 0, duplicates: 0 };
  const rejectedByReason = Object.fromEntries(rejectReasons.map((reason) => [reason, 0])) as Record<RejectReason, number>;

  /** A batch: each valid event stored once (one statement), each invalid one refused and counted. */
  async function ingestBatch(message: InboundMessage & { seq?: number }): Promise<IngestOutcome> {
    const parsed = parseAuditBatch(message, subjectPrefix);
    if (!parsed.ok) {
      rejectedByReason[parsed.reason] += 1;
      logger.warn({ reason: parsed.reason, subject: message.subject, seq: message.seq }, 'audit batch rejected; not stored');
      return 'rejected';
    }
    for (const reason of parsed.rejected) rejectedByReason[reason] += 1;
    if (parsed.rejected.length > 0) {
      logger.warn({ reasons: parsed.rejected, subject: message.subject, seq: message.seq }, 'audit events of a batch rejected; not stored');
    }
    const stored = await storeMany(parsed.tenantId, parsed.records);
    counts.stored += stored;
    counts.duplicates += parsed.records.length - stored;
    if (stored > 0) return 'stored';
    return parsed.records.length > 0 ? 'duplicate' : 'rejected';
  }

  return {
    async ingest(message: InboundMessage & { seq?: number }): Promise<IngestOutcome> {
      if (isAuditBatch(message.subject, subjectPrefix)) return ingestBatch(message);
      const parsed = parseAuditMessage(message, subjectPrefix);
      if (!parsed.ok) {
        rejectedByReason[parsed.reason] += 1;
        logger.warn({ reason: parsed.reason, subject: message.subject, seq: message.seq }, 'audit event rejected; not stored');
        return 'rejected';
      }
      if (await store(parsed.record)) {
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
