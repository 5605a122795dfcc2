import { randomUUID } from 'node:crypto';
import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from '@jest/globals';
import { AppError, createLogger, robotEventSubject } from '@portcullis/kit';
import { RobotEventSchema } from '@portcullis/proto/audit';
import type { AuditRecord } from './audit-record.js';
import { createRobotEvents, type RobotEventMessage, type RobotRejectReason, type VerifiedRobotToken } from './robot-events.js';

const prefix = 'unit';

/** A robot of a tenant, with the token auth would accept for it. */
function robotOf(tenantId = randomUUID()) {
  const robotId = randomUUID();
  const teamIds = [randomUUID(), randomUUID()];
  return { robotId, tenantId, teamIds, token: `token-of-${robotId}` };
}

/** Auth's VerifyRobotToken over a table of tokens; unknown tokens are refused as auth refuses them. */
function fakeAuth(robots: ReturnType<typeof robotOf>[]) {
  const calls: string[] = [];
  const refusals = new Map<string, AppError | Error>();
  return {
    calls,
    refusals,
    async verifyRobotToken(token: string): Promise<VerifiedRobotToken> {
      calls.push(token);
      const refusal = refusals.get(token);
      if (refusal) throw refusal;
      const robot = robots.find((r) => r.token === token);
      if (!robot) throw new AppError('UNAUTHENTICATED', 'invalid, expired or revoked robot token');
      return { robotId: robot.robotId, tenantId: robot.tenantId, teamIds: robot.teamIds };
    },
  };
}

/** The store with the database's semantics: one row per tenant and event id. */
function fakeStore() {
  const rows = new Map<string, AuditRecord>();
  let failNext = false;
  return {
    rows,
    failOnce() {
      failNext = true;
    },
    async store(record: AuditRecord): Promise<boolean> {
      if (failNext) {
        failNext = false;
        throw new Error('connection refused');
      }
      const key = `${record.tenantId}/${record.eventId}`;
      if (rows.has(key)) return false;
      rows.set(key, record);
      return true;
    },
  };
}

function fakeCounters() {
  const rejected: string[] = [];
  let stored = 0;
  return {
    rejectedReasons: rejected,
    storedCount: () => stored,
    rejected: { inc: ({ reason }: { reason: RobotRejectReason }) => void rejected.push(reason) },
    stored: { inc: () => void (stored += 1) },
  };
}

function setUp(robots: ReturnType<typeof robotOf>[]) {
  const auth = fakeAuth(robots);
  const store = fakeStore();
  const counters = fakeCounters();
  const lines: string[] = [];
  const logger = createLogger({ name: 'robot-events-test', level: 'debug', destination: { write: (line: string) => lines.push(line) } });
  const events = createRobotEvents({
    subjectPrefix: prefix,
    verifyRobotToken: auth.verifyRobotToken,
    store: store.store,
    rejected: counters.rejected,
    stored: counters.stored,
    logger,
  });
  return { auth, store, counters, lines, events };
}

type EventInit = MessageInitShape<typeof RobotEventSchema>;

/** A message robot `robot` publishes on `on` (its own subject unless given), with `token` (its own unless given). */
function message(
  robot: ReturnType<typeof robotOf>,
  init: EventInit = {},
  { on = robot, tokens = [robot.token] }: { on?: { tenantId: string; robotId: string }; tokens?: string[] } = {},
): RobotEventMessage {
  const event = create(RobotEventSchema, { eventId: randomUUID(), kind: 'arm.moved', ...init });
  return {
    subject: robotEventSubject(prefix, on.tenantId, on.robotId),
    data: toBinary(RobotEventSchema, event),
    tokens,
    traceId: 'a'.repeat(32),
    seq: 7,
  };
}

