import type { TenantScope, TransactionRunner } from '@portcullis/kit';
import type { Prisma } from '../generated/prisma/client.js';
import type { StoredAuditRecord } from '../libraries/audit-record.js';
import type { SignedCheckpoint } from '../libraries/checkpoints.js';
import type { EventFilter } from '../libraries/event-filter.js';
import type { ChainedRecord } from '../libraries/hash-chain.js';
import { recordOfRow, type Tx } from './audit-events.js';

/** The checkpoint table is append-only for the application role, like the records it covers. */
export const checkpointTables = ['audit_checkpoints'] as const;

export type StoredChainedRecord = ChainedRecord & StoredAuditRecord;

function whereOf(tenantId: string, filter: EventFilter): Prisma.AuditEventWhereInput {
  const where: Prisma.AuditEventWhereInput = { tenantId };
  if (filter.occurredFrom || filter.occurredBefore) {
    where.occurredAt = {
      ...(filter.occurredFrom ? { gte: filter.occurredFrom } : {}),
      ...(filter.occurredBefore ? { lt: filter.occurredBefore } : {}),
    };
  }
  if (filter.principalId !== undefined) where.principalId = filter.principalId;
  if (filter.kind !== undefined) where.kind = filter.kind;
  else if (filter.kindPrefix !== undefined) where.kind = { startsWith: filter.kindPrefix };
  if (filter.assistantId !== undefined) where.assistantId = filter.assistantId;
  if (filter.outcome !== undefined) where.outcome = filter.outcome;
  return where;
}

function checkpointOf(row: {
  tenantId: string;
  chainSeq: bigint;
  recordHash: Uint8Array;
  signedAt: Date;
  keyId: string;
  jws: string;
}): SignedCheckpoint {
  return { ...row, recordHash: Buffer.from(row.recordHash) };
}

/**
 * Reads of the audit trail: filtered pages, the chain in order for export, and checkpoints. Every
 * read runs in its tenant's scope; the one exception, `grownChains`, reads chain heads only.
 */
export function createAuditReadQueries(scope: TenantScope<Tx>, db: TransactionRunner<Tx>) {
  return {
    /** Up to `limit` of the tenant's records matching `filter`, newest first, older than `before` when given. */
    async listPage(
      tenantId: string,
      { before, limit, filter = {} }: { before: bigint | undefined; limit: number; filter?: EventFilter },
    ): Promise<StoredAuditRecord[]> {
      const where = whereOf(tenantId, filter);
      if (before !== undefined) where.id = { lt: before };
      const rows = await scope.run(tenantId, (tx) => tx.auditEvent.findMany({ where, orderBy: { id: 'desc' }, take: limit }));
      return rows.map(recordOfRow);
    },

    /** Up to `limit` chained records matching `filter`, in chain order, after `afterSeq`. */
    async listChainPage(
      tenantId: string,
      { afterSeq, limit, filter = {} }: { afterSeq: bigint; limit: number; filter?: EventFilter },
    ): Promise<StoredChainedRecord[]> {
      const where = { ...whereOf(tenantId, filter), chainSeq: { gt: afterSeq } };
      const rows = await scope.run(tenantId, (tx) => tx.auditEvent.findMany({ where, orderBy: { chainSeq: 'asc' }, take: limit }));
      return rows.map((row) => ({
        ...recordOfRow(row),
        chainSeq: row.chainSeq ?? 0n,
        prevHash: Buffer.from(row.prevHash ?? []),
        recordHash: Buffer.from(row.recordHash ?? []),
      }));
    },

    /** The tenant's checkpoints with `fromSeq <= chain_seq`, in order, at most `limit`. */
    async listCheckpoints(tenantId: string, { fromSeq, limit }: { fromSeq: bigint; limit: number }): Promise<SignedCheckpoint[]> {
      const rows = await scope.run(tenantId, (tx) =>
        tx.auditCheckpoint.findMany({ where: { tenantId, chainSeq: { gte: fromSeq } }, orderBy: { chainSeq: 'asc' }, take: limit }),
      );
      return rows.map(checkpointOf);
    },

    /** Checkpoints covering records `fromSeq..toSeq`: those inside it and the first one after it. */
    async checkpointsCovering(tenantId: string, { fromSeq, toSeq }: { fromSeq: bigint; toSeq: bigint }): Promise<SignedCheckpoint[]> {
      return scope.run(tenantId, async (tx) => {
        const inside = await tx.auditCheckpoint.findMany({
          where: { tenantId, chainSeq: { gte: fromSeq, lte: toSeq } },
          orderBy: { chainSeq: 'asc' },
        });
        const next = await tx.auditCheckpoint.findFirst({ where: { tenantId, chainSeq: { gt: toSeq } }, orderBy: { chainSeq: 'asc' } });
        return [...inside, ...(next ? [next] : [])].map(checkpointOf);
      });
    },

    /** Tenants whose chain grew since its last checkpoint, at most `limit` (a read of heads across tenants). */
    async grownChains(limit: number): Promise<string[]> {
      const rows = await db.$transaction(async (tx) => {
        await tx.$queryRaw`SELECT set_config('app.audit_scan', 'grown_chains', true)`;
        return tx.$queryRaw<{ tenant_id: string }[]>`
          SELECT tenant_id::text FROM audit_chain_heads WHERE last_seq > checkpointed_seq ORDER BY updated_at LIMIT ${limit}`;
      });
      return rows.map((row) => row.tenant_id);
    },

    /** Stores a checkpoint (once per sequence number) and moves the head's checkpointed mark forward. */
    async storeCheckpoint(checkpoint: SignedCheckpoint): Promise<void> {
      await scope.run(checkpoint.tenantId, async (tx) => {
        await tx.$executeRaw`
          INSERT INTO audit_checkpoints (tenant_id, chain_seq, record_hash, signed_at, key_id, jws)
          VALUES (${checkpoint.tenantId}::uuid, ${checkpoint.chainSeq}, ${checkpoint.recordHash}, ${checkpoint.signedAt},
                  ${checkpoint.keyId}, ${checkpoint.jws})
          ON CONFLICT (tenant_id, chain_seq) DO NOTHING`;
        await tx.$executeRaw`
          UPDATE audit_chain_heads SET checkpointed_seq = ${checkpoint.chainSeq}
          WHERE tenant_id = ${checkpoint.tenantId}::uuid AND checkpointed_seq < ${checkpoint.chainSeq}`;
      });
    },
  };
}

export type AuditReadQueries = ReturnType<typeof createAuditReadQueries>;
