import { describe, expect, it } from '@jest/globals';
import { AppError, type AuditEventInit } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind } from '@portcullis/proto/common';
import { createActivationCodeHasher } from './activation-codes.js';
import { createEnrollmentLibrary, type BindAttempt, type BindResult, type DeviceRecord, type NewSession } from './enrollment.js';

const tenant = '00000000-0000-4000-8000-00000000000a';
const assistant = '00000000-0000-4000-8000-0000000000a1';
const user = '00000000-0000-4000-8000-0000000000f1';
const clock = new Date('2026-11-22T10:00:00.000Z');
const hashCode = createActivationCodeHasher(Buffer.alloc(32, 7));

interface Setup {
  clashes?: number;
  bindAnswer?: BindResult['outcome'];
  auditFails?: boolean;
  codes?: string[];
}

function setup({ clashes = 0, bindAnswer = 'bound', auditFails = false, codes = ['ABCDEF', 'GHJKMN', 'PQRSTU'] }: Setup = {}) {
  const sessions: { tenantId: string; session: NewSession }[] = [];
  const binds: { tenantId: string; attempt: BindAttempt }[] = [];
  const events: AuditEventInit[] = [];
  const committed: DeviceRecord[] = [];
  let clashesLeft = clashes;
  const queue = [...codes];
  const library = createEnrollmentLibrary({
    hashCode,
    ttlSeconds: 600,
    maxFailedBinds: 5,
    failedBindWindowSeconds: 900,
    now: () => clock,
    generateCode: () => queue.shift()!,
    audit: {
      async publish(event) {
        if (auditFails) throw new AppError('DEPENDENCY_UNAVAILABLE', 'event bus did not accept the event');
        events.push(event);
        return 'event-id';
      },
    },
    store: {
      async createSession(tenantId, session) {
        if (clashesLeft-- > 0) return undefined;
        sessions.push({ tenantId, session });
        return { id: `session-${sessions.length}` };
      },
      async bind(tenantId, attempt, onBound): Promise<BindResult> {
        binds.push({ tenantId, attempt });
        if (bindAnswer !== 'bound') return { outcome: bindAnswer };
        const device = {
          id: 'device-1',
          tenantId,
          assistantId: attempt.assistantId,
          ownerUserId: attempt.ownerUserId,
          name: 'Kitchen',
          boundAt: attempt.now,
        };
        await onBound(device);
        committed.push(device);
        return { outcome: 'bound', device };
      },
      async listDevices() {
        return committed;
      },
    },
  });
  return { library, sessions, binds, events, committed };
}

