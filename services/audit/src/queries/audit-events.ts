import type { TenantScope } from '@portcullis/kit';
import type { AuditEvent as AuditEventRow, Prisma } from '../generated/prisma/client.js';
import type { AuditRecord, StoredAuditRecord } from '../libraries/audit-record.js';

export type Tx = Prisma.TransactionClient;

/** The table the application role may only read and append to. */
export const appendOnlyTables = ['audit_events'] as const;

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
  return {
    /** Appends one event in its tenant's scope; false when the event id is already stored. */
    async insert(record: AuditRecord): Promise<boolean> {
      const inserted = await scope.run(
        record.tenantId,
        (tx) => tx.$executeRaw`
          INSERT INTO audit_events (
            event_id, tenant_id, kind, principal_kind, principal_id, principal_role, principal_tenant_id,
            assistant_id, object, action, outcome, reason, trace_id, request_id, occurred_at, attributes
          ) VALUES (
            ${record.eventId}::uuid, ${record.tenantId}::uuid, ${record.kind}, ${record.principalKind}, ${record.principalId},
            ${record.principalRole}, ${record.principalTenantId}, ${record.assistantId}, ${record.object}, ${record.action},
            ${record.outcome}, ${record.reason}, ${record.traceId}, ${record.requestId}, ${record.occurredAt}::timestamptz,
            ${JSON.stringify(record.attributes)}::jsonb
          )
          ON CONFLICT (tenant_id, event_id) DO NOTHING`,
      );
      return inserted === 1;
    },

    /**
     * Appends events of one tenant in one statement; returns how many were new (the others' ids
     * were stored already). One array parameter per column (`unnest`), whatever the batch size.
     */
    async insertMany(tenantId: string, records: readonly AuditRecord[]): Promise<number> {
      if (records.length === 0) return 0;
      const column = <T>(pick: (record: AuditRecord) => T) => records.map(pick);
      return scope.run(
        tenantId,
        (tx) => tx.$executeRaw`
          INSERT INTO audit_events (
            event_id, tenant_id, kind, principal_kind, principal_id, principal_role, principal_tenant_id,
            assistant_id, object, action, outcome, reason, trace_id, request_id, occurred_at, attributes
          )
          SELECT * FROM unnest(
            ${column((r) => r.eventId)}::uuid[], ${column((r) => r.tenantId)}::uuid[], ${column((r) => r.kind)}::text[],
            ${column((r) => r.principalKind)}::text[], ${column((r) => r.principalId)}::text[], ${column((r) => r.principalRole)}::text[],
            ${column((r) => r.principalTenantId)}::text[], ${column((r) => r.assistantId)}::text[], ${column((r) => r.object)}::text[],
            ${column((r) => r.action)}::text[], ${column((r) => r.outcome)}::text[], ${column((r) => r.reason)}::text[],
            ${column((r) => r.traceId)}::text[], ${column((r) => r.requestId)}::text[],
            ${column((r) => r.occurredAt?.toISOString() ?? null)}::timestamptz[],
            ${column((r) => JSON.stringify(r.attributes))}::jsonb[]
          )
          ON CONFLICT (tenant_id, event_id) DO NOTHING`,
      );
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
