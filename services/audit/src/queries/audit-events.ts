import type { TenantScope } from '@portcullis/kit';
import type { AuditEvent as AuditEventRow, Prisma } from '../generated/prisma/client.js';
import type { AuditRecord, StoredAuditRecord } from '../libraries/audit-record.js';
import { extendChain, genesisHash, type ChainedRecord } from '../libraries/hash-chain.js';

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

function recordOfRow(row: AuditEventRow): StoredAuditRecord {
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

export function createAuditEventQueries(scope: TenantScope<Tx>) {
  async function appendChained(tenantId: string, records: readonly AuditRecord[]): Promise<number> {
    if (records.length === 0) return 0;
    return scope.run(tenantId, async (tx) => {
      await tx.$executeRaw`
        INSERT INTO audit_chain_heads (tenant_id, last_seq, last_hash) VALUES (${tenantId}::uuid, 0, ${genesisHash})
        ON CONFLICT (tenant_id) DO NOTHING`;
      const [head] = await tx.$queryRaw<{ last_seq: bigint; last_hash: Uint8Array }[]>`
        SELECT last_seq, last_hash FROM audit_chain_heads WHERE tenant_id = ${tenantId}::uuid FOR UPDATE`;
      if (!head) throw new Error('audit chain head missing after its insert');
      // Only events not stored yet join the chain, each once even if the batch repeats it.
      const ids = records.map((record) => record.eventId);
      const stored = await tx.$queryRaw<{ event_id: string }[]>`
        SELECT event_id::text FROM audit_events WHERE tenant_id = ${tenantId}::uuid AND event_id = ANY(${ids}::uuid[])`;
      const seen = new Set(stored.map((row) => row.event_id));
      const fresh = records.filter((record) => !seen.has(record.eventId) && (seen.add(record.eventId), true));
      if (fresh.length === 0) return 0;
      const chained = extendChain({ seq: head.last_seq, hash: Buffer.from(head.last_hash) }, fresh);
      const column = <T>(pick: (record: ChainedRecord) => T) => chained.map(pick);
      const inserted = await tx.$executeRaw`
        INSERT INTO audit_events (
          event_id, tenant_id, kind, principal_kind, principal_id, principal_role, principal_tenant_id,
          assistant_id, object, action, outcome, reason, trace_id, request_id, occurred_at, attributes,
          chain_seq, prev_hash, record_hash
        )
        SELECT * FROM unnest(
          ${column((r) => r.eventId)}::uuid[], ${column((r) => r.tenantId)}::uuid[], ${column((r) => r.kind)}::text[],
          ${column((r) => r.principalKind)}::text[], ${column((r) => r.principalId)}::text[], ${column((r) => r.principalRole)}::text[],
          ${column((r) => r.principalTenantId)}::text[], ${column((r) => r.assistantId)}::text[], ${column((r) => r.object)}::text[],
          ${column((r) => r.action)}::text[], ${column((r) => r.outcome)}::text[], ${column((r) => r.reason)}::text[],
          ${column((r) => r.traceId)}::text[], ${column((r) => r.requestId)}::text[],
          ${column((r) => r.occurredAt?.toISOString() ?? null)}::timestamptz[],
          ${column((r) => JSON.stringify(r.attributes))}::jsonb[],
          ${column((r) => r.chainSeq.toString())}::bigint[],
          ${column((r) => r.prevHash)}::bytea[], ${column((r) => r.recordHash)}::bytea[]
        )`;
      const last = chained[chained.length - 1];
      if (last) {
        await tx.$executeRaw`
          UPDATE audit_chain_heads SET last_seq = ${last.chainSeq}, last_hash = ${last.recordHash}, updated_at = now()
          WHERE tenant_id = ${tenantId}::uuid`;
      }
      return inserted;
    });
  }

  return {
    /** Appends one event in its tenant's scope, extending its hash chain; false when the event id is already stored. */
    async insert(record: AuditRecord): Promise<boolean> {
      return (await appendChained(record.tenantId, [record])) === 1;
    },

    /**
     * Appends events of one tenant in one transaction; returns how many were new (the others'
     * ids were stored already). The tenant's chain head is locked, the new events are linked onto
     * it in order, inserted in one statement (`unnest`: one array parameter per column) and the
     * head moved to the last of them.
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