describe('startActivation', () => {
  it('returns the code once and stores only its keyed hash, with the expiry TTL seconds ahead', async () => {
    const { library, sessions } = setup();
    const started = await library.startActivation({ tenantId: tenant, assistantId: assistant, deviceName: '  Kitchen speaker ' });
    expect(started).toEqual({ sessionId: 'session-1', code: 'ABCDEF', expiresAt: new Date('2026-11-22T10:10:00.000Z') });
    expect(sessions).toEqual([
      {
        tenantId: tenant,
        session: {
          assistantId: assistant,
          deviceName: 'Kitchen speaker',
          codeHash: '579d7afb9ae4877bc5fc2c9574900e64538e986c430eb2733071a676947eb422',
          expiresAt: started.expiresAt,
        },
      },
    ]);
    expect(JSON.stringify(sessions)).not.toContain('ABCDEF');
  });

  it('draws another code when the first is already live for the assistant', async () => {
    const { library } = setup({ clashes: 2 });
    expect((await library.startActivation({ tenantId: tenant, assistantId: assistant, deviceName: 'x' })).code).toBe('PQRSTU');
  });

  it.each([
    [{ tenantId: 'nope' }],
    [{ assistantId: '' }],
    [{ deviceName: '   ' }],
    [{ deviceName: 'x'.repeat(101) }],
    [{ deviceName: 'bad\u0007name' }],
  ])('rejects %j with INVALID_ARGUMENT', async (change) => {
    const { library, sessions } = setup();
    await expect(library.startActivation({ tenantId: tenant, assistantId: assistant, deviceName: 'ok', ...change })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(sessions).toHaveLength(0);
  });
});

describe('bindDevice', () => {
  const request = { tenantId: tenant, assistantId: assistant, code: ' abcdef ', userId: user };

  it("binds by the keyed hash of the normalised code, with the user's failure window, and audits the binding", async () => {
    const { library, binds, events } = setup();
    const device = await library.bindDevice(request);
    expect(device).toMatchObject({ id: 'device-1', ownerUserId: user, assistantId: assistant });
    expect(binds).toEqual([
      {
        tenantId: tenant,
        attempt: {
          assistantId: assistant,
          codeHash: hashCode('ABCDEF'),
          ownerUserId: user,
          now: clock,
          failedBindsSince: new Date('2026-11-22T09:45:00.000Z'),
          maxFailedBinds: 5,
        },
      },
    ]);
    expect(events).toEqual([
      expect.objectContaining({
        tenantId: tenant,
        kind: 'device.bound',
        principal: { kind: PrincipalKind.USER, id: user, tenantId: tenant },
        assistantId: assistant,
        object: 'devices',
        action: 'bind',
        outcome: Outcome.SUCCESS,
        attributes: { device_id: 'device-1', device_name: 'Kitchen' },
      }),
    ]);
  });

  it('answers NOT_FOUND "activation code is invalid or expired" when no live session matches', async () => {
    const { library, events } = setup({ bindAnswer: 'wrong-code' });
    await expect(library.bindDevice(request)).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: 'activation code is invalid or expired',
    });
    expect(events).toHaveLength(0);
  });

  it('answers RATE_LIMITED when the user has too many wrong codes, without echoing the code', async () => {
    const { library, events } = setup({ bindAnswer: 'rate-limited' });
    const thrown = await library.bindDevice(request).catch((error: unknown) => error);
    expect(thrown).toMatchObject({ code: 'RATE_LIMITED', message: 'too many wrong activation codes; try again later' });
    expect(JSON.stringify(thrown)).not.toMatch(/abcdef/i);
    expect(events).toHaveLength(0);
  });

  it('slides the failure window with the clock and the configured length', async () => {
    const binds: BindAttempt[] = [];
    let at = clock;
    const library = createEnrollmentLibrary({
      hashCode,
      ttlSeconds: 600,
      maxFailedBinds: 2,
      failedBindWindowSeconds: 30,
      now: () => at,
      audit: { publish: async () => 'event-id' },
      store: {
        createSession: async () => ({ id: 's' }),
        async bind(_tenantId, attempt) {
          binds.push(attempt);
          return { outcome: 'wrong-code' };
        },
        listDevices: async () => [],
      },
    });
    await expect(library.bindDevice(request)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    at = new Date(clock.getTime() + 60_000);
    await expect(library.bindDevice(request)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(binds.map((b) => [b.now.toISOString(), b.failedBindsSince.toISOString(), b.maxFailedBinds])).toEqual([
      ['2026-11-22T10:00:00.000Z', '2026-11-22T09:59:30.000Z', 2],
      ['2026-11-22T10:01:00.000Z', '2026-11-22T10:00:30.000Z', 2],
    ]);
  });

  it('rejects malformed codes before touching the store', async () => {
    const { library, binds } = setup();
    for (const code of ['', 'ABCDE', 'ABCDEFG', 'ABCDE0', 'ABCDEI']) {
      await expect(library.bindDevice({ ...request, code })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    await expect(library.bindDevice({ ...request, userId: 'someone' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(binds).toHaveLength(0);
  });

  it('keeps nothing when the audit event cannot be stored', async () => {
    const { library, committed } = setup({ auditFails: true });
    await expect(library.bindDevice(request)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(committed).toHaveLength(0);
  });
});

describe('listDevices', () => {
  it('requires a tenant id', async () => {
    const { library } = setup();
    await expect(library.listDevices('x')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(library.listDevices(tenant)).resolves.toEqual([]);
  });
});
