import { create } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from '@jest/globals';
import { AppError } from '@portcullis/kit';
import {
  AuditEventSchema,
  ChainedEventSchema,
  CheckpointSchema,
  ExportEventsResponseSchema,
  Outcome,
  type EventFilter,
  type ExportEventsRequest,
} from '@portcullis/proto/audit';
import type { ProtectedRoute } from '../http/route.js';
import type { AuthorizedContext } from '../pipeline/index.js';
import { createAuditRoutes, type AuditRouteDeps } from './audit-routes.js';

const tenantId = '00000000-0000-4000-8000-00000000000a';
const assistantId = '00000000-0000-4000-8000-0000000000c1';
const context = { request: { requestId: 'req-1' }, target: { tenantId, tenantName: 'Alpha' } } as unknown as AuthorizedContext;

const chained = (seq: number) =>
  create(ChainedEventSchema, {
    event: create(AuditEventSchema, { eventId: `e${String(seq)}`, tenantId, kind: 'tool.call', requestId: `r${String(seq)}` }),
    link: {
      chainSeq: BigInt(seq),
      prevHash: new Uint8Array(32).fill(seq - 1),
      recordHash: new Uint8Array(32).fill(seq),
      canonical: JSON.stringify([
        'portcullis-audit-v1',
        String(seq),
        `e${String(seq)}`,
        tenantId,
        'tool.call',
        ...Array<null>(10).fill(null),
        `r${String(seq)}`,
        null,
        [['b', '2']],
      ]),
    },
  });
const checkpoint = (seq: number) =>
  create(CheckpointSchema, { tenantId, chainSeq: BigInt(seq), recordHash: new Uint8Array(32).fill(seq), jws: `jws-${String(seq)}` });

/** An audit client over five chained records in pages of two, with checkpoints at 2 and 5. */
function setup(failOnPage?: string) {
  const filters: (EventFilter | undefined)[] = [];
  const exportRequests: ExportEventsRequest[] = [];
  const pages: Record<string, { events: number[]; checkpoints: number[]; next: string }> = {
    '': { events: [1, 2], checkpoints: [2], next: 'p2' },
    p2: { events: [3, 4], checkpoints: [5], next: 'p3' },
    p3: { events: [5], checkpoints: [5], next: '' },
  };
  const audit = {
    listEvents(request: { filter?: EventFilter }) {
      filters.push(request.filter);
      return Promise.resolve({ events: [], nextPageToken: '' });
    },
    exportEvents(request: ExportEventsRequest) {
      exportRequests.push(request);
      if (request.pageToken === failOnPage) return Promise.reject(new AppError('DEPENDENCY_UNAVAILABLE', 'audit is down'));
      const page = pages[request.pageToken];
      if (!page) return Promise.reject(new Error('unknown page'));
      return Promise.resolve(
        create(ExportEventsResponseSchema, {
          events: page.events.map(chained),
          checkpoints: page.checkpoints.map(checkpoint),
          checkpointKeys: ['{"kty":"OKP","crv":"Ed25519","x":"abc","kid":"k1"}'],
          nextPageToken: page.next,
        }),
      );
    },
    verifyChain: () =>
      Promise.resolve({ intact: false, recordsChecked: 4n, firstBroken: { chainSeq: 3n, eventId: 'e3', reason: 'record_altered' } }),
  } as unknown as AuditRouteDeps['audit'];
  const routes = createAuditRoutes({ audit });
  const route = (path: string): ProtectedRoute => {
    const found = routes.find((r) => r.path === path);
    if (!found) throw new Error(`no route ${path}`);
    return found;
  };
  return { route, filters, exportRequests };
}

async function collect(lines: AsyncIterable<string> | undefined): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for await (const line of lines ?? []) out.push(JSON.parse(line) as Record<string, unknown>);
  return out;
}

