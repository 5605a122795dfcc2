import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { z, type GrpcClient } from '@portcullis/kit';
import { EventFilterSchema, Outcome, type AuditService, type Checkpoint, type ChainedEvent } from '@portcullis/proto/audit';
import { isoTime, presentAuditEvent } from '../http/presenters.js';
import { parseInput, type ProtectedRoute } from '../http/route.js';

export interface AuditRouteDeps {
  audit: Pick<GrpcClient<typeof AuditService>, 'listEvents' | 'exportEvents' | 'verifyChain'>;
}

const outcomes = { allow: Outcome.ALLOW, deny: Outcome.DENY, success: Outcome.SUCCESS, failure: Outcome.FAILURE } as const;

/** Query parameters that narrow the trail; every one given must match. */
const filterQuery = z.object({
  from: z.iso.datetime({ offset: true }).optional(),
  before: z.iso.datetime({ offset: true }).optional(),
  principal: z.string().min(1).max(200).optional(),
  kind: z.string().min(1).max(200).optional(),
  assistant: z.uuid().optional(),
  outcome: z.enum(['allow', 'deny', 'success', 'failure']).optional(),
});

function filterOf(query: z.infer<typeof filterQuery>) {
  return create(EventFilterSchema, {
    ...(query.from ? { occurredFrom: timestampFromDate(new Date(query.from)) } : {}),
    ...(query.before ? { occurredBefore: timestampFromDate(new Date(query.before)) } : {}),
    principalId: query.principal ?? '',
    kind: query.kind ?? '',
    assistantId: query.assistant ?? '',
    outcome: query.outcome ? outcomes[query.outcome] : Outcome.UNSPECIFIED,
  });
}

const hex = (bytes: Uint8Array | undefined) => Buffer.from(bytes ?? []).toString('hex');

/** Names of the stored fields in a record's canonical text, after its version tag and sequence number. */
const canonicalFields = [
  'eventId',
  'tenantId',
  'kind',
  'principalKind',
  'principalId',
  'principalRole',
  'principalTenantId',
  'assistantId',
  'object',
  'action',
  'outcome',
  'reason',
  'traceId',
  'requestId',
  'occurredAt',
  'attributes',
] as const;

/**
 * One exported record: the fields exactly as hashed (named, read from the canonical text the
 * audit service hashed), the canonical text itself, and the record's chain link.
 */
function eventLine(item: ChainedEvent): string {
  const link = item.link;
  const canonical = link?.canonical ?? '';
  const values = JSON.parse(canonical || '[]') as unknown[];
  const record = Object.fromEntries(canonicalFields.map((field, index) => [field, values[index + 2] ?? null]));
  record['attributes'] = Object.fromEntries((record['attributes'] as [string, string][] | null) ?? []);
  return JSON.stringify({
    type: 'event',
    seq: String(link?.chainSeq ?? 0n),
    prevHash: hex(link?.prevHash),
    recordHash: hex(link?.recordHash),
    receivedAt: isoTime(link?.receivedAt),
    record,
    canonical,
  });
}

function checkpointLine(checkpoint: Checkpoint): string {
  return JSON.stringify({
    type: 'checkpoint',
    seq: String(checkpoint.chainSeq),
    recordHash: hex(checkpoint.recordHash),
    signedAt: isoTime(checkpoint.signedAt),
    jws: checkpoint.jws,
  });
}

/**
 * Reading the audit trail: only a tenant's owners and admins hold `audit:read`, and only as
 * themselves (no API key or robot reads it). The platform auditor reads over the audit service's
 * gRPC API with its own service identity.
 */
export function createAuditRoutes({ audit }: AuditRouteDeps): ProtectedRoute[] {
  return [
    {
      kind: 'protected',
      method: 'get',
      path: '/api/audit/events',
      capability: { object: 'audit', action: 'read' },
      humansOnly: true,
      summary:
        "The tenant's audit trail, newest first, with cursor pagination; narrowed by from/before (occurred time), principal, kind (or a family such as `tool.`), assistant and outcome",
      async handle({ request, target }, { query }) {
        const input = parseInput(
          filterQuery.extend({ pageSize: z.coerce.number().int().min(1).max(200).default(50), pageToken: z.string().max(200).default('') }),
          query,
        );
        const result = await audit.listEvents(
          { tenantId: target.tenantId, pageSize: input.pageSize, pageToken: input.pageToken, filter: filterOf(input) },
          { requestId: request.requestId },
        );
        return { body: { events: result.events.map(presentAuditEvent), nextPageToken: result.nextPageToken || null } };
      },
    },
    {
      kind: 'protected',
      method: 'get',
      path: '/api/audit/export',
      capability: { object: 'audit', action: 'read' },
      humansOnly: true,
      sensitive: 'auditExport',
      summary:
        'The tenant\'s chained audit records as JSON Lines (application/jsonl), in chain order: a header line with the checkpoint keys, one line per record with its chain link, the signed checkpoints, and a final `{"type":"end"}` line (an export without it is incomplete). Same filters as /api/audit/events',
      async handle({ request, target }, { query }) {
        const input = parseInput(filterQuery, query);
        const filter = filterOf(input);
        const page = (pageToken: string) =>
          audit.exportEvents({ tenantId: target.tenantId, filter, pageSize: 500, pageToken }, { requestId: request.requestId });
        // The first page is read before answering, so a refusal is still an ordinary error answer.
        const first = await page('');
        async function* lines(): AsyncIterable<string> {
          yield JSON.stringify({
            type: 'export',
            tenantId: target.tenantId,
            exportedAt: new Date().toISOString(),
            checkpointKeys: first.checkpointKeys.map((key) => JSON.parse(key) as unknown),
          });
          const sent = new Set<bigint>();
          let records = 0;
          for (let current = first; ; current = await page(current.nextPageToken)) {
            for (const item of current.events) {
              yield eventLine(item);
              records += 1;
            }
            for (const checkpoint of current.checkpoints) {
              if (sent.has(checkpoint.chainSeq)) continue;
              sent.add(checkpoint.chainSeq);
              yield checkpointLine(checkpoint);
            }
            if (!current.nextPageToken) break;
          }
          yield JSON.stringify({ type: 'end', records, checkpoints: sent.size });
        }
        return { body: null, lines: lines(), contentType: 'application/jsonl' };
      },
    },
    {
      kind: 'protected',
      method: 'get',
      path: '/api/audit/verify',
      capability: { object: 'audit', action: 'read' },
      humansOnly: true,
      sensitive: 'auditExport',
      summary: "Recomputes the tenant's audit hash chain and checks its signed checkpoints; names the first link that does not hold",
      async handle({ request, target }) {
        const verdict = await audit.verifyChain({ tenantId: target.tenantId }, { requestId: request.requestId });
        return {
          body: {
            intact: verdict.intact,
            recordsChecked: Number(verdict.recordsChecked),
            firstBroken: verdict.firstBroken
              ? { seq: String(verdict.firstBroken.chainSeq), eventId: verdict.firstBroken.eventId, reason: verdict.firstBroken.reason }
              : null,
          },
        };
      },
    },
  ];
}
