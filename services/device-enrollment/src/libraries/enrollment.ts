import { AppError, requireText, requireUuid, type AuditPublisher } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind } from '@portcullis/proto/common';
import { generateActivationCode, normalizeActivationCode, type ActivationCodeHasher } from './activation-codes.js';

export interface DeviceRecord {
  id: string;
  tenantId: string;
  assistantId: string;
  ownerUserId: string;
  name: string;
  boundAt: Date;
}

export interface NewSession {
  assistantId: string;
  deviceName: string;
  codeHash: string;
  expiresAt: Date;
}

export interface BindAttempt {
  assistantId: string;
  codeHash: string;
  ownerUserId: string;
  /** Sessions expiring at or before this instant are dead; a failure is recorded at it. */
  now: Date;
  /** Start of the sliding window: the user's failed binds after it count. */
  failedBindsSince: Date;
  /** With this many failed binds in the window, the user's binds are refused unlooked. */
  maxFailedBinds: number;
}

/** How a bind ended: bound, a code that matched no live session, or a user over the limit. */
export type BindResult = { outcome: 'bound'; device: DeviceRecord } | { outcome: 'wrong-code' } | { outcome: 'rate-limited' };

/** Where sessions and devices live; every call is scoped to one tenant. */
export interface EnrollmentStore {
  /**
   * Stores a session, unless the same code hash is already live for the assistant (then
   * undefined, and the caller draws another code).
   */
  createSession(tenantId: string, session: NewSession, now: Date): Promise<{ id: string } | undefined>;
  /**
   * One bind, serialised per (tenant, user): if the user already has `maxFailedBinds` failed
   * binds since `failedBindsSince`, answers rate-limited without looking for the code.
   * Otherwise consumes the newest live session with the code hash (at most once, whatever
   * runs concurrently) and creates the device; `onBound` runs inside the same transaction
   * and if it throws, nothing is kept. With no live session to consume, records one failed
   * bind for the user (and nothing else) and answers wrong-code.
   */
  bind(tenantId: string, attempt: BindAttempt, onBound: (device: DeviceRecord) => Promise<void>): Promise<BindResult>;
  listDevices(tenantId: string): Promise<DeviceRecord[]>;
}

export interface EnrollmentDeps {
  store: EnrollmentStore;
  audit: Pick<AuditPublisher, 'publish'>;
  /** Keyed hash of a canonical code (`createActivationCodeHasher(ACTIVATION_CODE_SECRET)`). */
  hashCode: ActivationCodeHasher;
  ttlSeconds: number;
  /** Failed binds one user may have within the window. */
  maxFailedBinds: number;
  failedBindWindowSeconds: number;
  now?: () => Date;
  generateCode?: () => string;
}

export interface StartedActivation {
  sessionId: string;
  /** Shown by the device to its user; returned once, never stored or logged. */
  code: string;
  expiresAt: Date;
}

const CODE_DRAWS = 5;
const invalidOrExpired = () => new AppError('NOT_FOUND', 'activation code is invalid or expired');
const tooManyWrongCodes = () => new AppError('RATE_LIMITED', 'too many wrong activation codes; try again later');

function requireDeviceName(value: string): string {
  const name = requireText(value, 'device_name', 100);
  // eslint-disable-next-line no-control-regex -- the point is to reject control characters
  if (/[\u0000-\u001f\u007f]/.test(name)) {
    throw new AppError('INVALID_ARGUMENT', 'device_name must not contain control characters', { details: { field: 'device_name' } });
  }
  return name;
}

/**
 * Device activation: a device starts a session and shows a short code; a signed-in user
 * enters it and the device is bound to that user and assistant. Codes are single use,
 * short-lived, stored only as a keyed hash, and scoped to one tenant and assistant. Each
 * user has a limited number of wrong codes per sliding window.
 */
export function createEnrollmentLibrary({
  store,
  audit,
  hashCode,
  ttlSeconds,
  maxFailedBinds,
  failedBindWindowSeconds,
  now = () => new Date(),
  generateCode = generateActivationCode,
}: EnrollmentDeps) {
  return {
    async startActivation(input: { tenantId: string; assistantId: string; deviceName: string }): Promise<StartedActivation> {
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      const assistantId = requireUuid(input.assistantId, 'assistant_id');
      const deviceName = requireDeviceName(input.deviceName);
      for (let draw = 0; draw < CODE_DRAWS; draw++) {
        const code = generateCode();
        const started = now();
        const expiresAt = new Date(started.getTime() + ttlSeconds * 1000);
        const session = await store.createSession(tenantId, { assistantId, deviceName, codeHash: hashCode(code), expiresAt }, started);
        if (session) return { sessionId: session.id, code, expiresAt };
      }
      throw new AppError('INTERNAL', 'could not draw an unused activation code');
    },

    async bindDevice(input: { tenantId: string; assistantId: string; code: string; userId: string }): Promise<DeviceRecord> {
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      const assistantId = requireUuid(input.assistantId, 'assistant_id');
      const ownerUserId = requireUuid(input.userId, 'user_id');
      const codeHash = hashCode(normalizeActivationCode(input.code));
      const at = now();
      const attempt: BindAttempt = {
        assistantId,
        codeHash,
        ownerUserId,
        now: at,
        failedBindsSince: new Date(at.getTime() - failedBindWindowSeconds * 1000),
        maxFailedBinds,
      };
      const result = await store.bind(tenantId, attempt, async (bound) => {
        await audit.publish({
          tenantId,
          kind: 'device.bound',
          principal: { kind: PrincipalKind.USER, id: ownerUserId, tenantId },
          assistantId,
          object: 'devices',
          action: 'bind',
          outcome: Outcome.SUCCESS,
          attributes: { device_id: bound.id, device_name: bound.name },
        });
      });
      switch (result.outcome) {
        case 'bound':
          return result.device;
        case 'wrong-code':
          throw invalidOrExpired();
        case 'rate-limited':
          throw tooManyWrongCodes();
      }
    },

    async listDevices(tenantIdInput: string): Promise<DeviceRecord[]> {
      return await store.listDevices(requireUuid(tenantIdInput, 'tenant_id'));
    },
  };
}

export type EnrollmentLibrary = ReturnType<typeof createEnrollmentLibrary>;