describe('audit routes', () => {
  it('are for people only (owners and admins hold audit:read), never API keys or robots', () => {
    const { route } = setup();
    for (const path of ['/api/audit/events', '/api/audit/export', '/api/audit/verify']) {
      expect(route(path)).toMatchObject({ capability: { object: 'audit', action: 'read' }, humansOnly: true });
    }
    expect(route('/api/audit/export').sensitive).toBe('auditExport');
  });

  it('turns the query into the audit filter', async () => {
    const { route, filters } = setup();
    await route('/api/audit/events').handle(context, {
      body: undefined,
      params: {},
      query: {
        from: '2026-12-01T00:00:00Z',
        before: '2026-12-02T00:00:00+01:00',
        principal: 'u1',
        kind: 'tool.',
        assistant: assistantId,
        outcome: 'deny',
      },
    });
    const filter = filters[0];
    expect({
      from: filter?.occurredFrom && timestampDate(filter.occurredFrom).toISOString(),
      before: filter?.occurredBefore && timestampDate(filter.occurredBefore).toISOString(),
      principalId: filter?.principalId,
      kind: filter?.kind,
      assistantId: filter?.assistantId,
      outcome: filter?.outcome,
    }).toEqual({
      from: '2026-12-01T00:00:00.000Z',
      before: '2026-12-01T23:00:00.000Z',
      principalId: 'u1',
      kind: 'tool.',
      assistantId,
      outcome: Outcome.DENY,
    });
  });

  it.each([
    [{ outcome: 'maybe' }, 'outcome'],
    [{ from: 'yesterday' }, 'from'],
    [{ assistant: 'a1' }, 'assistant'],
    [{ pageSize: '500' }, 'pageSize'],
  ])('refuses %j with INVALID_ARGUMENT naming the parameter', async (query, field) => {
    const { route, filters } = setup();
    await expect(route('/api/audit/events').handle(context, { body: undefined, params: {}, query })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining(field),
    });
    expect(filters).toHaveLength(0);
  });

  it('exports JSON Lines: a header with the keys, every record once in chain order with its link, each checkpoint once, then an end line', async () => {
    const { route, exportRequests } = setup();
    const result = await route('/api/audit/export').handle(context, { body: undefined, params: {}, query: { kind: 'tool.' } });
    expect(result.contentType).toBe('application/jsonl');
    const lines = await collect(result.lines);
    expect(lines[0]).toMatchObject({ type: 'export', tenantId, checkpointKeys: [{ kid: 'k1' }] });
    const requestIdOf = (line: Record<string, unknown>) => (line['record'] as { requestId?: string } | undefined)?.requestId ?? line['seq'];
    expect(lines.slice(1).map((line) => [line['type'], requestIdOf(line)])).toEqual([
      ['event', 'r1'],
      ['event', 'r2'],
      ['checkpoint', '2'],
      ['event', 'r3'],
      ['event', 'r4'],
      ['checkpoint', '5'],
      ['event', 'r5'],
      ['end', undefined],
    ]);
    expect(lines[2]).toMatchObject({
      seq: '2',
      prevHash: '01'.repeat(32),
      recordHash: '02'.repeat(32),
      record: {
        eventId: 'e2',
        tenantId,
        kind: 'tool.call',
        principalKind: null,
        requestId: 'r2',
        occurredAt: null,
        attributes: { b: '2' },
      },
    });
    expect(lines.at(-1)).toEqual({ type: 'end', records: 5, checkpoints: 2 });
    expect(exportRequests.map((r) => [r.pageToken, r.filter?.kind])).toEqual([
      ['', 'tool.'],
      ['p2', 'tool.'],
      ['p3', 'tool.'],
    ]);
  });

  it('answers an error when the first page fails, and cuts the stream without an end line when a later one does', async () => {
    await expect(setup('').route('/api/audit/export').handle(context, { body: undefined, params: {}, query: {} })).rejects.toMatchObject({
      code: 'DEPENDENCY_UNAVAILABLE',
    });
    const result = await setup('p2').route('/api/audit/export').handle(context, { body: undefined, params: {}, query: {} });
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const line of result.lines ?? []) seen.push((JSON.parse(line) as { type: string }).type);
      })(),
    ).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(seen).toEqual(['export', 'event', 'event', 'checkpoint']);
  });

  it('reports the chain verdict with the first broken link', async () => {
    const { route } = setup();
    await expect(route('/api/audit/verify').handle(context, { body: undefined, params: {}, query: {} })).resolves.toEqual({
      body: { intact: false, recordsChecked: 4, firstBroken: { seq: '3', eventId: 'e3', reason: 'record_altered' } },
    });
  });
});
