import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { PrismaPg } from '@prisma/adapter-pg';
import {
  connectNats,
  createAuditPublisher,
  createGrpcClient,
  createGrpcServer,
  createTrustedIdentities,
  createLogger,
  createTenantScope,
  type GrpcClient,
  type GrpcServer,
  type NatsConnection,
} from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind } from '@portcullis/proto/common';
import { DeviceEnrollmentService } from '@portcullis/proto/devices';
import {
  createTestDatabase,
  infra,
  pollUntil,
  testRunId,
  withPg,
  type TestDatabase,
  startAuditRecorder,
  type AuditRecorder,
} from '@portcullis/test';
import { PrismaClient } from '../src/generated/prisma/client.js';
import { createDeviceEnrollmentService } from '../src/grpc/device-enrollment-service.js';
import { ACTIVATION_ALPHABET, createActivationCodeHasher } from '../src/libraries/activation-codes.js';
import { createEnrollmentLibrary } from '../src/libraries/enrollment.js';
import { createEnrollmentQueries } from '../src/queries/enrollment.js';

const identities = createTrustedIdentities();

/** Every log line the services under test write, at the most verbose level. */
const logLines: string[] = [];
const logger = createLogger({
  name: 'device-enrollment-test',
  level: 'trace',
  destination: new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString('utf8'));
      done();
    },
  }),
});

interface Enrollment {
  server: GrpcServer;
  client: GrpcClient<typeof DeviceEnrollmentService>;
}

/** The HMAC key of this run, as ACTIVATION_CODE_SECRET would carry it. */
const codeSecret = randomBytes(32);

interface Limits {
  ttlSeconds: number;
  maxFailedBinds: number;
  failedBindWindowSeconds: number;
}

/** The service as main.ts wires it, with its own TTL and failed-bind limit. */
async function startEnrollment(prisma: PrismaClient, nc: NatsConnection, limits: Limits): Promise<Enrollment> {
  const audit = createAuditPublisher({ nc, subjectPrefix: testRunId });
  await audit.ensureStream();
  const enrollment = createEnrollmentLibrary({
    store: createEnrollmentQueries(createTenantScope(prisma)),
    audit,
    hashCode: createActivationCodeHasher(codeSecret),
    ...limits,
  });
  const server = createGrpcServer({
    identity: identities['device-enrollment'],
    logger,
    services: [createDeviceEnrollmentService({ enrollment })],
  });
  const port = await server.listen('127.0.0.1', 0);
  server.setServing(true);
  return {
    server,
    client: createGrpcClient(DeviceEnrollmentService, {
      address: `127.0.0.1:${port}`,
      deadlineMs: 10_000,
      credential: identities['platform-ops'].credentialFor('device-enrollment'),
    }),
  };
}

/** A well-formed code that differs from `code` in its first character. */
function otherCode(code: string): string {
  const first = ACTIVATION_ALPHABET[(ACTIVATION_ALPHABET.indexOf(code.charAt(0)) + 1) % ACTIVATION_ALPHABET.length] ?? 'A';
  return first + code.slice(1);
}

