import { implement } from '@portcullis/kit';
import { AuditService } from '@portcullis/proto/audit';
import { auditEventOf } from '../libraries/audit-record.js';
import type { EventLog } from '../libraries/event-log.js';

export function createAuditService({ log }: { log: Pick<EventLog, 'list'> }) {
  return implement(AuditService, {
    async listEvents(request) {
      const page = await log.list({ tenantId: request.tenantId, pageSize: request.pageSize, pageToken: request.pageToken });
      return { events: page.records.map(auditEventOf), nextPageToken: page.nextPageToken };
    },
  });
}
