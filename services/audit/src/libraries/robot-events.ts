import { fromBinary } from '@bufbuild/protobuf';
import { timestampDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import { AppError, isUuid, parseRobotEventSubject, type Logger } from '@portcullis/kit';
import { RobotEventSchema, type RobotEvent } from '@portcullis/proto/audit';
import type { VerifyRobotTokenResponse } from '@portcullis/proto/auth';
import type { AuditRecord } from './audit-record.js';

/** Why a robot event was not stored: the `reason` label of the rejection counter. Closed set. */
export const robotRejectReasons = [
  /** The subject is not `<prefix>.robots.<tenant uuid>.<robot uuid>.events`. */
  'bad_subject',
  /** No `Portcullis-Robot-Token` header. */
  'missing_token',
  /** The payload is not a `RobotEvent`. */
  'malformed',
  /** A bad event id, kind, team or assistant id, time or attributes. */
  'invalid_event',
  /** Auth refused the token: forged, unknown, revoked, expired, or its creator left the tenant (auth tells these apart to nobody). */
  'invalid_token',
  /** Auth: the robot's creator no longer holds any of the robot's teams. */
  'permission_denied',
  /** Auth: the robot's tenant is suspended. */
  'tenant_suspended',
  /** The token's tenant is not the subject's: a robot publishing into another tenant's stream. */
  'cross_tenant',
  /** The token is another robot's than the subject names. */
  'robot_mismatch',
  /** The event names a team the robot may not act in (now). */
  'team_out_of_scope',
] as const;

export type RobotRejectReason = (typeof robotRejectReasons)[number];

/** A message from the robot event stream, as the consumer hands it over. */
export interface RobotEventMessage {
  subject: string;
  data: Uint8Array;
  /** Every value of the robot token header (normally exactly one). */
  tokens: readonly string[];
  /** Trace id of the span handling the message; stored with the event ('' for none). */
  traceId: string;
  seq?: number;
}

/** What auth's VerifyRobotToken answers that the ingester uses. */
export type VerifiedRobotToken = Pick<VerifyRobotTokenResponse, 'robotId' | 'tenantId' | 'teamIds'>;

export interface RobotEventDeps {
  subjectPrefix: string;
  /**
   * Auth's VerifyRobotToken (signature, registration, revocation, expiry, the creator's
   * membership and current teams). Its AppError codes UNAUTHENTICATED, INVALID_ARGUMENT,
   * PERMISSION_DENIED and TENANT_SUSPENDED are verdicts on the token; anything else means auth
   * could not decide.
   */
  verifyRobotToken(token: string): Promise<VerifiedRobotToken>;
  /** Appends the record to its tenant's chain; false when its event id was stored already. Throws on a database failure. */
  store(record: AuditRecord): Promise<boolean>;
  /** Counts each rejected message (prom-client Counter compatible). */
  rejected: { inc(labels: { reason: RobotRejectReason }): void };
  /** Counts each newly stored event. */
  stored: { inc(): void };
  logger: Logger;
}

export type RobotEventOutcome = 'stored' | 'duplicate' | 'rejected';

/** Robot tokens are well under 2 KB; a longer header is refused without asking auth. */
const MAX_TOKEN_LENGTH = 8_192;
const MAX_KIND_LENGTH = 100;
const KIND = /^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9][A-Za-z0-9_-]*)*$/;
const MAX_ATTRIBUTES = 64;
const MAX_ATTRIBUTE_KEY_LENGTH = 128;
const MAX_ATTRIBUTE_VALUE_LENGTH = 4_096;
/** The valid range of google.protobuf.Timestamp (0001-01-01 … 9999-12-31). */
const MIN_SECONDS = -62_135_596_800n;
const MAX_SECONDS = 253_402_300_799n;

/**
 * How the kit's gRPC server refuses a caller it does not accept (services/kit/src/grpc/server.ts).
 * Such an UNAUTHENTICATED or PERMISSION_DENIED is about this service's own credential, not the
 * robot's token: treated as auth being unavailable, so a misconfiguration delays events instead
 * of rejecting every valid one.
 */
const callerRefusals = new Set(['a service credential is required', 'service credential rejected', 'this caller may not use this method']);

function isValidTimestamp(timestamp: Timestamp): boolean {
  return timestamp.seconds >= MIN_SECONDS && timestamp.seconds <= MAX_SECONDS && timestamp.nanos >= 0 && timestamp.nanos < 1_000_000_000;
}

const optionalUuid = (value: string) => value === '' || isUuid(value);

/** Postgres text and jsonb reject NUL; bounded so one robot cannot make huge rows. */
function hasValidAttributes(attributes: Record<string, string>): boolean {
  const entries = Object.entries(attributes);
  return (
    entries.length <= MAX_ATTRIBUTES &&
    entries.every(
      ([key, value]) =>
        key.length > 0 &&
        key.length <= MAX_ATTRIBUTE_KEY_LENGTH &&
        value.length <= MAX_ATTRIBUTE_VALUE_LENGTH &&
        !key.includes('\u0000') &&
        !value.includes('\u0000'),
    )
  );
}

function isValidEvent(event: RobotEvent): boolean {
  return (
    isUuid(event.eventId) &&
    event.kind.length <= MAX_KIND_LENGTH &&
    KIND.test(event.kind) &&
    optionalUuid(event.teamId) &&
    optionalUuid(event.assistantId) &&
    (event.occurredAt === undefined || isValidTimestamp(event.occurredAt)) &&
    hasValidAttributes(event.attributes)
  );
}