describe('device enrollment against Postgres and NATS', () => {
  let db: TestDatabase;
  let prisma: PrismaClient;
  let nc: NatsConnection;
  let recorder: AuditRecorder;
  let service: Enrollment;
  let shortLived: Enrollment;
  /** At most 3 wrong codes per user in 15 minutes. */
  let capped: Enrollment;
  /** At most 2 wrong codes per user in a 1-second window. */
  let sliding: Enrollment;
  const issuedCodes: string[] = [];

  const tenantA = randomUUID();
  const tenantB = randomUUID();
  const assistantA = randomUUID();
  const assistantB = randomUUID();
  const alice = randomUUID();
  const bob = randomUUID();

  const start = async (enrollment: Enrollment, tenantId: string, assistantId: string, deviceName = 'Kitchen speaker') => {
    const started = await enrollment.client.startActivation({ tenantId, assistantId, deviceName });
    issuedCodes.push(started.code);
    return started;
  };
  const invalidOrExpired = { code: 'NOT_FOUND', message: 'activation code is invalid or expired' };
  const rateLimited = { code: 'RATE_LIMITED', message: 'too many wrong activation codes; try again later' };
  /** `count` well-formed codes that all differ from `code`. */
  const guessesFor = (code: string, count: number) => {
    const guesses: string[] = [];
    for (let guess = otherCode(code); guesses.length < count; guess = otherCode(guess)) guesses.push(guess);
    return guesses;
  };
  const failuresOf = (tenantId: string, userId: string) =>
    withPg(db.ownerUrl, async (c) => {
      const result = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM bind_failures WHERE tenant_id = $1 AND user_id = $2', [
        tenantId,
        userId,
      ]);
      return result.rows[0]?.n;
    });
  const sessionRow = (id: string) =>
    withPg(
      db.ownerUrl,
      async (c) => (await c.query<Record<string, unknown>>('SELECT * FROM activation_sessions WHERE id = $1', [id])).rows[0],
    );

  beforeAll(async () => {
    db = await createTestDatabase('device-enrollment', new URL('../prisma/migrations', import.meta.url).pathname);
    prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.appUrl }) });
    nc = await connectNats({ servers: infra.natsUrl, name: 'device-enrollment-test', logger });
    service = await startEnrollment(prisma, nc, { ttlSeconds: 600, maxFailedBinds: 5, failedBindWindowSeconds: 900 });
    shortLived = await startEnrollment(prisma, nc, { ttlSeconds: 1, maxFailedBinds: 5, failedBindWindowSeconds: 900 });
    capped = await startEnrollment(prisma, nc, { ttlSeconds: 600, maxFailedBinds: 3, failedBindWindowSeconds: 900 });
    sliding = await startEnrollment(prisma, nc, { ttlSeconds: 600, maxFailedBinds: 2, failedBindWindowSeconds: 1 });
    recorder = await startAuditRecorder({ nc, subjectPrefix: testRunId, name: `device_enrollment_test_${testRunId}` });
  });

  afterAll(async () => {
    for (const enrollment of [service, shortLived, capped, sliding]) {
      enrollment.client.close();
      await enrollment.server.drain(1_000);
    }
    await recorder.stop();
    await nc.drain();
    await prisma.$disconnect();
    await db.drop();
  });

  it('starts an activation with a 6-character code, storing only its HMAC under the secret', async () => {
    const started = await start(service, tenantA, assistantA);
    expect(started.code).toMatch(/^[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{6}$/);
    const expiresAt = timestampDate(started.expiresAt!).getTime();
    expect(expiresAt).toBeGreaterThan(Date.now() + 500_000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 600_000);

    const row = await sessionRow(started.sessionId);
    expect(row?.['code_hash']).toBe(createHmac('sha256', codeSecret).update(started.code).digest('hex'));
    expect(row?.['code_hash']).not.toBe(createHash('sha256').update(started.code).digest('hex'));
    expect(JSON.stringify(row)).not.toContain(started.code);
  });

  it('binds once with the code as a person types it, then never again', async () => {
    const { code } = await start(service, tenantA, assistantA, 'Hall display');
    const { device } = await service.client.bindDevice({
      tenantId: tenantA,
      assistantId: assistantA,
      code: `  ${code.toLowerCase()} `,
      userId: alice,
    });
    expect(device).toMatchObject({ tenantId: tenantA, assistantId: assistantA, ownerUserId: alice, name: 'Hall display' });
    await expect(service.client.bindDevice({ tenantId: tenantA, assistantId: assistantA, code, userId: bob })).rejects.toMatchObject(
      invalidOrExpired,
    );

    const event = await pollUntil(
      () => recorder.events.find((e) => e.kind === 'device.bound' && e.attributes['device_id'] === device?.id),
      {
        timeoutMs: 5_000,
        what: 'the device.bound audit event',
      },
    );
    expect(event).toMatchObject({
      tenantId: tenantA,
      assistantId: assistantA,
      object: 'devices',
      action: 'bind',
      outcome: Outcome.SUCCESS,
      principal: { kind: PrincipalKind.USER, id: alice, tenantId: tenantA },
      attributes: { device_name: 'Hall display' },
    });
  });

  it('lets exactly one of several concurrent binds with the same code succeed', async () => {
    const { code } = await start(service, tenantA, assistantA, 'Race car');
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, () =>
        service.client.bindDevice({ tenantId: tenantA, assistantId: assistantA, code, userId: randomUUID() }),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const rejected of results.filter((r) => r.status === 'rejected')) expect(rejected.reason).toMatchObject(invalidOrExpired);
    const devices = await service.client.listDevices({ tenantId: tenantA });
    expect(devices.devices.filter((d) => d.name === 'Race car')).toHaveLength(1);
  });

  it('never binds a code in another tenant or another assistant', async () => {
    const { code } = await start(service, tenantA, assistantA, 'Tenant A lamp');
    await expect(service.client.bindDevice({ tenantId: tenantB, assistantId: assistantA, code, userId: bob })).rejects.toMatchObject(
      invalidOrExpired,
    );
    await expect(service.client.bindDevice({ tenantId: tenantA, assistantId: assistantB, code, userId: alice })).rejects.toMatchObject(
      invalidOrExpired,
    );
    const { device } = await service.client.bindDevice({ tenantId: tenantA, assistantId: assistantA, code, userId: alice });
    expect(device).toMatchObject({ tenantId: tenantA, name: 'Tenant A lamp' });
  });

  it('refuses an expired code', async () => {
    const started = await start(shortLived, tenantA, assistantA, 'Expiring');
    const expiresAt = timestampDate(started.expiresAt!).getTime();
    await pollUntil(() => (Date.now() > expiresAt ? true : undefined), { timeoutMs: 5_000, what: 'the code to expire' });
    await expect(
      shortLived.client.bindDevice({ tenantId: tenantA, assistantId: assistantA, code: started.code, userId: alice }),
    ).rejects.toMatchObject(invalidOrExpired);
  });

  describe('wrong codes', () => {
    it("never touch another user's code: the guesser is limited at the cap, the owner still binds", async () => {
      const tenant = randomUUID();
      const assistant = randomUUID();
      const mallory = randomUUID();
      const carol = randomUUID();
      const target = await start(capped, tenant, assistant, 'Not yours');
      const bind = (userId: string, code: string) => capped.client.bindDevice({ tenantId: tenant, assistantId: assistant, code, userId });

      for (const guess of guessesFor(target.code, 3)) await expect(bind(mallory, guess)).rejects.toMatchObject(invalidOrExpired);
      // At the cap, even the right code is refused unlooked: the session stays live.
      await expect(bind(mallory, guessesFor(target.code, 4)[3] ?? '')).rejects.toMatchObject(rateLimited);
      await expect(bind(mallory, target.code)).rejects.toMatchObject(rateLimited);
      expect(await sessionRow(target.sessionId)).toMatchObject({ consumed_at: null });
      expect(await failuresOf(tenant, mallory)).toBe(3);

      await expect(bind(carol, target.code)).resolves.toMatchObject({ device: { name: 'Not yours', ownerUserId: carol } });
      expect(await failuresOf(tenant, carol)).toBe(0);
    });

    it('no longer count against the sessions of the assistant', async () => {
      const tenant = randomUUID();
      const assistant = randomUUID();
      const sessions = [await start(service, tenant, assistant, 'First'), await start(service, tenant, assistant, 'Second')];
      const guessers = [randomUUID(), randomUUID(), randomUUID()];
      const taken = new Set(sessions.map((s) => s.code));
      const wrong = guessesFor(sessions[0]?.code ?? 'AAAAAA', 12).filter((g) => !taken.has(g));
      // More wrong codes than any one user's cap, spread over several users.
      for (const [n, guess] of wrong.slice(0, 12).entries()) {
        const userId = guessers[n % guessers.length] ?? bob;
        await expect(service.client.bindDevice({ tenantId: tenant, assistantId: assistant, code: guess, userId })).rejects.toMatchObject(
          invalidOrExpired,
        );
      }
      const columns = await withPg(db.ownerUrl, async (c) => {
        const result = await c.query<{ column_name: string }>(
          "SELECT column_name FROM information_schema.columns WHERE table_name = 'activation_sessions'",
        );
        return result.rows.map((row) => row.column_name);
      });
      expect(columns).not.toContain('attempts');
      for (const [n, session] of sessions.entries()) {
        await expect(
          service.client.bindDevice({ tenantId: tenant, assistantId: assistant, code: session.code, userId: randomUUID() }),
        ).resolves.toMatchObject({ device: { name: n === 0 ? 'First' : 'Second' } });
      }
    });

    it('are limited per tenant and user: the same user id elsewhere, and other users here, are unaffected', async () => {
      const tenant = randomUUID();
      const otherTenant = randomUUID();
      const assistant = randomUUID();
      const mallory = randomUUID();
      const limitedHere = await start(capped, tenant, assistant, 'Here');
      for (const guess of guessesFor(limitedHere.code, 3)) {
        await expect(
          capped.client.bindDevice({ tenantId: tenant, assistantId: assistant, code: guess, userId: mallory }),
        ).rejects.toMatchObject(invalidOrExpired);
      }
      // Another assistant of the same tenant: still the same user, still limited.
      const otherAssistant = randomUUID();
      const elsewhere = await start(capped, tenant, otherAssistant, 'Other assistant');
      await expect(
        capped.client.bindDevice({ tenantId: tenant, assistantId: otherAssistant, code: elsewhere.code, userId: mallory }),
      ).rejects.toMatchObject(rateLimited);
      const there = await start(capped, otherTenant, assistant, 'There');
      await expect(
        capped.client.bindDevice({ tenantId: otherTenant, assistantId: assistant, code: there.code, userId: mallory }),
      ).resolves.toMatchObject({ device: { tenantId: otherTenant, name: 'There' } });
    });

    it('are not forgiven by a successful bind', async () => {
      const tenant = randomUUID();
      const assistant = randomUUID();
      const dave = randomUUID();
      const bind = (code: string) => capped.client.bindDevice({ tenantId: tenant, assistantId: assistant, code, userId: dave });
      const own = await start(capped, tenant, assistant, 'Own device');
      for (const guess of guessesFor(own.code, 2)) await expect(bind(guess)).rejects.toMatchObject(invalidOrExpired);
      await expect(bind(own.code)).resolves.toMatchObject({ device: { name: 'Own device' } });
      const next = await start(capped, tenant, assistant, 'Next device');
      await expect(bind(guessesFor(next.code, 1)[0] ?? '')).rejects.toMatchObject(invalidOrExpired);
      await expect(bind(next.code)).rejects.toMatchObject(rateLimited);
    });

    it('cannot overrun the cap by arriving together', async () => {
      const tenant = randomUUID();
      const assistant = randomUUID();
      const erin = randomUUID();
      const live = await start(capped, tenant, assistant, 'Raced');
      const results = await Promise.allSettled(
        guessesFor(live.code, 8).map((code) => capped.client.bindDevice({ tenantId: tenant, assistantId: assistant, code, userId: erin })),
      );
      const reasons = results.map((r) => (r.status === 'rejected' ? (r.reason as { code?: string }).code : 'BOUND'));
      expect(reasons.filter((code) => code === 'NOT_FOUND')).toHaveLength(3);
      expect(reasons.filter((code) => code === 'RATE_LIMITED')).toHaveLength(5);
      expect(await failuresOf(tenant, erin)).toBe(3);
    });

    it('age out of the sliding window', async () => {
      const tenant = randomUUID();
      const assistant = randomUUID();
      const frank = randomUUID();
      const bind = (code: string) => sliding.client.bindDevice({ tenantId: tenant, assistantId: assistant, code, userId: frank });
      const waiting = await start(sliding, tenant, assistant, 'After the window');
      for (const guess of guessesFor(waiting.code, 2)) await expect(bind(guess)).rejects.toMatchObject(invalidOrExpired);
      await expect(bind(waiting.code)).rejects.toMatchObject(rateLimited);
      // Refused binds are not failures: once the window has passed, the right code binds.
      const bound = await pollUntil(
        async () => {
          try {
            return await bind(waiting.code);
          } catch (error) {
            if ((error as { code?: string }).code === 'RATE_LIMITED') return undefined;
            throw error;
          }
        },
        { timeoutMs: 10_000, intervalMs: 200, what: 'the failure window to pass' },
      );
      expect(bound.device).toMatchObject({ name: 'After the window', ownerUserId: frank });
    });

    it('do not count when malformed', async () => {
      const tenant = randomUUID();
      const assistant = randomUUID();
      const grace = randomUUID();
      const own = await start(capped, tenant, assistant, 'Typed badly first');
      for (const code of ['', 'ABCDE', 'ABCDEFG', 'ABCD0E', 'ABC DE']) {
        await expect(capped.client.bindDevice({ tenantId: tenant, assistantId: assistant, code, userId: grace })).rejects.toMatchObject({
          code: 'INVALID_ARGUMENT',
        });
      }
      expect(await failuresOf(tenant, grace)).toBe(0);
      await expect(
        capped.client.bindDevice({ tenantId: tenant, assistantId: assistant, code: own.code, userId: grace }),
      ).resolves.toMatchObject({ device: { name: 'Typed badly first' } });
    });
  });

  it('rejects malformed codes and ids with INVALID_ARGUMENT', async () => {
    for (const code of ['', 'ABCDE', 'ABCDEFG', 'ABCD0E', 'ABC DE']) {
      await expect(service.client.bindDevice({ tenantId: tenantA, assistantId: assistantA, code, userId: alice })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
    }
    await expect(service.client.startActivation({ tenantId: 'x', assistantId: assistantA, deviceName: 'd' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(service.client.startActivation({ tenantId: tenantA, assistantId: assistantA, deviceName: '' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });

  it("lists only the tenant's own devices", async () => {
    const tenantC = randomUUID();
    const { code } = await start(service, tenantC, assistantB, 'Tenant C tablet');
    await service.client.bindDevice({ tenantId: tenantC, assistantId: assistantB, code, userId: bob });
    const listedA = await service.client.listDevices({ tenantId: tenantA });
    const listedC = await service.client.listDevices({ tenantId: tenantC });
    expect(listedA.devices.length).toBeGreaterThan(0);
    expect(listedA.devices.every((d) => d.tenantId === tenantA)).toBe(true);
    expect(listedC.devices.map((d) => [d.tenantId, d.name, d.ownerUserId])).toEqual([[tenantC, 'Tenant C tablet', bob]]);
    expect(listedC.devices[0]?.boundAt).toBeDefined();
  });

  it('never writes an activation code or the code secret to the log', () => {
    expect(issuedCodes.length).toBeGreaterThan(5);
    const log = logLines.join('');
    expect(log).not.toContain(codeSecret.toString('base64'));
    for (const code of issuedCodes) {
      expect(log).not.toContain(code);
      expect(log).not.toContain(code.toLowerCase());
    }
  });

  describe('row-level security', () => {
    it.each(['activation_sessions', 'devices', 'bind_failures'])('%s returns zero rows when no tenant is set', async (table) => {
      const rows = await withPg(db.appUrl, async (c) => (await c.query<{ id: string }>(`SELECT id FROM ${table}`)).rows);
      expect(rows).toHaveLength(0);
      const all = await withPg(db.ownerUrl, async (c) => (await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]);
      expect(all?.n).toBeGreaterThanOrEqual(2);
    });

    it("with tenant A set never returns tenant B's rows, nor writes into B", async () => {
      const seen = await withPg(db.appUrl, async (c) => {
        await c.query('BEGIN');
        await c.query("SELECT set_config('app.tenant_id', $1, true)", [tenantA]);
        const sessions = await c.query<{ tenant_id: string }>('SELECT tenant_id FROM activation_sessions');
        const devices = await c.query<{ tenant_id: string }>('SELECT tenant_id FROM devices');
        const failures = await c.query<{ tenant_id: string }>('SELECT tenant_id FROM bind_failures');
        await c.query('SAVEPOINT planted_device');
        await expect(
          c.query("INSERT INTO devices (tenant_id, assistant_id, owner_user_id, name) VALUES ($1, $2, $3, 'planted')", [
            tenantB,
            assistantB,
            bob,
          ]),
        ).rejects.toThrow(/row-level security/);
        await c.query('ROLLBACK TO SAVEPOINT planted_device');
        await c.query('SAVEPOINT planted_failure');
        await expect(
          c.query('INSERT INTO bind_failures (tenant_id, user_id, assistant_id) VALUES ($1, $2, $3)', [tenantB, bob, assistantB]),
        ).rejects.toThrow(/row-level security/);
        await c.query('ROLLBACK TO SAVEPOINT planted_failure');
        await expect(
          c.query(
            "INSERT INTO activation_sessions (tenant_id, assistant_id, device_name, code_hash, expires_at) VALUES ($1, $2, 'planted', $3, now() + interval '1 hour')",
            [tenantB, assistantB, 'a'.repeat(64)],
          ),
        ).rejects.toThrow(/row-level security/);
        await c.query('ROLLBACK');
        return { sessions: sessions.rows, devices: devices.rows, failures: failures.rows };
      });
      for (const rows of Object.values(seen)) {
        expect(rows.length).toBeGreaterThan(0);
        expect(rows.every((row) => row.tenant_id === tenantA)).toBe(true);
      }
    });
  });
});
