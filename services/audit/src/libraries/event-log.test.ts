import { randomUUID } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { create } from '@bufbuild/protobuf';
import { EventFilterSchema, Outcome } from '@portcullis/proto/audit';
import type { StoredAuditRecord } from './audit-record.js';
import type { SignedCheckpoint } from './checkpoints.js';
import type { EventFilter } from './event-filter.js';
import {
  createEventLog,
  DEFAULT_EXPORT_PAGE_SIZE,
  DEFAULT_PAGE_SIZE,
  MAX_EXPORT_PAGE_SIZE,
  MAX_PAGE_SIZE,
  type ExportedRecord,
} from './event-log.js';
import { encodePageToken } from './page-token.js';

function record(tenantId: string, id: bigint): StoredAuditRecord {
  return {
    id,
    eventId: randomUUID(),
    tenantId,
    kind: 'k',
    principalKind: null,
    principalId: null,
    principalRole: null,
    principalTenantId: null,
    assistantId: null,
    object: null,
    action: null,
    outcome: null,
    reason: null,
    traceId: null,
    requestId: null,
    occurredAt: null,
    attributes: {},
    receivedAt: new Date(0),
  };
}

/** Fake table with the queries' contracts: listPage newest (highest id) first below `before`; the chain in order after `afterSeq`. */
function fakeTable(rows: StoredAuditRecord[]) {
  const calls: { tenantId: string; before: bigint | undefined; limit: number; filter?: EventFilter }[] = [];
  const chainCalls: { afterSeq: bigint; limit: number; filter: EventFilter }[] = [];
  const checkpointCalls: { fromSeq: bigint; toSeq: bigint }[] = [];
  const chained = (row: StoredAuditRecord): ExportedRecord => ({
    ...row,
    chainSeq: row.id,
    prevHash: Buffer.alloc(32),
    recordHash: Buffer.alloc(32, Number(row.id)),
  });
  return {
    calls,
    chainCalls,
    checkpointCalls,
    async listPage(tenantId: string, { before, limit, filter }: { before: bigint | undefined; limit: number; filter: EventFilter }) {
      calls.push({ tenantId, before, limit, ...(Object.keys(filter).length > 0 ? { filter } : {}) });
      return rows
        .filter((row) => row.tenantId === tenantId && (before === undefined || row.id < before))
        .sort((a, b) => (a.id < b.id ? 1 : -1))
        .slice(0, limit);
    },
    async listChainPage(tenantId: string, { afterSeq, limit, filter }: { afterSeq: bigint; limit: number; filter: EventFilter }) {
      chainCalls.push({ afterSeq, limit, filter });
      return rows
        .filter((row) => row.tenantId === tenantId && row.id > afterSeq)
        .sort((a, b) => (a.id < b.id ? -1 : 1))
        .slice(0, limit)
        .map(chained);
    },
    async checkpointsCovering(tenantId: string, range: { fromSeq: bigint; toSeq: bigint }): Promise<SignedCheckpoint[]> {
      checkpointCalls.push(range);
      return [{ tenantId, chainSeq: range.toSeq, recordHash: Buffer.alloc(32), signedAt: new Date(0), keyId: 'k', jws: 'a.b.c' }];
    },
    checkpointKeys: () => ['{"kty":"OKP"}'],
  };
}

