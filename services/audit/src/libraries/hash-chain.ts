import { createHash } from 'node:crypto';
import type { AuditRecord } from './audit-record.js';
import type { CheckpointClaim } from './checkpoints.js';

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
  return createHash('sha256').update(prevHash).update(canonicalOf(chainSeq, record)).digest();
}

/**
 * A record's stored fields other than its attributes, in the one fixed order both its hash and
 * the database's append function take them: event id, tenant, kind, principal (kind, id, role,
 * tenant), assistant, object, action, outcome, reason, trace id, request id, time.
 */
export function storedFieldsOf(record: AuditRecord): (string | null)[] {
  return [
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
  ];
}

/** The text a record's hash covers after the previous hash: its sequence number and every stored field, in a fixed order. */
export function canonicalOf(chainSeq: bigint, record: AuditRecord): string {
  return JSON.stringify(['portcullis-audit-v1', chainSeq.toString(), ...storedFieldsOf(record), sortedAttributes(record.attributes)]);
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

export type BrokenLinkReason =
  'record_altered' | 'link_altered' | 'record_missing' | 'head_mismatch' | 'checkpoint_mismatch' | 'checkpoint_unverifiable';

export interface ChainVerdict {
  intact: boolean;
  recordsChecked: number;
  /** The first link that does not hold, when not intact. */
  firstBroken?: { chainSeq: bigint; eventId: string; reason: BrokenLinkReason };
}

/** A stored checkpoint, its signature already checked against the trusted keys. */
export interface CheckedCheckpoint {
  chainSeq: bigint;
  recordHash: Buffer;
  signatureValid: boolean;
}

/**
 * Walks a tenant's chain in sequence order and reports the first link that does not hold: a
 * record whose fields no longer hash to its stored hash (`record_altered`), a record whose stored
 * previous hash is not its predecessor's (`link_altered`), a sequence number skipped
 * (`record_missing`, a deleted record), or a head that does not name the last record.
 *
 * Signed checkpoints (in sequence order) are checked as the walk reaches them: a checkpoint whose
 * signature does not hold is `checkpoint_unverifiable`; one naming a record that now has another
 * hash, or one beyond the last record, is `checkpoint_mismatch` — the chain was rewritten (every
 * hash recomputed) or cut back since it was signed.
 */
export async function verifyChain(
  records: AsyncIterable<ChainedRecord>,
  head: { seq: bigint; hash: Buffer } | undefined,
  checkpoints: AsyncIterable<CheckedCheckpoint> = (async function* () {})(),
): Promise<ChainVerdict> {
  let expectedSeq = 1n;
  let prev: Buffer = genesisHash;
  let checked = 0;
  let lastEventId = '';
  const pendingCheckpoints = checkpoints[Symbol.asyncIterator]();
  let nextCheckpoint = (await pendingCheckpoints.next()).value as CheckedCheckpoint | undefined;
  const brokenAt = (chainSeq: bigint, eventId: string, reason: BrokenLinkReason): ChainVerdict => ({
    intact: false,
    recordsChecked: checked,
    firstBroken: { chainSeq, eventId, reason },
  });
  for await (const record of records) {
    checked += 1;
    if (record.chainSeq !== expectedSeq) return brokenAt(expectedSeq, record.eventId, 'record_missing');
    if (!record.prevHash.equals(prev)) return brokenAt(record.chainSeq, record.eventId, 'link_altered');
    if (!chainHashOf(record.prevHash, record.chainSeq, record).equals(record.recordHash)) {
      return brokenAt(record.chainSeq, record.eventId, 'record_altered');
    }
    while (nextCheckpoint && nextCheckpoint.chainSeq <= record.chainSeq) {
      if (!nextCheckpoint.signatureValid) return brokenAt(nextCheckpoint.chainSeq, record.eventId, 'checkpoint_unverifiable');
      // Checkpoints are read in order and each names an existing sequence number, so the walk
      // meets every one exactly at its record unless that record is gone.
      if (nextCheckpoint.chainSeq !== record.chainSeq || !nextCheckpoint.recordHash.equals(record.recordHash)) {
        return brokenAt(nextCheckpoint.chainSeq, record.eventId, 'checkpoint_mismatch');
      }
      nextCheckpoint = (await pendingCheckpoints.next()).value as CheckedCheckpoint | undefined;
    }
    prev = record.recordHash;
    expectedSeq += 1n;
    lastEventId = record.eventId;
  }
  const lastSeq = expectedSeq - 1n;
  if (nextCheckpoint) {
    return brokenAt(
      nextCheckpoint.chainSeq,
      lastEventId,
      nextCheckpoint.signatureValid ? 'checkpoint_mismatch' : 'checkpoint_unverifiable',
    );
  }
  if ((head?.seq ?? 0n) !== lastSeq || !(head?.hash ?? genesisHash).equals(prev)) {
    return brokenAt(lastSeq + 1n, lastEventId, 'head_mismatch');
  }
  return { intact: true, recordsChecked: checked };
}

export interface ChainReader {
  /** Chained records in sequence order after `afterSeq`, at most `limit`. */
  listChain(tenantId: string, page: { afterSeq: bigint; limit: number }): Promise<ChainedRecord[]>;
  chainHead(tenantId: string): Promise<{ seq: bigint; hash: Buffer } | undefined>;
}

export interface CheckpointReader {
  /** The tenant's checkpoints with chain_seq >= fromSeq, in order, at most `limit`. */
  listCheckpoints(tenantId: string, page: { fromSeq: bigint; limit: number }): Promise<(CheckpointClaim & { jws: string })[]>;
  /** True when the checkpoint's signature holds under a trusted key and states exactly this claim. */
  verify(checkpoint: CheckpointClaim & { jws: string }): Promise<boolean>;
}

async function* pagesOf<T extends { chainSeq: bigint }>(
  read: (fromSeq: bigint, limit: number) => Promise<T[]>,
  pageSize: number,
  until: bigint,
): AsyncIterable<T> {
  let fromSeq = 1n;
  for (;;) {
    const page = await read(fromSeq, pageSize);
    for (const item of page) {
      if (item.chainSeq > until) return;
      yield item;
    }
    const last = page[page.length - 1];
    if (!last || page.length < pageSize || last.chainSeq >= until) return;
    fromSeq = last.chainSeq + 1n;
  }
}

/**
 * Verifies a tenant's stored chain page by page, with its signed checkpoints when a checkpoint
 * reader is given. The head is read first: records appended meanwhile are not judged, nor are
 * checkpoints signed after the verification began. Every earlier checkpoint is judged, also one
 * beyond the head read: the chain was cut back below a point that was signed.
 */
export function createChainVerifier(
  { listChain, chainHead }: ChainReader,
  checkpoints?: CheckpointReader,
  { pageSize = 1_000, now = () => new Date() }: { pageSize?: number; now?: () => Date } = {},
) {
  const endless = 2n ** 63n;
  return async function verifyTenantChain(tenantId: string): Promise<ChainVerdict> {
    const startedAt = now();
    const head = await chainHead(tenantId);
    const records = pagesOf((fromSeq, limit) => listChain(tenantId, { afterSeq: fromSeq - 1n, limit }), pageSize, head?.seq ?? 0n);
    async function* checked(): AsyncIterable<CheckedCheckpoint> {
      if (!checkpoints) return;
      const stored = pagesOf((fromSeq, limit) => checkpoints.listCheckpoints(tenantId, { fromSeq, limit }), pageSize, endless);
      for await (const checkpoint of stored) {
        if (checkpoint.signedAt > startedAt) continue;
        yield { chainSeq: checkpoint.chainSeq, recordHash: checkpoint.recordHash, signatureValid: await checkpoints.verify(checkpoint) };
      }
    }
    return verifyChain(records, head, checked());
  };
}
