import { z, type GrpcClient } from '@portcullis/kit';
import type { AuditService } from '@portcullis/proto/audit';
import { presentAuditEvent } from '../http/presenters.js';
import { parseInput, type ProtectedRoute } from '../http/route.js';

export interface AuditRouteDeps {
  audit: Pick<GrpcClient<typeof AuditService>, 'listEvents'>;
}

export function createAuditRoutes({ audit }: AuditRouteDeps): ProtectedRoute[] {
  return [
    {
      kind: 'protected',
      method: 'get',
      path: '/api/audit/events',
      capability: { object: 'audit', action: 'read' },
      summary: "The tenant's audit trail, newest first, with cursor pagination",
      async handle({ request, target }, { query }) {
        const input = parseInput(
          z.object({ pageSize: z.coerce.number().int().min(1).max(200).default(50), pageToken: z.string().max(200).default('') }),
          query,
        );
        const result = await audit.listEvents({ tenantId: target.tenantId, ...input }, { requestId: request.requestId });
        return { body: { events: result.events.map(presentAuditEvent), nextPageToken: result.nextPageToken || null } };
      },
    },
  ];
}