describe('event log', () => {
  const tenant = randomUUID();
  const other = randomUUID();
  const rows = [...Array.from({ length: 7 }, (_, i) => record(tenant, BigInt(i + 1))), record(other, 100n)];

  it('pages newest first and returns every event exactly once', async () => {
    const log = createEventLog(fakeTable(rows));
    const seen: bigint[] = [];
    let pageToken = '';
    for (let page = 0; page < 10; page += 1) {
      const result = await log.list({ tenantId: tenant, pageSize: 3, pageToken });
      seen.push(...result.records.map((r) => r.id));
      if (!result.nextPageToken) break;
      pageToken = result.nextPageToken;
    }
    expect(seen).toEqual([7n, 6n, 5n, 4n, 3n, 2n, 1n]);
  });

  it('gives no next token when the last page is exactly full', async () => {
    const log = createEventLog(fakeTable(rows));
    const result = await log.list({ tenantId: tenant, pageSize: 7, pageToken: '' });
    expect(result.records).toHaveLength(7);
    expect(result.nextPageToken).toBe('');
  });

  it('defaults page_size 0 to the default and asks for one extra row', async () => {
    const table = fakeTable(rows);
    await createEventLog(table).list({ tenantId: tenant, pageSize: 0, pageToken: '' });
    expect(table.calls).toEqual([{ tenantId: tenant, before: undefined, limit: DEFAULT_PAGE_SIZE + 1 }]);
  });

  it('accepts the maximum page size', async () => {
    const table = fakeTable(rows);
    await createEventLog(table).list({ tenantId: tenant, pageSize: MAX_PAGE_SIZE, pageToken: encodePageToken(5n) });
    expect(table.calls).toEqual([{ tenantId: tenant, before: 5n, limit: MAX_PAGE_SIZE + 1 }]);
  });

  it('passes the checked filter to the query', async () => {
    const table = fakeTable(rows);
    const assistantId = randomUUID();
    await createEventLog(table).list({
      tenantId: tenant,
      pageSize: 10,
      pageToken: '',
      filter: create(EventFilterSchema, { kind: 'tool.', outcome: Outcome.DENY, assistantId, principalId: 'u-1' }),
    });
    expect(table.calls[0]?.filter).toEqual({ kindPrefix: 'tool.', outcome: 'deny', assistantId, principalId: 'u-1' });
  });

  it.each([
    ['page_size above the maximum', { tenantId: tenant, pageSize: MAX_PAGE_SIZE + 1, pageToken: '' }],
    ['negative page_size', { tenantId: tenant, pageSize: -1, pageToken: '' }],
    ['malformed page_token', { tenantId: tenant, pageSize: 10, pageToken: 'bogus!' }],
    ['tenant_id not a UUID', { tenantId: 'acme', pageSize: 10, pageToken: '' }],
    [
      'a malformed kind filter',
      { tenantId: tenant, pageSize: 10, pageToken: '', filter: create(EventFilterSchema, { kind: 'tool call' }) },
    ],
  ])('rejects %s with INVALID_ARGUMENT before querying', async (_label, input) => {
    const table = fakeTable(rows);
    await expect(createEventLog(table).list(input)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    if (input.pageSize <= MAX_PAGE_SIZE) {
      await expect(createEventLog(table).exportPage(input)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    expect(table.calls).toHaveLength(0);
    expect(table.chainCalls).toHaveLength(0);
  });

  it('exports the chain in order, every record once, with the checkpoints covering each page and the keys', async () => {
    const table = fakeTable(rows);
    const log = createEventLog(table);
    const seen: bigint[] = [];
    let pageToken = '';
    for (let page = 0; page < 10; page += 1) {
      const result = await log.exportPage({ tenantId: tenant, pageSize: 3, pageToken });
      seen.push(...result.records.map((r) => r.chainSeq));
      expect(result.checkpointKeys).toEqual(['{"kty":"OKP"}']);
      expect(result.checkpoints.map((c) => c.chainSeq)).toEqual([result.records.at(-1)?.chainSeq]);
      if (!result.nextPageToken) break;
      pageToken = result.nextPageToken;
    }
    expect(seen).toEqual([1n, 2n, 3n, 4n, 5n, 6n, 7n]);
    expect(table.checkpointCalls).toEqual([
      { fromSeq: 1n, toSeq: 3n },
      { fromSeq: 4n, toSeq: 6n },
      { fromSeq: 7n, toSeq: 7n },
    ]);
    expect(table.chainCalls[0]?.limit).toBe(4);
  });

  it('defaults an export page to the export default and refuses one above the export maximum', async () => {
    const table = fakeTable(rows);
    await createEventLog(table).exportPage({ tenantId: tenant, pageSize: 0, pageToken: '' });
    expect(table.chainCalls[0]?.limit).toBe(DEFAULT_EXPORT_PAGE_SIZE + 1);
    await expect(
      createEventLog(table).exportPage({ tenantId: tenant, pageSize: MAX_EXPORT_PAGE_SIZE + 1, pageToken: '' }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
