import { createHash, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { fromBinary } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { PrismaPg } from '@prisma/adapter-pg';
import {
  auditStreamOf,
  connectNats,
  createAuditPublisher,
  createGrpcClient,
  createGrpcServer,
  createLogger,
  createTenantScope,
  startDurableConsumer,
  type GrpcClient,
  type GrpcServer,
  type NatsConnection,
  type RunningConsumer,
} from '@portcullis/kit';
import { AuditEventSchema, Outcome, type AuditEvent } from '@portcullis/proto/audit';
import { PrincipalKind } from '@portcullis/proto/common';
import { DeviceEnrollmentService } from '@portcullis/proto/devices';
import { createTestDatabase, infra, pollUntil, testRunId, withPg, type TestDatabase } from '@portcullis/test';
import { PrismaClient } from '../src/generated/prisma/client.js';
import { createDeviceEnrollmentService } from '../src/grpc/device-enrollment-service.js';
import { ACTIVATION_ALPHABET } from '../src/libraries/activation-codes.js';
import { createEnrollmentLibrary } from '../src/libraries/enrollment.js';
import { createEnrollmentQueries } from '../src/queries/enrollment.js';

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

/** The service as main.ts wires it, with its own TTL and attempt cap. */
async function startEnrollment(prisma: PrismaClient, nc: NatsConnection, ttlSeconds: number, maxAttempts: number): Promise<Enrollment> {
  const audit = createAuditPublisher({ nc, subjectPrefix: testRunId });
  await audit.ensureStream();
  const enrollment = createEnrollmentLibrary({ store: createEnrollmentQueries(createTenantScope(prisma)), audit, ttlSeconds, maxAttempts });
  const server = createGrpcServer({ logger, services: [createDeviceEnrollmentService({ enrollment })] });
  const port = await server.listen('127.0.0.1', 0);
  server.setServing(true);
  return { server, client: createGrpcClient(DeviceEnrollmentService, { address: `127.0.0.1:${port}`, deadlineMs: 10_000 }) };
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
  let consumer: RunningConsumer;
  let service: Enrollment;
  let shortLived: Enrollment;
  let capped: Enrollment;
  const audited: AuditEvent[] = [];
  const issuedCodes: string[] = [];
  const stream = auditStreamOf(testRunId);

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

  beforeAll(async () => {
    db = await createTestDatabase('device-enrollment', new URL('../prisma/migrations', import.meta.url).pathname);
    prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.appUrl }) });
    nc = await connectNats({ servers: infra.natsUrl, name: 'device-enrollment-test', logger });
    service = await startEnrollment(prisma, nc, 600, 5);
    shortLived = await startEnrollment(prisma, nc, 1, 5);
    capped = await startEnrollment(prisma, nc, 600, 3);
    consumer = await startDurableConsumer(nc, {
      stream: stream.name,
      durable: `device_enrollment_test_${testRunId}`,
      filterSubject: `${testRunId}.audit.>`,
      logger,
      async handle(message) {
        audited.push(fromBinary(AuditEventSchema, message.data));
      },
    });
  });

  afterAll(async () => {
    for (const enrollment of [service, shortLived, capped]) {
      enrollment.client.close();
      await enrollment.server.drain(1_000);
    }
    await consumer.stop();
    await nc.request(`$JS.API.STREAM.DELETE.${stream.name}`).catch(() => undefined);
    await nc.drain();
    await prisma.$disconnect();
    await db.drop();
  });

  it('starts an activation with a 6-character code, storing only its hash', async () => {
    const started = await start(service, tenantA, assistantA);
    expect(started.code).toMatch(/^[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{6}$/);
    const expiresAt = timestampDate(started.expiresAt!).getTime();
    expect(expiresAt).toBeGreaterThan(Date.now() + 500_000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 600_000);

    const row = await withPg(db.ownerUrl, async (c) => {
      const result = await c.query<Record<string, unknown>>('SELECT * FROM activation_sessions WHERE id = $1', [started.sessionId]);
      return result.rows[0];
    });
    expect(row?.['code_hash']).toBe(createHash('sha256').update(started.code).digest('hex'));
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

    const event = await pollUntil(() => audited.find((e) => e.kind === 'device.bound' && e.attributes['device_id'] === device?.id), {
      timeoutMs: 5_000,
      what: 'the device.bound audit event',
    });
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
      Array.from({ length: 6 }, () => service.client.bindDevice({ tenantId: tenantA, assistantId: assistantA, code, userId: alice })),
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

  it('kills the live codes of an assistant once wrong attempts reach the cap', async () => {
    const guessesFor = (code: string, count: number) => {
      const guesses: string[] = [];
      for (let guess = otherCode(code); guesses.length < count; guess = otherCode(guess)) guesses.push(guess);
      return guesses;
    };
    const bind = (assistantId: string, code: string) => capped.client.bindDevice({ tenantId: tenantB, assistantId, code, userId: bob });

    const survivor = randomUUID();
    const spared = await start(capped, tenantB, survivor, 'Survives two guesses');
    for (const guess of guessesFor(spared.code, 2)) await expect(bind(survivor, guess)).rejects.toMatchObject(invalidOrExpired);
    await expect(bind(survivor, spared.code)).resolves.toMatchObject({ device: { name: 'Survives two guesses' } });

    const victim = randomUUID();
    const guessed = await start(capped, tenantB, victim, 'Guessed at');
    const elsewhere = await start(capped, tenantB, randomUUID(), 'Other assistant');
    for (const guess of guessesFor(guessed.code, 3)) await expect(bind(victim, guess)).rejects.toMatchObject(invalidOrExpired);
    await expect(bind(victim, guessed.code)).rejects.toMatchObject(invalidOrExpired);
    const attempts = await withPg(db.ownerUrl, async (c) => {
      const result = await c.query<{ id: string; attempts: number }>('SELECT id, attempts FROM activation_sessions WHERE id = ANY($1)', [
        [guessed.sessionId, elsewhere.sessionId],
      ]);
      return Object.fromEntries(result.rows.map((row) => [row.id, row.attempts]));
    });
    expect(attempts).toEqual({ [guessed.sessionId]: 3, [elsewhere.sessionId]: 0 });
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

  it('never writes an activation code to the log', () => {
    expect(issuedCodes.length).toBeGreaterThan(5);
    const log = logLines.join('');
    for (const code of issuedCodes) {
      expect(log).not.toContain(code);
      expect(log).not.toContain(code.toLowerCase());
    }
  });

  describe('row-level security', () => {
    it.each(['activation_sessions', 'devices'])('%s returns zero rows when no tenant is set', async (table) => {
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
        await c.query('SAVEPOINT planted_device');
        await expect(
          c.query("INSERT INTO devices (tenant_id, assistant_id, owner_user_id, name) VALUES ($1, $2, $3, 'planted')", [
            tenantB,
            assistantB,
            bob,
          ]),
        ).rejects.toThrow(/row-level security/);
        await c.query('ROLLBACK TO SAVEPOINT planted_device');
        await expect(
          c.query(
            "INSERT INTO activation_sessions (tenant_id, assistant_id, device_name, code_hash, expires_at) VALUES ($1, $2, 'planted', $3, now() + interval '1 hour')",
            [tenantB, assistantB, 'a'.repeat(64)],
          ),
        ).rejects.toThrow(/row-level security/);
        await c.query('ROLLBACK');
        return [...sessions.rows, ...devices.rows];
      });
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.every((row) => row.tenant_id === tenantA)).toBe(true);
    });
  });
});
