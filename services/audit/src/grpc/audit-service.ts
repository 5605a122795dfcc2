import { implement, requireUuid } from '@portcullis/kit';
import { AuditService } from '@portcullis/proto/audit';
import { auditEventOf } from '../libraries/audit-record.js';
import type { EventLog } from '../libraries/event-log.js';
import type { ChainVerdict } from '../libraries/hash-chain.js';

export interface AuditServiceDeps {
  log: Pick<EventLog, 'list'>;
  verifyChain(tenantId: string): Promise<ChainVerdict>;
}

export function createAuditService({ log, verifyChain }: AuditServiceDeps) {
  return implement(AuditService, {
    async verifyChain(request) {
      const verdict = await verifyChain(requireUuid(request.tenantId, 'tenant_id'));
      return {
        intact: verdict.intact,
        recordsChecked: BigInt(verdict.recordsChecked),
        ...(verdict.firstBroken ? { firstBroken: verdict.firstBroken } : {}),
      };
    },
    async listEvents(request) {
      const page = await log.list({ tenantId: request.tenantId, pageSize: request.pageSize, pageToken: request.pageToken });
      return { events: page.records.map(auditEventOf), nextPageToken: page.nextPageToken };
    },
  });
}