describe('robot events', () => {
  it('stores a valid event once in its tenant trail, with the robot as principal, however often it is delivered', async () => {
    const robot = robotOf();
    const { store, counters, events } = setUp([robot]);
    const eventId = randomUUID();
    const assistantId = randomUUID();
    const occurredAt = new Date('2026-05-06T07:08:09.010Z');
    const published = message(robot, {
      eventId,
      kind: 'arm.moved',
      teamId: robot.teamIds[1] ?? '',
      assistantId,
      occurredAt: timestampFromDate(occurredAt),
      attributes: { joint: 'elbow', degrees: '42' },
    });
    expect(await events.ingest(published)).toBe('stored');
    expect(await events.ingest(published)).toBe('duplicate');
    expect([...store.rows.values()]).toEqual([
      {
        eventId,
        tenantId: robot.tenantId,
        kind: 'robot.arm.moved',
        principalKind: 'robot',
        principalId: robot.robotId,
        principalRole: null,
        principalTenantId: robot.tenantId,
        assistantId,
        object: `team:${robot.teamIds[1] ?? ''}`,
        action: null,
        outcome: 'success',
        reason: null,
        traceId: 'a'.repeat(32),
        requestId: null,
        occurredAt,
        attributes: { joint: 'elbow', degrees: '42' },
      },
    ]);
    expect(counters.storedCount()).toBe(1);
    expect(counters.rejectedReasons).toEqual([]);
  });

  it('stores an event without team, assistant or time with those left empty', async () => {
    const robot = robotOf();
    const { store, events } = setUp([robot]);
    expect(await events.ingest(message(robot, { kind: 'heartbeat' }))).toBe('stored');
    expect([...store.rows.values()][0]).toMatchObject({ kind: 'robot.heartbeat', object: null, assistantId: null, occurredAt: null });
  });

  it('matches subject ids regardless of case', async () => {
    const robot = robotOf();
    const { events } = setUp([robot]);
    const on = { tenantId: robot.tenantId.toUpperCase(), robotId: robot.robotId.toUpperCase() };
    expect(await events.ingest(message(robot, {}, { on }))).toBe('stored');
  });

  describe('rejects, counts by reason and stores nothing', () => {
    const robot = robotOf();
    const sameTenant = robotOf(robot.tenantId);
    const otherTenant = robotOf();
    const cases: [string, RobotRejectReason, () => RobotEventMessage][] = [
      ['an unknown or forged token', 'invalid_token', () => message(robot, {}, { tokens: ['eyJhbGciOiJFUzI1NiJ9.forged.sig'] })],
      ['two tokens', 'invalid_token', () => message(robot, {}, { tokens: [robot.token, robot.token] })],
      ['an oversized token', 'invalid_token', () => message(robot, {}, { tokens: ['x'.repeat(8_193)] })],
      ['no token', 'missing_token', () => message(robot, {}, { tokens: [] })],
      ['an empty token', 'missing_token', () => message(robot, {}, { tokens: [''] })],
      ["a robot publishing on another tenant's subject", 'cross_tenant', () => message(robot, {}, { on: otherTenant })],
      ["a robot publishing on another robot's subject", 'robot_mismatch', () => message(robot, {}, { on: sameTenant })],
      ['a team that is not the robot’s', 'team_out_of_scope', () => message(robot, { teamId: randomUUID() })],
      ['a payload that is not a RobotEvent', 'malformed', () => ({ ...message(robot), data: new Uint8Array([0xff, 0xff]) })],
      ['an event id that is not a UUID', 'invalid_event', () => message(robot, { eventId: 'evt-1' })],
      ['a blank kind', 'invalid_event', () => message(robot, { kind: '' })],
      ['a kind with spaces', 'invalid_event', () => message(robot, { kind: 'arm moved' })],
      ['a reserved-looking kind', 'invalid_event', () => message(robot, { kind: '_batch' })],
      ['a team id that is not a UUID', 'invalid_event', () => message(robot, { teamId: 'pilots' })],
      ['an assistant id that is not a UUID', 'invalid_event', () => message(robot, { assistantId: 'bot' })],
      ['a NUL in an attribute', 'invalid_event', () => message(robot, { attributes: { note: 'a\u0000b' } })],
      [
        'too many attributes',
        'invalid_event',
        () => message(robot, { attributes: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) }),
      ],
      [
        'a time outside the Timestamp range',
        'invalid_event',
        () => message(robot, { occurredAt: { seconds: 253_402_300_800n, nanos: 0 } }),
      ],
      [
        'a subject naming no tenant',
        'bad_subject',
        () => ({ ...message(robot), subject: `${prefix}.robots.acme.${robot.robotId}.events` }),
      ],
      [
        'a subject of another prefix',
        'bad_subject',
        () => ({ ...message(robot), subject: robotEventSubject('other', robot.tenantId, robot.robotId) }),
      ],
    ];

    it.each(cases)('%s: %s', async (_what, reason, make) => {
      const { store, counters, events } = setUp([robot, sameTenant, otherTenant]);
      expect(await events.ingest(make())).toBe('rejected');
      expect(counters.rejectedReasons).toEqual([reason]);
      expect(store.rows.size).toBe(0);
      expect(counters.storedCount()).toBe(0);
    });

    it('refuses what cannot be valid before asking auth', async () => {
      const { auth, events } = setUp([robot]);
      await events.ingest(message(robot, {}, { tokens: [] }));
      await events.ingest({ ...message(robot), data: new Uint8Array([0xff]) });
      await events.ingest(message(robot, { eventId: 'evt-1' }));
      await events.ingest({ ...message(robot), subject: `${prefix}.robots.x.y.events` });
      expect(auth.calls).toEqual([]);
    });

    it.each([
      ['UNAUTHENTICATED', 'invalid, expired or revoked robot token', 'invalid_token'],
      ['UNAUTHENTICATED', "the robot's creator no longer belongs to this tenant", 'invalid_token'],
      ['INVALID_ARGUMENT', 'token: required', 'invalid_token'],
      ['PERMISSION_DENIED', "the robot's creator no longer holds any of the robot's teams", 'permission_denied'],
      ['TENANT_SUSPENDED', 'tenant suspended', 'tenant_suspended'],
    ] as const)("auth's %s (%s) is counted as %s", async (code, text, reason) => {
      const { auth, store, counters, events } = setUp([robot]);
      auth.refusals.set(robot.token, new AppError(code, text));
      expect(await events.ingest(message(robot))).toBe('rejected');
      expect(counters.rejectedReasons).toEqual([reason]);
      expect(store.rows.size).toBe(0);
    });
  });

  it('a revoked robot is refused from its next message on', async () => {
    const robot = robotOf();
    const { auth, store, counters, events } = setUp([robot]);
    expect(await events.ingest(message(robot))).toBe('stored');
    auth.refusals.set(robot.token, new AppError('UNAUTHENTICATED', 'invalid, expired or revoked robot token'));
    expect(await events.ingest(message(robot))).toBe('rejected');
    expect(counters.rejectedReasons).toEqual(['invalid_token']);
    expect(store.rows.size).toBe(1);
    expect(auth.calls).toHaveLength(2);
  });

  it.each([
    ['auth unavailable', () => new AppError('DEPENDENCY_UNAVAILABLE', 'a required service is unavailable')],
    ['auth past its deadline', () => new AppError('DEADLINE_EXCEEDED', 'deadline exceeded')],
    ['an unexpected failure', () => new Error('socket hang up')],
    ['auth refusing this service as a caller', () => new AppError('PERMISSION_DENIED', 'this caller may not use this method')],
    ["auth refusing this service's credential", () => new AppError('UNAUTHENTICATED', 'service credential rejected')],
  ])('with %s: throws (redelivery), stores and counts nothing, and stores the event once auth answers', async (_what, failure) => {
    const robot = robotOf();
    const { auth, store, counters, events } = setUp([robot]);
    const published = message(robot);
    auth.refusals.set(robot.token, failure());
    await expect(events.ingest(published)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(store.rows.size).toBe(0);
    expect(counters.rejectedReasons).toEqual([]);
    auth.refusals.delete(robot.token);
    expect(await events.ingest(published)).toBe('stored');
    expect(store.rows.size).toBe(1);
  });

  it('throws when the store fails, and stores the event on redelivery', async () => {
    const robot = robotOf();
    const { store, counters, events } = setUp([robot]);
    const published = message(robot);
    store.failOnce();
    await expect(events.ingest(published)).rejects.toThrow('connection refused');
    expect(counters.storedCount()).toBe(0);
    expect(await events.ingest(published)).toBe('stored');
    expect(counters.storedCount()).toBe(1);
  });

  it('does not accept an auth answer that is not a robot registration', async () => {
    const robot = robotOf();
    const store = fakeStore();
    const counters = fakeCounters();
    const odd = createRobotEvents({
      subjectPrefix: prefix,
      verifyRobotToken: async () => ({ robotId: robot.robotId, tenantId: 'acme', teamIds: [] }),
      store: store.store,
      rejected: counters.rejected,
      stored: counters.stored,
      logger: createLogger({ name: 'robot-events-test', level: 'silent' }),
    });
    expect(await odd.ingest(message(robot))).toBe('rejected');
    expect(counters.rejectedReasons).toEqual(['invalid_token']);
    expect(store.rows.size).toBe(0);
  });

  it('logs a rejection with its reason and the verified robot, never the token or the payload', async () => {
    const robot = robotOf();
    const { lines, events } = setUp([robot]);
    const secret = 'payload-marker-9c1d';
    await events.ingest(message(robot, { attributes: { note: secret } }, { on: robotOf() }));
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
    expect(line).toMatchObject({ reason: 'cross_tenant', tokenTenantId: robot.tenantId, tokenRobotId: robot.robotId, seq: 7 });
    expect(lines[0]).not.toContain(secret);
    expect(lines[0]).not.toContain(robot.token);
  });
});
