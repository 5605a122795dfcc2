import { randomUUID } from 'node:crypto';
import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { PrismaPg } from '@prisma/adapter-pg';
import {
  activeTraceId,
  AppError,
  connectNats,
  createLogger,
  createTenantScope,
  robotEventStreamOf,
  robotEventSubject,
  robotTokenHeader,
  startTelemetry,
  tracedHeaders,
  tracer,
  type NatsConnection,
  type RunningConsumer,
  type Telemetry,
} from '@portcullis/kit';
import { RobotEventSchema } from '@portcullis/proto/audit';
import { createTestDatabase, infra, pollUntil, testRunId, withPg, type TestDatabase } from '@portcullis/test';
import { startRobotEventConsumer } from '../src/events/robot-consumer.js';
import { PrismaClient } from '../src/generated/prisma/client.js';
import { createRobotEvents, type RobotRejectReason, type VerifiedRobotToken } from '../src/libraries/robot-events.js';
import { appendOnlyTables, createAuditEventQueries, undeletableTables } from '../src/queries/audit-events.js';

const migrationsDir = new URL('../prisma/migrations', import.meta.url).pathname;
const logger = createLogger({ name: 'robot-events-test', level: 'silent' });
const prefix = `${testRunId}_robots`;
const stream = robotEventStreamOf(prefix);
const durable = 'robot-events-store';

interface Robot {
  robotId: string;
  tenantId: string;
  teamIds: string[];
  token: string;
}

/**
 * Stands in for auth's VerifyRobotToken with its answers: a registered token is described, an
 * unknown (forged) or revoked one is UNAUTHENTICATED, and while `down` auth cannot be reached.
 */
function fakeAuth() {
  const robots = new Map<string, Robot>();
  const revoked = new Set<string>();
  const calls = new Map<string, number>();
  const state = { down: false };
  return {
    state,
    revoked,
    calls,
    register(tenantId: string = randomUUID()): Robot {
      const robot = { robotId: randomUUID(), tenantId, teamIds: [randomUUID()], token: `robot-token-${randomUUID()}` };
      robots.set(robot.token, robot);
      return robot;
    },
    async verifyRobotToken(token: string): Promise<VerifiedRobotToken> {
      calls.set(token, (calls.get(token) ?? 0) + 1);
      if (state.down) throw new AppError('DEPENDENCY_UNAVAILABLE', 'a required service is unavailable');
      const robot = robots.get(token);
      if (!robot || revoked.has(token)) throw new AppError('UNAUTHENTICATED', 'invalid, expired or revoked robot token');
      return { robotId: robot.robotId, tenantId: robot.tenantId, teamIds: robot.teamIds };
    },
  };
}

interface StoredRow {
  tenant_id: string;
  kind: string;
  principal_kind: string | null;
  principal_id: string | null;
  principal_tenant_id: string | null;
  assistant_id: string | null;
  object: string | null;
  outcome: string | null;
  trace_id: string | null;
  occurred_at: Date | null;
  attributes: Record<string, string>;
  chain_seq: string | null;
}

