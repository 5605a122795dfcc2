import { fromBinary } from '@bufbuild/protobuf';
import type { Timestamp } from '@bufbuild/protobuf/wkt';
import { auditBatchKind, isUuid, namespaced } from '@portcullis/kit';
import { AuditEventBatchSchema, AuditEventSchema, type AuditEvent } from '@portcullis/proto/audit';
import { recordOf, type AuditRecord } from './audit-record.js';

/** Why a message was not stored. Closed set, so counts and logs stay bounded. */
export const rejectReasons = [
  'undecodable',
  'bad_subject',
  'invalid_event_id',
  'invalid_tenant_id',
  'missing_kind',
  'tenant_mismatch',
  'kind_mismatch',
  'invalid_occurred_at',
  'invalid_text',
  'reserved_kind',
  'batch_too_large',
] as const;

/** Events in one batch, at most (publishers send up to 256); a larger batch is refused whole. */
export const maxEventsPerBatch = 1_000;

export type RejectReason = (typeof rejectReasons)[number];

export type ParsedAuditMessage = { ok: true; record: AuditRecord } | { ok: false; reason: RejectReason };

export interface InboundMessage {
  subject: string;
  data: Uint8Array;
}

/** The valid range of google.protobuf.Timestamp: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z. */
const MIN_SECONDS = -62_135_596_800n;
const MAX_SECONDS = 253_402_300_799n;

function isValidTimestamp(timestamp: Timestamp): boolean {
  return (
    timestamp.seconds >= MIN_SECONDS &&
    timestamp.seconds <= MAX_SECONDS &&
    Number.isInteger(timestamp.nanos) &&
    timestamp.nanos >= 0 &&
    timestamp.nanos < 1_000_000_000
  );
}

/** Postgres text and jsonb reject NUL; such an event could never be stored, so it is refused up front. */
function hasStorableText(event: AuditEvent): boolean {
  const texts = [
    event.eventId,
    event.tenantId,
    event.kind,
    event.assistantId,
    event.object,
    event.action,
    event.reason,
    event.traceId,
    event.requestId,
    event.principal?.id ?? '',
    event.principal?.tenantId ?? '',
    ...Object.entries(event.attributes).flat(),
  ];
  return texts.every((text) => !text.includes('\u0000'));
}

/** Splits `<prefix>.audit.<tenant>.<kind>` (the kind may itself be dotted) into its parts. */
export function parseAuditSubject(subject: string, subjectPrefix: string): { tenantId: string; kind: string } | undefined {
  const base = namespaced(subjectPrefix, 'audit.');
  if (!subject.startsWith(base)) return undefined;
  const rest = subject.slice(base.length);
  const dot = rest.indexOf('.');
  if (dot <= 0 || dot === rest.length - 1) return undefined;
  return { tenantId: rest.slice(0, dot), kind: rest.slice(dot + 1) };
}

/**
 * Validates one event addressed to `addressed.tenantId`: ids are UUIDs, the kind is set (and
 * equals the subject's for a single event), the tenant is the subject's — a publisher cannot file
 * an event under another tenant's subject — and every text can be stored.
 */
function validateEvent(event: AuditEvent, addressed: { tenantId: string; kind: string | undefined }): ParsedAuditMessage {
  if (!isUuid(event.eventId)) return { ok: false, reason: 'invalid_event_id' };
  if (!isUuid(event.tenantId)) return { ok: false, reason: 'invalid_tenant_id' };
  if (event.kind.trim() === '') return { ok: false, reason: 'missing_kind' };
  if (event.kind.startsWith('_')) return { ok: false, reason: 'reserved_kind' };
  if (addressed.tenantId.toLowerCase() !== event.tenantId.toLowerCase()) return { ok: false, reason: 'tenant_mismatch' };
  if (addressed.kind !== undefined && addressed.kind !== event.kind) return { ok: false, reason: 'kind_mismatch' };
  if (event.occurredAt && !isValidTimestamp(event.occurredAt)) return { ok: false, reason: 'invalid_occurred_at' };
  if (!hasStorableText(event)) return { ok: false, reason: 'invalid_text' };
  return { ok: true, record: recordOf(event) };
}

/** Whether a message is a batch (`audit.<tenant>._batch`) rather than one event. */
export function isAuditBatch(subject: string, subjectPrefix: string): boolean {
  return parseAuditSubject(subject, subjectPrefix)?.kind === auditBatchKind;
}

/** Decodes and validates one message from the audit stream that carries one event. */
export function parseAuditMessage({ subject, data }: InboundMessage, subjectPrefix: string): ParsedAuditMessage {
  let event: AuditEvent;
  try {
    event = fromBinary(AuditEventSchema, data);
  } catch {
    return { ok: false, reason: 'undecodable' };
  }
  const addressed = parseAuditSubject(subject, subjectPrefix);
  if (!addressed) return { ok: false, reason: 'bad_subject' };
  return validateEvent(event, addressed);
}

/**
 * Decodes a batch (`audit.<tenant>._batch`) and validates each of its events as if it had been
 * published alone to that tenant: the valid ones are kept, each invalid one is refused with its
 * reason. An undecodable batch, or one of more than `maxEventsPerBatch` events, is refused whole.
 */
export function parseAuditBatch(
  { subject, data }: InboundMessage,
  subjectPrefix: string,
): { ok: true; tenantId: string; records: AuditRecord[]; rejected: RejectReason[] } | { ok: false; reason: RejectReason } {
  const addressed = parseAuditSubject(subject, subjectPrefix);
  if (addressed?.kind !== auditBatchKind || !isUuid(addressed.tenantId)) return { ok: false, reason: 'bad_subject' };
  let events: AuditEvent[];
  try {
    events = fromBinary(AuditEventBatchSchema, data).events;
  } catch {
    return { ok: false, reason: 'undecodable' };
  }
  if (events.length > maxEventsPerBatch) return { ok: false, reason: 'batch_too_large' };
  const records: AuditRecord[] = [];
  const rejected: RejectReason[] = [];
  for (const event of events) {
    const parsed = validateEvent(event, { tenantId: addressed.tenantId, kind: undefined });
    if (parsed.ok) records.push(parsed.record);
    else rejected.push(parsed.reason);
  }
  return { ok: true, tenantId: addressed.tenantId.toLowerCase(), records, rejected };
}
