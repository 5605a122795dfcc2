import { AppError, requireUuid } from '@portcullis/kit';
import type { StoredAuditRecord } from './audit-record.js';
import { decodePageToken, encodePageToken } from './page-token.js';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

export interface EventLogDeps {
  /** Up to `limit` of the tenant's records, newest first, older than `before` when given. */
  listPage(tenantId: string, page: { before: bigint | undefined; limit: number }): Promise<StoredAuditRecord[]>;
}

export interface ListEventsInput {
  tenantId: string;
  pageSize: number;
  pageToken: string;
}

export interface EventPage {
  records: StoredAuditRecord[];
  /** Empty when this is the last page. */
  nextPageToken: string;
}

/** Reads a tenant's audit trail, newest first, in pages joined by opaque cursors. */
export function createEventLog({ listPage }: EventLogDeps) {
  return {
    async list({ tenantId, pageSize, pageToken }: ListEventsInput): Promise<EventPage> {
      const tenant = requireUuid(tenantId, 'tenant_id');
      if (!Number.isInteger(pageSize) || pageSize < 0 || pageSize > MAX_PAGE_SIZE) {
        throw new AppError('INVALID_ARGUMENT', `page_size must be between 0 and ${MAX_PAGE_SIZE}`, { details: { field: 'page_size' } });
      }
      const limit = pageSize === 0 ? DEFAULT_PAGE_SIZE : pageSize;
      const before = pageToken === '' ? undefined : decodePageToken(pageToken);
      // One extra row tells whether another page follows without a second query.
      const rows = await listPage(tenant, { before, limit: limit + 1 });
      const records = rows.slice(0, limit);
      const last = records.at(-1);
      return { records, nextPageToken: rows.length > limit && last ? encodePageToken(last.id) : '' };
    },
  };
}

export type EventLog = ReturnType<typeof createEventLog>;
