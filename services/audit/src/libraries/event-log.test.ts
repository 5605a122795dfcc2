import { randomUUID } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import type { StoredAuditRecord } from './audit-record.js';
import { createEventLog, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './event-log.js';
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

/** Fake table with the query's contract: the tenant's rows, newest (highest id) first, below `before`. */
function fakeTable(rows: StoredAuditRecord[]) {
  const calls: { tenantId: string; before: bigint | undefined; limit: number }[] = [];
  return {
    calls,
    async listPage(tenantId: string, { before, limit }: { before: bigint | undefined; limit: number }) {
      calls.push({ tenantId, before, limit });
      return rows
        .filter((row) => row.tenantId === tenantId && (before === undefined || row.id < before))
        .sort((a, b) => (a.id < b.id ? 1 : -1))
        .slice(0, limit);
    },
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

  it.each([
    ['page_size above the maximum', { tenantId: tenant, pageSize: MAX_PAGE_SIZE + 1, pageToken: '' }],
    ['negative page_size', { tenantId: tenant, pageSize: -1, pageToken: '' }],
    ['malformed page_token', { tenantId: tenant, pageSize: 10, pageToken: 'bogus!' }],
    ['tenant_id not a UUID', { tenantId: 'acme', pageSize: 10, pageToken: '' }],
  ])('rejects %s with INVALID_ARGUMENT before querying', async (_label, input) => {
    const table = fakeTable(rows);
    await expect(createEventLog(table).list(input)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(table.calls).toHaveLength(0);
  });
});
