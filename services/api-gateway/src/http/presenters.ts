import { timestampDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import { Outcome, type AuditEvent } from '@portcullis/proto/audit';
import { roleNameOf, type RoleName } from '@portcullis/kit';
import { PrincipalKind, type Role } from '@portcullis/proto/common';

/** A role for display: its name, or 'none' for a principal without one. */
export function roleName(role: Role): RoleName | 'none' {
  return roleNameOf(role) ?? 'none';
}

function outcomeName(outcome: Outcome): string {
  switch (outcome) {
    case Outcome.ALLOW:
      return 'allow';
    case Outcome.DENY:
      return 'deny';
    case Outcome.SUCCESS:
      return 'success';
    case Outcome.FAILURE:
      return 'failure';
    case Outcome.UNSPECIFIED:
      return 'unspecified';
  }
}

function principalKindName(kind: PrincipalKind): string {
  switch (kind) {
    case PrincipalKind.USER:
      return 'user';
    case PrincipalKind.API_KEY:
      return 'api_key';
    case PrincipalKind.ROBOT:
      return 'robot';
    case PrincipalKind.DEVICE:
      return 'device';
    case PrincipalKind.SERVICE:
      return 'service';
    case PrincipalKind.UNSPECIFIED:
      return 'unspecified';
  }
}

export function isoTime(timestamp: Timestamp | undefined): string | null {
  return timestamp ? timestampDate(timestamp).toISOString() : null;
}

export function presentAuditEvent(event: AuditEvent) {
  return {
    eventId: event.eventId,
    kind: event.kind,
    occurredAt: isoTime(event.occurredAt),
    principal: event.principal
      ? { kind: principalKindName(event.principal.kind), id: event.principal.id, role: roleName(event.principal.role) }
      : null,
    assistantId: event.assistantId || null,
    object: event.object,
    action: event.action,
    outcome: outcomeName(event.outcome),
    reason: event.reason,
    traceId: event.traceId,
    requestId: event.requestId,
    attributes: event.attributes,
  };
}
