import type { TenantScope } from '@portcullis/kit';
import type { AuditEvent as AuditEventRow, Prisma } from '../generated/prisma/client.js';
import type { AuditRecord, StoredAuditRecord } from '../libraries/audit-record.js';
import { chainHashOf, genesisHash, storedFieldsOf, type ChainedRecord } from '../libraries/hash-chain.js';

export type Tx = Prisma.TransactionClient;

/** The table the application role may only read and append to. */
export const appendOnlyTables = ['audit_events'] as const;

/** Chain heads move forward (UPDATE) but are never removed: a deleted head would hide a cut-off chain. */
export const undeletableTables = ['audit_chain_heads'] as const;

function attributesOf(value: Prisma.JsonValue): Record<string, string> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return {};
  const attributes: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) if (typeof item === 'string') attributes[key] = item;
  return attributes;
}

export function recordOfRow(row: AuditEventRow): StoredAuditRecord {
  return {
    id: row.id,
    eventId: row.eventId,
    tenantId: row.tenantId,
    kind: row.kind,
    principalKind: row.principalKind,
    principalId: row.principalId,
    principalRole: row.principalRole,
    principalTenantId: row.principalTenantId,
    assistantId: row.assistantId,
    object: row.object,
    action: row.action,
    outcome: row.outcome,
    reason: row.reason,
    traceId: row.traceId,
    requestId: row.requestId,
    occurredAt: row.occurredAt,
    attributes: attributesOf(row.attributes),
    receivedAt: row.receivedAt,
  };
}

/** A tenant's chain head: the last record's sequence number and hash. */
interface ChainHead {
  seq: bigint;
  hash: Buffer;
}

/** The head of a chain with no record yet. */
const emptyChain: ChainHead = { seq: 0n, hash: genesisHash };

/** Tenants whose last head this process remembers, at most (the least recently appended are forgotten). */
const maxRememberedHeads = 10_000;

/**
 * Records sent in one statement, at most (about 0.9 MB of parameter); a transaction of more sends
 * several. Fewer, larger statements cost less: each one passes Prisma's query machinery, and at
 * 250 a statement the service spent about 15% more CPU per event than at 4,000 (the benchmark).
 */
const eventsPerStatement = 2_000;

/**
 * Links `records` onto `head` and encodes them for `audit_append_chained`: one JSON array per
 * record, in the order its migration lists the fields. One text parameter instead of an array
 * parameter per column: Prisma passes every raw query parameter through its query compiler as
 * JSON, at a cost per byte and per element, and one string is the cheapest thing to pass.
 */
function linkedPayload(head: ChainHead, records: readonly AuditRecord[]): string {
  let seq = head.seq;
  let hash = head.hash;
  const rows = records.map((record) => {
    seq += 1n;
    hash = chainHashOf(hash, seq, record);
    // The function's order is the stored fields' without the tenant (the statement names it once).
    const [eventId, , ...rest] = storedFieldsOf(record);
    return [eventId, ...rest, record.attributes, hash.toString('hex')];
  });
  return JSON.stringify(rows);
}

interface AppendAnswer {
  appended: bigint;
  head_seq: bigint;
  head_hash: Uint8Array;
  stored_ids: string[] | null;
}

