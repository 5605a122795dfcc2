import { AppError, requireUuid } from '@portcullis/kit';
import type { EventFilter as EventFilterMessage } from '@portcullis/proto/audit';
import type { StoredAuditRecord } from './audit-record.js';
import type { SignedCheckpoint } from './checkpoints.js';
import { parseEventFilter, type EventFilter } from './event-filter.js';
import type { ChainedRecord } from './hash-chain.js';
import { decodePageToken, encodePageToken } from './page-token.js';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;
export const DEFAULT_EXPORT_PAGE_SIZE = 500;
export const MAX_EXPORT_PAGE_SIZE = 1_000;

export type ExportedRecord = ChainedRecord & StoredAuditRecord;

export interface EventLogDeps {
  /** Up to `limit` of the tenant's records matching `filter`, newest first, older than `before` when given. */
  listPage(tenantId: string, page: { before: bigint | undefined; limit: number; filter: EventFilter }): Promise<StoredAuditRecord[]>;
  /** Up to `limit` chained records matching `filter`, in chain order, after `afterSeq`. */
  listChainPage(tenantId: string, page: { afterSeq: bigint; limit: number; filter: EventFilter }): Promise<ExportedRecord[]>;
  /** Checkpoints inside `fromSeq..toSeq` and the first one after it. */
  checkpointsCovering(tenantId: string, range: { fromSeq: bigint; toSeq: bigint }): Promise<SignedCheckpoint[]>;
  /** Public keys (JWK JSON) checkpoints may be signed with, current key first. */
  checkpointKeys(): string[];
}

export interface PageInput {
  tenantId: string;
  pageSize: number;
  pageToken: string;
  filter?: EventFilterMessage | undefined;
}

export interface EventPage {
  records: StoredAuditRecord[];
  /** Empty when this is the last page. */
  nextPageToken: string;
}

export interface ExportPage {
  records: ExportedRecord[];
  checkpoints: SignedCheckpoint[];
  checkpointKeys: string[];
  nextPageToken: string;
}

function pageSizeOf(pageSize: number, defaultSize: number, maxSize: number): number {
  if (!Number.isInteger(pageSize) || pageSize < 0 || pageSize > maxSize) {
    throw new AppError('INVALID_ARGUMENT', `page_size must be between 0 and ${maxSize}`, { details: { field: 'page_size' } });
  }
  return pageSize === 0 ? defaultSize : pageSize;
}

/**
 * Reads a tenant's audit trail: newest first in pages joined by opaque cursors, or, for export,
 * in chain order with each record's link and the signed checkpoints over the page.
 */
export function createEventLog({ listPage, listChainPage, checkpointsCovering, checkpointKeys }: EventLogDeps) {
  return {
    async list({ tenantId, pageSize, pageToken, filter }: PageInput): Promise<EventPage> {
      const tenant = requireUuid(tenantId, 'tenant_id');
      const limit = pageSizeOf(pageSize, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
      const parsed = parseEventFilter(filter);
      const before = pageToken === '' ? undefined : decodePageToken(pageToken);
      // One extra row tells whether another page follows without a second query.
      const rows = await listPage(tenant, { before, limit: limit + 1, filter: parsed });
      const records = rows.slice(0, limit);
      const last = records.at(-1);
      return { records, nextPageToken: rows.length > limit && last ? encodePageToken(last.id) : '' };
    },

    async exportPage({ tenantId, pageSize, pageToken, filter }: PageInput): Promise<ExportPage> {
      const tenant = requireUuid(tenantId, 'tenant_id');
      const limit = pageSizeOf(pageSize, DEFAULT_EXPORT_PAGE_SIZE, MAX_EXPORT_PAGE_SIZE);
      const parsed = parseEventFilter(filter);
      const afterSeq = pageToken === '' ? 0n : decodePageToken(pageToken);
      const rows = await listChainPage(tenant, { afterSeq, limit: limit + 1, filter: parsed });
      const records = rows.slice(0, limit);
      const first = records[0];
      const last = records.at(-1);
      const checkpoints = first && last ? await checkpointsCovering(tenant, { fromSeq: first.chainSeq, toSeq: last.chainSeq }) : [];
      return {
        records,
        checkpoints,
        checkpointKeys: checkpointKeys(),
        nextPageToken: rows.length > limit && last ? encodePageToken(last.chainSeq) : '',
      };
    },
  };
}

export type EventLog = ReturnType<typeof createEventLog>;
