import { createHash } from 'node:crypto';
import type { AuditRecord } from './audit-record.js';

/** The hash a tenant's chain starts from (no record before the first). */
export const genesisHash: Buffer = Buffer.alloc(32);

/** A stored record with its place in its tenant's chain. */
export interface ChainedRecord extends AuditRecord {
  /** 1, 2, 3, … per tenant, in the order the records were stored. */
  chainSeq: bigint;
  prevHash: Buffer;
  recordHash: Buffer;
}

/** Attributes with their keys sorted: the same map always encodes the same way (jsonb reorders keys). */
function sortedAttributes(attributes: Record<string, string>): [string, string][] {
  return Object.entries(attributes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The hash of a record in its tenant's chain: SHA-256 of the previous record's hash and a
 * canonical encoding of every stored field and the record's sequence number. Changing any field,
 * the order, or a link changes it.
 */
export function chainHashOf(prevHash: Buffer, chainSeq: bigint, record: AuditRecord): Buffer {
  const canonical = JSON.stringify([
    'portcullis-audit-v1',
    chainSeq.toString(),
    record.eventId,
    record.tenantId,
    record.kind,
    record.principalKind,
    record.principalId,
    record.principalRole,
    record.principalTenantId,
    record.assistantId,
    record.object,
    record.action,
    record.outcome,
    record.reason,
    record.traceId,
    record.requestId,
    record.occurredAt?.toISOString() ?? null,
    sortedAttributes(record.attributes),
  ]);
  return createHash('sha256').update(prevHash).update(canonical).digest();
}

/** Links `records` onto a chain whose last record is `head`, in order. */
export function extendChain(head: { seq: bigint; hash: Buffer }, records: readonly AuditRecord[]): ChainedRecord[] {
  let { seq, hash } = head;
  return records.map((record) => {
    seq += 1n;
    const recordHash = chainHashOf(hash, seq, record);
    const chained = { ...record, chainSeq: seq, prevHash: hash, recordHash };
    hash = recordHash;
    return chained;
  });
}

export type BrokenLinkReason = 'record_altered' | 'link_altered' | 'record_missing' | 'head_mismatch';

export interface ChainVerdict {
  intact: boolean;
  recordsChecked: number;
  /** The first link that does not hold, when not intact. */
  firstBroken?: { chainSeq: bigint; eventId: string; reason: BrokenLinkReason };
}

/**
 * Walks a tenant's chain in sequence order and reports the first link that does not hold: a
 * record whose fields no longer hash to its stored hash (`record_altered`), a record whose stored
 * previous hash is not its predecessor's (`link_altered`), a sequence number skipped
 * (`record_missing`, a deleted record), or a head that does not name the last record.
 */
export async function verifyChain(
  records: AsyncIterable<ChainedRecord>,
  head: { seq: bigint; hash: Buffer } | undefined,
): Promise<ChainVerdict> {
  let expectedSeq = 1n;
  let prev: Buffer = genesisHash;
  let checked = 0;
  let lastEventId = '';
  for await (const record of records) {
    checked += 1;
    const broken = (reason: BrokenLinkReason): ChainVerdict => ({
      intact: false,
      recordsChecked: checked,
      firstBroken: { chainSeq: reason === 'record_missing' ? expectedSeq : record.chainSeq, eventId: record.eventId, reason },
    });
    if (record.chainSeq !== expectedSeq) return broken('record_missing');
    if (!record.prevHash.equals(prev)) return broken('link_altered');
    if (!chainHashOf(record.prevHash, record.chainSeq, record).equals(record.recordHash)) return broken('record_altered');
    prev = record.recordHash;
    expectedSeq += 1n;
    lastEventId = record.eventId;
  }
  const lastSeq = expectedSeq - 1n;
  if ((head?.seq ?? 0n) !== lastSeq || !(head?.hash ?? genesisHash).equals(prev)) {
    return {
      intact: false,
      recordsChecked: checked,
      firstBroken: { chainSeq: lastSeq + 1n, eventId: lastEventId, reason: 'head_mismatch' },
    };
  }
  return { intact: true, recordsChecked: checked };
}

export interface ChainReader {
  /** Chained records in sequence order after `afterSeq`, at most `limit`. */
  listChain(tenantId: string, page: { afterSeq: bigint; limit: number }): Promise<ChainedRecord[]>;
  chainHead(tenantId: string): Promise<{ seq: bigint; hash: Buffer } | undefined>;
}

/** Verifies a tenant's stored chain page by page (the head is read first: records appended meanwhile are not judged). */
export function createChainVerifier({ listChain, chainHead }: ChainReader, pageSize = 1_000) {
  return async function verifyTenantChain(tenantId: string): Promise<ChainVerdict> {
    const head = await chainHead(tenantId);
    const until = head?.seq ?? 0n;
    async function* records(): AsyncIterable<ChainedRecord> {
      let afterSeq = 0n;
      while (afterSeq < until) {
        const page = await listChain(tenantId, { afterSeq, limit: pageSize });
        for (const record of page) {
          if (record.chainSeq > until) return;
          yield record;
        }
        const last = page[page.length - 1];
        if (!last || page.length < pageSize) return;
        afterSeq = last.chainSeq;
      }
    }
    return verifyChain(records(), head);
  };
}