/** The stored record of a valid event of a verified robot: the robot is the principal, its token's tenant the owner. */
export function robotRecordOf(event: RobotEvent, robot: { robotId: string; tenantId: string }, traceId: string): AuditRecord {
  return {
    eventId: event.eventId.toLowerCase(),
    tenantId: robot.tenantId,
    kind: `robot.${event.kind}`,
    principalKind: 'robot',
    principalId: robot.robotId,
    principalRole: null,
    principalTenantId: robot.tenantId,
    assistantId: event.assistantId === '' ? null : event.assistantId.toLowerCase(),
    object: event.teamId === '' ? null : `team:${event.teamId.toLowerCase()}`,
    action: null,
    outcome: 'success',
    reason: null,
    traceId: traceId === '' ? null : traceId,
    requestId: null,
    occurredAt: event.occurredAt ? timestampDate(event.occurredAt) : null,
    attributes: { ...event.attributes },
  };
}

type Verdict = { ok: true; record: AuditRecord } | { ok: false; reason: RobotRejectReason; robot?: VerifiedRobotToken };

/** Auth's refusal as a rejection reason; thrown again (redelivery) when auth could not decide. */
function reasonOfAuthError(error: unknown): RobotRejectReason {
  if (error instanceof AppError && !callerRefusals.has(error.message)) {
    switch (error.code) {
      case 'UNAUTHENTICATED':
      case 'INVALID_ARGUMENT':
        return 'invalid_token';
      case 'PERMISSION_DENIED':
        return 'permission_denied';
      case 'TENANT_SUSPENDED':
        return 'tenant_suspended';
      default:
        break;
    }
  }
  throw new AppError('DEPENDENCY_UNAVAILABLE', 'robot tokens cannot be verified now; the event will be redelivered', { cause: error });
}

/**
 * Accepts events robots publish on `<prefix>.robots.<tenant>.<robot>.events`. Every message is
 * checked on its own: its subject, its token (verified by auth, every time: a revoked robot is
 * refused from its next message on), the token's tenant and robot against the subject's, the
 * event's team against the robot's current teams. A valid event joins its tenant's audit trail
 * (once per event id); anything else is acknowledged, counted by reason and logged without its
 * token or payload. When auth or the database cannot answer, the handler throws and the message
 * is redelivered: nothing unverified is stored and nothing valid is dropped.
 */
export function createRobotEvents({ subjectPrefix, verifyRobotToken, store, rejected, stored, logger }: RobotEventDeps) {
  async function judge(message: RobotEventMessage): Promise<Verdict> {
    const addressed = parseRobotEventSubject(message.subject, subjectPrefix);
    if (!addressed) return { ok: false, reason: 'bad_subject' };
    const [token, ...others] = message.tokens;
    if (token === undefined || token === '') return { ok: false, reason: 'missing_token' };
    if (others.length > 0 || token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'invalid_token' };
    let event: RobotEvent;
    try {
      event = fromBinary(RobotEventSchema, message.data);
    } catch {
      return { ok: false, reason: 'malformed' };
    }
    if (!isValidEvent(event)) return { ok: false, reason: 'invalid_event' };

    let robot: VerifiedRobotToken;
    try {
      robot = await verifyRobotToken(token);
    } catch (error) {
      return { ok: false, reason: reasonOfAuthError(error) };
    }
    // Auth answers only about well-formed registrations; anything else is never a pass.
    if (!isUuid(robot.tenantId) || !isUuid(robot.robotId) || !robot.teamIds.every(isUuid)) return { ok: false, reason: 'invalid_token' };
    const verified = { robotId: robot.robotId.toLowerCase(), tenantId: robot.tenantId.toLowerCase(), teamIds: robot.teamIds };
    if (verified.tenantId !== addressed.tenantId) return { ok: false, reason: 'cross_tenant', robot: verified };
    if (verified.robotId !== addressed.robotId) return { ok: false, reason: 'robot_mismatch', robot: verified };
    const teamId = event.teamId.toLowerCase();
    if (teamId !== '' && !robot.teamIds.some((id) => id.toLowerCase() === teamId)) {
      return { ok: false, reason: 'team_out_of_scope', robot: verified };
    }
    return { ok: true, record: robotRecordOf(event, verified, message.traceId) };
  }

  return {
    async ingest(message: RobotEventMessage): Promise<RobotEventOutcome> {
      const verdict = await judge(message);
      if (!verdict.ok) {
        rejected.inc({ reason: verdict.reason });
        logger.warn(
          {
            reason: verdict.reason,
            subject: message.subject,
            seq: message.seq,
            ...(verdict.robot ? { tokenTenantId: verdict.robot.tenantId, tokenRobotId: verdict.robot.robotId } : {}),
          },
          'robot event rejected; not stored',
        );
        return 'rejected';
      }
      if (await store(verdict.record)) {
        stored.inc();
        return 'stored';
      }
      logger.debug({ eventId: verdict.record.eventId, seq: message.seq }, 'robot event already stored');
      return 'duplicate';
    },
  };
}

export type RobotEvents = ReturnType<typeof createRobotEvents>;
