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

/** What a sign-in (password login, Google or GitHub) answers: a login ticket and the account's tenants. */
export interface SignInAnswer {
  loginTicket: string;
  userId: string;
  ticketExpiresInSeconds: number;
  phoneVerified: boolean;
  tenants: readonly { tenantId: string; tenantName: string; role: Role }[];
}

/** The body of every sign-in answer (POST /api/auth/login, the OAuth callbacks). */
export function presentSignIn(result: SignInAnswer) {
  const tenants = result.tenants.map((t) => ({ tenantId: t.tenantId, tenantName: t.tenantName, role: roleName(t.role) }));
  return {
    loginTicket: result.loginTicket,
    userId: result.userId,
    ticketExpiresIn: result.ticketExpiresInSeconds,
    phoneVerified: result.phoneVerified,
    tenants,
    ...(tenants.length === 0
      ? {
          next: result.phoneVerified
            ? 'You belong to no tenant yet: POST /api/tenants with {loginTicket, name} to create one.'
            : 'You belong to no tenant yet: verify your phone (POST /api/auth/phone/start with {loginTicket} — add "phone" if the account has none — then /api/auth/phone/verify), then POST /api/tenants with {loginTicket, name}.',
        }
      : {}),
  };
}

export function isoTime(timestamp: Timestamp | undefined): string | null {
  return timestamp ? timestampDate(timestamp).toISOString() : null;
}

export function presentAuditEvent(event: AuditEvent) {
  return {
    eventId: event.eventId,
    tenantId: event.tenantId,
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
