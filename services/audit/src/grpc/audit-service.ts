import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { implement, onlyServices, PLATFORM_AUDITOR, PLATFORM_OPS, requireUuid } from '@portcullis/kit';
import { AuditService } from '@portcullis/proto/audit';
import { auditEventOf } from '../libraries/audit-record.js';
import type { SignedCheckpoint } from '../libraries/checkpoints.js';
import type { EventLog, ExportedRecord } from '../libraries/event-log.js';
import { canonicalOf, type ChainVerdict } from '../libraries/hash-chain.js';

export interface AuditServiceDeps {
  log: Pick<EventLog, 'list' | 'exportPage'>;
  verifyChain(tenantId: string): Promise<ChainVerdict>;
}

function chainedEventOf(record: ExportedRecord) {
  return {
    event: auditEventOf(record),
    link: {
      chainSeq: record.chainSeq,
      prevHash: record.prevHash,
      recordHash: record.recordHash,
      receivedAt: timestampFromDate(record.receivedAt),
      canonical: canonicalOf(record.chainSeq, record),
    },
  };
}

function checkpointOf(checkpoint: SignedCheckpoint) {
  return {
    tenantId: checkpoint.tenantId,
    chainSeq: checkpoint.chainSeq,
    recordHash: checkpoint.recordHash,
    signedAt: timestampFromDate(checkpoint.signedAt),
    jws: checkpoint.jws,
  };
}

/**
 * The audit trail over gRPC. Reading it is for the gateway (which admits a tenant's owners and
 * admins only), the platform auditor and operator tooling; no other service and no tenant
 * backend may read it.
 */
export function createAuditService({ log, verifyChain }: AuditServiceDeps) {
  const readers = onlyServices('api-gateway', PLATFORM_AUDITOR, PLATFORM_OPS);
  return implement(
    AuditService,
    {
      async verifyChain(request) {
        const verdict = await verifyChain(requireUuid(request.tenantId, 'tenant_id'));
        return {
          intact: verdict.intact,
          recordsChecked: BigInt(verdict.recordsChecked),
          ...(verdict.firstBroken ? { firstBroken: verdict.firstBroken } : {}),
        };
      },
      async listEvents(request) {
        const page = await log.list(request);
        return { events: page.records.map(auditEventOf), nextPageToken: page.nextPageToken };
      },
      async exportEvents(request) {
        const page = await log.exportPage(request);
        return {
          events: page.records.map(chainedEventOf),
          checkpoints: page.checkpoints.map(checkpointOf),
          checkpointKeys: page.checkpointKeys,
          nextPageToken: page.nextPageToken,
        };
      },
    },
    { default: readers },
  );
}
