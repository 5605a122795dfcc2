import { AppError, requireText, requireUuid, type AuditPublisher } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind } from '@portcullis/proto/common';
import { generateActivationCode, hashActivationCode, normalizeActivationCode } from './activation-codes.js';

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
  /** Sessions expiring at or before this instant are dead. */
  now: Date;
  /** Sessions with this many wrong attempts are dead. */
  maxAttempts: number;
}

/** Where sessions and devices live; every call is scoped to one tenant. */
export interface EnrollmentStore {
  /**
   * Stores a session, unless the same code hash is already live for the assistant (then
   * undefined, and the caller draws another code).
   */
  createSession(tenantId: string, session: NewSession, now: Date, maxAttempts: number): Promise<{ id: string } | undefined>;
  /**
   * Consumes the newest live session with the code hash (at most once, whatever runs
   * concurrently) and creates the device. `onBound` runs inside the same transaction; if it
   * throws, nothing is kept. With no live session, counts a wrong attempt against the
   * assistant's live sessions and returns undefined.
   */
  bind(tenantId: string, attempt: BindAttempt, onBound: (device: DeviceRecord) => Promise<void>): Promise<DeviceRecord | undefined>;
  listDevices(tenantId: string): Promise<DeviceRecord[]>;
}

export interface EnrollmentDeps {
  store: EnrollmentStore;
  audit: Pick<AuditPublisher, 'publish'>;
  ttlSeconds: number;
  maxAttempts: number;
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
 * short-lived, stored only as a hash, and scoped to one tenant and assistant.
 */
export function createEnrollmentLibrary({
  store,
  audit,
  ttlSeconds,
  maxAttempts,
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
        const session = await store.createSession(
          tenantId,
          { assistantId, deviceName, codeHash: hashActivationCode(code), expiresAt },
          started,
          maxAttempts,
        );
        if (session) return { sessionId: session.id, code, expiresAt };
      }
      throw new AppError('INTERNAL', 'could not draw an unused activation code');
    },

    async bindDevice(input: { tenantId: string; assistantId: string; code: string; userId: string }): Promise<DeviceRecord> {
      const tenantId = requireUuid(input.tenantId, 'tenant_id');
      const assistantId = requireUuid(input.assistantId, 'assistant_id');
      const ownerUserId = requireUuid(input.userId, 'user_id');
      const codeHash = hashActivationCode(normalizeActivationCode(input.code));
      const device = await store.bind(tenantId, { assistantId, codeHash, ownerUserId, now: now(), maxAttempts }, async (bound) => {
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
      if (!device) throw invalidOrExpired();
      return device;
    },

    async listDevices(tenantIdInput: string): Promise<DeviceRecord[]> {
      return await store.listDevices(requireUuid(tenantIdInput, 'tenant_id'));
    },
  };
}

export type EnrollmentLibrary = ReturnType<typeof createEnrollmentLibrary>;
