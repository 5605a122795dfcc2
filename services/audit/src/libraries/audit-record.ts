import { create, type DescEnum, type MessageInitShape } from '@bufbuild/protobuf';
import type { GenEnum } from '@bufbuild/protobuf/codegenv2';
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { AuditEventSchema, OutcomeSchema, type AuditEvent } from '@portcullis/proto/audit';
import { PrincipalKindSchema, RoleSchema } from '@portcullis/proto/common';

/** An audit event as the service stores it: empty strings and unspecified enums become null. */
export interface AuditRecord {
  eventId: string;
  tenantId: string;
  kind: string;
  principalKind: string | null;
  principalId: string | null;
  principalRole: string | null;
  principalTenantId: string | null;
  assistantId: string | null;
  object: string | null;
  action: string | null;
  outcome: string | null;
  reason: string | null;
  traceId: string | null;
  requestId: string | null;
  occurredAt: Date | null;
  attributes: Record<string, string>;
}

/** A stored record with its ordering key (insertion order; higher is newer). */
export interface StoredAuditRecord extends AuditRecord {
  id: bigint;
  receivedAt: Date;
}

/**
 * Stored name of an enum value: `PRINCIPAL_KIND_API_KEY` → `api_key`, unspecified (0) → null.
 * A number this build does not know (from a newer publisher) is kept as its decimal text.
 */
export function enumName(schema: DescEnum, value: number): string | null {
  if (value === 0) return null;
  const known = schema.value[value];
  if (!known) return String(value);
  const prefix = schema.sharedPrefix ?? '';
  const name = known.name.toLowerCase();
  return name.startsWith(prefix) ? name.slice(prefix.length) : name;
}

/** The inverse of enumName; anything unrecognised reads back as unspecified (0). */
export function enumValue<E extends number>(schema: GenEnum<E>, name: string | null): E {
  const prefix = schema.sharedPrefix ?? '';
  const number =
    name === null
      ? 0
      : /^-?[0-9]+$/.test(name)
        ? Number(name)
        : (schema.values.find((value) => value.name.toLowerCase() === `${prefix}${name}`)?.number ?? 0);
  // Protobuf enums are open: any int32 is a legal value of E, known or not.
  return number as E;
}

const orNull = (text: string): string | null => (text === '' ? null : text);

/** Maps a decoded, validated event to the record stored for it. */
export function recordOf(event: AuditEvent): AuditRecord {
  const principal = event.principal;
  return {
    eventId: event.eventId.toLowerCase(),
    tenantId: event.tenantId.toLowerCase(),
    kind: event.kind,
    principalKind: principal ? enumName(PrincipalKindSchema, principal.kind) : null,
    principalId: principal ? orNull(principal.id) : null,
    principalRole: principal ? enumName(RoleSchema, principal.role) : null,
    principalTenantId: principal ? orNull(principal.tenantId) : null,
    assistantId: orNull(event.assistantId),
    object: orNull(event.object),
    action: orNull(event.action),
    outcome: enumName(OutcomeSchema, event.outcome),
    reason: orNull(event.reason),
    traceId: orNull(event.traceId),
    requestId: orNull(event.requestId),
    occurredAt: event.occurredAt ? timestampDate(event.occurredAt) : null,
    attributes: { ...event.attributes },
  };
}

/** Maps a stored record back to the AuditEvent message the API returns. */
export function auditEventOf(record: AuditRecord): AuditEvent {
  const hasPrincipal =
    record.principalKind !== null || record.principalId !== null || record.principalRole !== null || record.principalTenantId !== null;
  const init: MessageInitShape<typeof AuditEventSchema> = {
    eventId: record.eventId,
    tenantId: record.tenantId,
    kind: record.kind,
    assistantId: record.assistantId ?? '',
    object: record.object ?? '',
    action: record.action ?? '',
    outcome: enumValue(OutcomeSchema, record.outcome),
    reason: record.reason ?? '',
    traceId: record.traceId ?? '',
    requestId: record.requestId ?? '',
    attributes: record.attributes,
  };
  if (hasPrincipal) {
    init.principal = {
      kind: enumValue(PrincipalKindSchema, record.principalKind),
      id: record.principalId ?? '',
      tenantId: record.principalTenantId ?? '',
      role: enumValue(RoleSchema, record.principalRole),
    };
  }
  if (record.occurredAt) init.occurredAt = timestampFromDate(record.occurredAt);
  return create(AuditEventSchema, init);
}