describe('robot events against NATS and Postgres', () => {
  let db: TestDatabase;
  let telemetry: Telemetry;
  let prisma: PrismaClient;
  let nc: NatsConnection;
  let consumer: RunningConsumer;
  const auth = fakeAuth();
  const rejected: RobotRejectReason[] = [];
  let stored = 0;

  const rowsOf = (eventId: string) =>
    withPg(
      db.ownerUrl,
      async (c) =>
        (
          await c.query<StoredRow>(
            `SELECT tenant_id, kind, principal_kind, principal_id, principal_tenant_id, assistant_id, object, outcome, trace_id,
                    occurred_at, attributes, chain_seq::text FROM audit_events WHERE event_id = $1`,
            [eventId],
          )
        ).rows,
    );
  const rowsOfTenant = (tenantId: string) =>
    withPg(
      db.ownerUrl,
      async (c) =>
        (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_events WHERE tenant_id = $1', [tenantId])).rows[0]?.n,
    );

  /** Publishes `robot`'s event on `on`'s subject (its own unless given) with `token` (its own unless given; null for none). */
  async function publish(
    robot: Robot,
    init: MessageInitShape<typeof RobotEventSchema> = {},
    { on = robot, token = robot.token, msgId }: { on?: Pick<Robot, 'tenantId' | 'robotId'>; token?: string | null; msgId?: string } = {},
  ): Promise<string> {
    const event = create(RobotEventSchema, { eventId: randomUUID(), kind: 'arm.moved', ...init });
    await jetstream(nc).publish(robotEventSubject(prefix, on.tenantId, on.robotId), toBinary(RobotEventSchema, event), {
      msgID: msgId ?? event.eventId,
      headers: tracedHeaders(token === null ? {} : { [robotTokenHeader]: token }),
    });
    return event.eventId;
  }

  /** Publishes and waits until the message is refused; answers the reasons counted meanwhile. */
  async function refusedReasons(publishing: () => Promise<string>): Promise<{ reasons: RobotRejectReason[]; eventId: string }> {
    const before = rejected.length;
    const eventId = await publishing();
    await pollUntil(() => (rejected.length > before ? true : undefined), { what: 'the rejection to be counted' });
    return { reasons: rejected.slice(before), eventId };
  }

  const waitStored = (eventId: string) =>
    pollUntil(async () => ((await rowsOf(eventId)).length > 0 ? true : undefined), { what: `robot event ${eventId} to be stored` });

  beforeAll(async () => {
    telemetry = startTelemetry({ serviceName: 'robot-events-test' });
    db = await createTestDatabase('audit', migrationsDir, { appendOnlyTables, undeletableTables });
    prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.appUrl }) });
    nc = await connectNats({ servers: infra.natsUrl, name: 'robot-events-test', logger });
    const queries = createAuditEventQueries(createTenantScope(prisma));
    const events = createRobotEvents({
      subjectPrefix: prefix,
      verifyRobotToken: auth.verifyRobotToken,
      store: queries.insert,
      rejected: { inc: ({ reason }) => void rejected.push(reason) },
      stored: { inc: () => void (stored += 1) },
      logger,
    });
    consumer = await startRobotEventConsumer({ nc, subjectPrefix: prefix, durable, events, logger, redeliveryDelayMs: 50 });
  });

  afterAll(async () => {
    await consumer.stop();
    await (await jetstreamManager(nc)).streams.delete(stream.name);
    await nc.drain();
    await prisma.$disconnect();
    await db.drop();
    await telemetry.shutdown();
  });

  it("stores a valid event once in its tenant's chained trail, with the robot as principal, also when published twice", async () => {
    const robot = auth.register();
    const assistantId = randomUUID();
    const occurredAt = new Date('2026-06-07T08:09:10.011Z');
    const init = {
      eventId: randomUUID(),
      kind: 'arm.moved',
      teamId: robot.teamIds[0] ?? '',
      assistantId,
      occurredAt: timestampFromDate(occurredAt),
      attributes: { joint: 'elbow' },
    };
    const storedBefore = stored;
    let publisherTraceId = '';
    await tracer.startActiveSpan('robot publish', async (span) => {
      publisherTraceId = activeTraceId();
      try {
        await publish(robot, init);
      } finally {
        span.end();
      }
    });
    // The same message again (dropped by the stream's dedup window), then the same event under a
    // fresh message id, which the consumer does see a second time.
    await publish(robot, init);
    await publish(robot, init, { msgId: randomUUID() });
    await waitStored(init.eventId);
    await pollUntil(() => ((auth.calls.get(robot.token) ?? 0) >= 2 ? true : undefined), { what: 'the second delivery to be judged' });
    // A later event of the same robot, stored after both deliveries were handled.
    const later = await publish(robot, { kind: 'arm.stopped' });
    await waitStored(later);

    const rows = await rowsOf(init.eventId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      tenant_id: robot.tenantId,
      kind: 'robot.arm.moved',
      principal_kind: 'robot',
      principal_id: robot.robotId,
      principal_tenant_id: robot.tenantId,
      assistant_id: assistantId,
      object: `team:${robot.teamIds[0] ?? ''}`,
      outcome: 'success',
      trace_id: publisherTraceId,
      occurred_at: occurredAt,
      attributes: { joint: 'elbow' },
      chain_seq: '1',
    });
    expect(publisherTraceId).toMatch(/^[0-9a-f]{32}$/);
    expect((await rowsOf(later))[0]?.chain_seq).toBe('2');
    expect(await rowsOfTenant(robot.tenantId)).toBe(2);
    expect(stored - storedBefore).toBe(2);
  });

  it('refuses a forged token: counted as invalid_token, nothing stored', async () => {
    const robot = auth.register();
    const { reasons, eventId } = await refusedReasons(() => publish(robot, {}, { token: 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.forged' }));
    expect(reasons).toEqual(['invalid_token']);
    expect(await rowsOf(eventId)).toEqual([]);
  });

  it('refuses a revoked robot from its next event on: counted as invalid_token (auth answers revoked and forged alike)', async () => {
    const robot = auth.register();
    const before = await publish(robot);
    await waitStored(before);
    auth.revoked.add(robot.token);
    const { reasons, eventId } = await refusedReasons(() => publish(robot));
    expect(reasons).toEqual(['invalid_token']);
    expect(await rowsOf(eventId)).toEqual([]);
    expect(await rowsOfTenant(robot.tenantId)).toBe(1);
  });

  it("refuses a robot publishing on another tenant's subject: counted as cross_tenant, stored in neither tenant", async () => {
    const robot = auth.register();
    const victim = auth.register();
    const { reasons, eventId } = await refusedReasons(() => publish(robot, {}, { on: victim }));
    expect(reasons).toEqual(['cross_tenant']);
    expect(await rowsOf(eventId)).toEqual([]);
    expect(await rowsOfTenant(victim.tenantId)).toBe(0);
    expect(await rowsOfTenant(robot.tenantId)).toBe(0);
  });

  it("refuses a robot publishing on another robot's subject of its own tenant: counted as robot_mismatch", async () => {
    const robot = auth.register();
    const sibling = auth.register(robot.tenantId);
    const { reasons, eventId } = await refusedReasons(() => publish(robot, {}, { on: sibling }));
    expect(reasons).toEqual(['robot_mismatch']);
    expect(await rowsOf(eventId)).toEqual([]);
  });

  it("refuses an event naming a team that is not the robot's: counted as team_out_of_scope", async () => {
    const robot = auth.register();
    const { reasons, eventId } = await refusedReasons(() => publish(robot, { teamId: randomUUID() }));
    expect(reasons).toEqual(['team_out_of_scope']);
    expect(await rowsOf(eventId)).toEqual([]);
  });

  it('refuses an event without a token: counted as missing_token', async () => {
    const robot = auth.register();
    const { reasons, eventId } = await refusedReasons(() => publish(robot, {}, { token: null }));
    expect(reasons).toEqual(['missing_token']);
    expect(await rowsOf(eventId)).toEqual([]);
  });

  it('keeps an event while auth is unreachable, neither stored nor counted, and stores it once auth answers', async () => {
    const robot = auth.register();
    const rejectedBefore = rejected.length;
    auth.state.down = true;
    const eventId = await publish(robot);
    try {
      await pollUntil(() => ((auth.calls.get(robot.token) ?? 0) >= 3 ? true : undefined), { what: 'the event to be redelivered' });
      expect(await rowsOf(eventId)).toEqual([]);
    } finally {
      auth.state.down = false;
    }
    await waitStored(eventId);
    expect(await rowsOf(eventId)).toHaveLength(1);
    expect(rejected.length).toBe(rejectedBefore);
  });

  it('acknowledges every message, refused or stored', async () => {
    const jsm = await jetstreamManager(nc);
    await pollUntil(
      async () => {
        const info = await jsm.consumers.info(stream.name, durable);
        return info.num_pending === 0 && info.num_ack_pending === 0 ? info : undefined;
      },
      { what: 'every message to be acknowledged' },
    );
    expect(consumer.isRunning()).toBe(true);
  });
});