export function createAuditEventQueries(scope: TenantScope<Tx>) {
  /**
   * The head each tenant's chain had when this process last appended to it. Only a guess to link
   * new records onto before the transaction: `audit_append_chained` compares it with the head it
   * locks and writes nothing when it differs (another replica appended, or this process restarted).
   */
  const heads = new Map<string, ChainHead>();

  function remember(tenantId: string, head: ChainHead): void {
    heads.delete(tenantId);
    heads.set(tenantId, head);
    if (heads.size > maxRememberedHeads) {
      const oldest = heads.keys().next();
      if (!oldest.done) heads.delete(oldest.value);
    }
  }

  /**
   * Appends records of one tenant in one transaction: each event id once (the first of repeated
   * ids; ids stored already are skipped), in order, linked onto the tenant's chain. Returns, per
   * record, whether it was stored.
   *
   * The records are hashed onto the head this process last saw, and sent `eventsPerStatement` at
   * a time. Each statement locks the head (`FOR UPDATE`, held to the commit, so concurrent writers
   * extend a chain one after the other), checks it is the one the records were linked onto,
   * inserts them and moves the head. When the head moved meanwhile (another replica, a restart) or
   * some ids are stored already, the statement writes nothing and answers the locked head and
   * those ids; the rest is linked again onto that head and sent again, in the same transaction.
   */
  async function appendChained(tenantId: string, records: readonly AuditRecord[]): Promise<boolean[]> {
    const stored = records.map(() => false);
    const firsts = new Map<string, number>();
    for (const [index, record] of records.entries()) {
      if (record.tenantId !== tenantId) throw new Error("appendChained takes one tenant's records");
      if (!firsts.has(record.eventId)) firsts.set(record.eventId, index);
    }
    if (firsts.size === 0) return stored;
    let pending = [...firsts.values()];
    let head = heads.get(tenantId) ?? emptyChain;
    const payloadOf = (indexes: readonly number[], onto: ChainHead) =>
      linkedPayload(
        onto,
        indexes.map((index) => records[index] as AuditRecord),
      );
    // The first statement's records are linked before the transaction starts, outside the lock.
    let chunk = pending.slice(0, eventsPerStatement);
    let payload = payloadOf(chunk, head);
    const committed = await scope.run(tenantId, async (tx) => {
      // A statement that writes nothing answers the locked head and the ids stored already: the
      // next one then holds the lock and has only new ids, so a second one in a row cannot happen.
      for (let refused = 0; refused < 2;) {
        const [answer] = await tx.$queryRaw<AppendAnswer[]>`
          SELECT appended, head_seq, head_hash, stored_ids
          FROM audit_append_chained(${tenantId}::uuid, ${head.seq}::bigint, ${head.hash}::bytea, ${payload}::jsonb)`;
        if (!answer) throw new Error('audit_append_chained answered nothing');
        const locked = { seq: answer.head_seq, hash: Buffer.from(answer.head_hash) };
        if (answer.appended > 0n) {
          if (answer.appended !== BigInt(chunk.length)) throw new Error('audit chain append stored fewer records than it was given');
          for (const index of chunk) stored[index] = true;
          pending = pending.slice(chunk.length);
          refused = 0;
        } else {
          const already = new Set(answer.stored_ids ?? []);
          if (already.size === 0 && locked.seq === head.seq && locked.hash.equals(head.hash)) {
            throw new Error("audit chain head does not match the tenant's records");
          }
          pending = pending.filter((index) => !already.has((records[index] as AuditRecord).eventId));
          refused += 1;
        }
        head = locked;
        if (pending.length === 0) return head;
        chunk = pending.slice(0, eventsPerStatement);
        payload = payloadOf(chunk, head);
      }
      throw new Error('audit chain append did not settle');
    });
    remember(tenantId, committed);
    return stored;
  }

  return {
    /** Appends one event in its tenant's scope, extending its hash chain; false when the event id is already stored. */
    async insert(record: AuditRecord): Promise<boolean> {
      return (await appendChained(record.tenantId, [record]))[0] === true;
    },

    /**
     * Appends events of one tenant in one transaction, extending its hash chain in their order.
     * Resolves with, per record, whether it was stored (false: its id was stored already, or came
     * earlier in the list).
     */
    insertMany: appendChained,

    /** The tenant's chained records in sequence order, `limit` at most, after `afterSeq`. */
    async listChain(tenantId: string, { afterSeq, limit }: { afterSeq: bigint; limit: number }): Promise<ChainedRecord[]> {
      const rows = await scope.run(tenantId, (tx) =>
        tx.auditEvent.findMany({ where: { tenantId, chainSeq: { gt: afterSeq } }, orderBy: { chainSeq: 'asc' }, take: limit }),
      );
      return rows.map((row) => ({
        ...recordOfRow(row),
        chainSeq: row.chainSeq ?? 0n,
        prevHash: Buffer.from(row.prevHash ?? []),
        recordHash: Buffer.from(row.recordHash ?? []),
      }));
    },

    /** The tenant's chain head, or undefined before its first chained record. */
    async chainHead(tenantId: string): Promise<{ seq: bigint; hash: Buffer } | undefined> {
      const head = await scope.run(tenantId, (tx) => tx.auditChainHead.findUnique({ where: { tenantId } }));
      return head ? { seq: head.lastSeq, hash: Buffer.from(head.lastHash) } : undefined;
    },

    /** Up to `limit` of the tenant's events, newest first, older than `before` when given. */
    async listPage(tenantId: string, { before, limit }: { before: bigint | undefined; limit: number }): Promise<StoredAuditRecord[]> {
      const rows = await scope.run(tenantId, (tx) =>
        tx.auditEvent.findMany({
          where: before === undefined ? { tenantId } : { tenantId, id: { lt: before } },
          orderBy: { id: 'desc' },
          take: limit,
        }),
      );
      return rows.map(recordOfRow);
    },
  };
}

export type AuditEventQueries = ReturnType<typeof createAuditEventQueries>;
