import { randomBytes, randomUUID } from 'node:crypto';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PrismaPg } from '@prisma/adapter-pg';
import {
  AppError,
  createGrpcClient,
  createGrpcServer,
  createTrustedIdentities,
  createLogger,
  implement,
  type GrpcClient,
  type GrpcServer,
  type ServiceHandlers,
} from '@portcullis/kit';
import { AuthService } from '@portcullis/proto/auth';
import { PrincipalKind, Role, type Principal } from '@portcullis/proto/common';
import { TenantRegistryService } from '@portcullis/proto/tenant';
import { createTestDatabase, pollUntil, withPg, type TestDatabase } from '@portcullis/test';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { PrismaClient } from '../src/generated/prisma/client.js';
import { robotHandlers } from '../src/grpc/auth-service.js';
import { createKeyEncryption } from '../src/libraries/key-encryption.js';
import { createRobotTokens } from '../src/libraries/robot-tokens.js';
import { createRobots, type TeamDirectory } from '../src/libraries/robots.js';
import { createSigningKeys, type SigningKeys } from '../src/libraries/signing-keys.js';
import { createRobotQueries, createVerificationKeyQueries } from '../src/queries/robots.js';
import { createSigningKeyQueries } from '../src/queries/signing-keys.js';
import { recordingAudit } from '../src/test-support/audit-events.js';
import { rejectionOf } from '../src/test-support/rejections.js';

const identities = createTrustedIdentities();

const migrationsDir = new URL('../prisma/migrations', import.meta.url).pathname;
const issuer = 'portcullis-auth-test';
const audience = 'portcullis-test';
const logLines: string[] = [];
const logger = createLogger({
  name: 'robots-test',
  level: 'debug',
  destination: {
    write(line: string) {
      logLines.push(line);
    },
  },
});

/** When a fixture membership began unless a test says otherwise: before any robot of the run. */
const joinedLongAgo = new Date(Date.now() - 86_400_000);

/**
 * tenant-registry as far as robots use it; roles, when memberships began (default
 * joinedLongAgo; undefined: an answer without member_since), teams and team members are fixtures.
 */
function fakeTenantRegistry() {
  const roles = new Map<string, Role>(); // `${tenantId}/${userId}` → role
  const since = new Map<string, Date | undefined>(); // `${tenantId}/${userId}` → member_since
  const teams = new Map<string, string>(); // teamId → tenantId
  const members = new Map<string, Set<string>>(); // teamId → user ids
  const absent = async (): Promise<never> => {
    throw new AppError('FAILED_PRECONDITION', 'not served by the fake tenant-registry');
  };
  const teamOf = (id: string) => ({ id, tenantId: teams.get(id) ?? '', name: `team ${id.slice(0, 4)}` });
  const handlers: ServiceHandlers<typeof TenantRegistryService> = {
    createTenant: absent,
    createAssistant: absent,
    addDomain: absent,
    verifyDomain: absent,
    createTeam: absent,
    addMember: absent,
    removeMember: absent,
    addTeamMember: absent,
    removeTeamMember: absent,
    moveDomain: absent,
    setTenantStatus: absent,
    setTenantPlan: absent,
    resolveContext: absent,
    listUserTenants: absent,
    createChatGroup: absent,
    listChatGroups: absent,
    addChatGroupMember: absent,
    removeChatGroupMember: absent,
    listChatGroupMembers: absent,
    async getMembership({ tenantId, userId }) {
      const role = roles.get(`${tenantId}/${userId}`);
      if (role === undefined) throw new AppError('NOT_FOUND', 'membership not found');
      const key = `${tenantId}/${userId}`;
      const memberSince = since.has(key) ? since.get(key) : joinedLongAgo;
      return { membership: { tenantId, tenantName: 'T', userId, role, memberSince: memberSince && timestampFromDate(memberSince) } };
    },
    async listTeams({ tenantId }) {
      return { teams: [...teams].filter(([, t]) => t === tenantId).map(([id]) => teamOf(id)) };
    },
    async listUserTeams({ tenantId, userId }) {
      if (!roles.has(`${tenantId}/${userId}`)) throw new AppError('NOT_FOUND', 'membership not found');
      return {
        teams: [...teams].filter(([id, t]) => t === tenantId && (members.get(id)?.has(userId) ?? false)).map(([id]) => teamOf(id)),
      };
    },
  };
  return {
    server: createGrpcServer({ identity: identities['tenant-registry'], logger, services: [implement(TenantRegistryService, handlers)] }),
    roles,
    since,
    teams,
    members,
  };
}

/** An AuthService serving the robot RPCs only (every other RPC has its own integration test). */
function robotServer(tenants: TeamDirectory, prisma: PrismaClient, signingKeys: SigningKeys): GrpcServer {
  const robots = createRobots({
    store: createRobotQueries(prisma),
    tokens: createRobotTokens({
      signer: signingKeys,
      verificationKeys: createVerificationKeyQueries(prisma),
      issuer,
      audience,
      // Every verification reads its key row, so a test sees what the database says.
      keyRefreshMs: 0,
    }),
    tenants,
    // Robot events are checked in robots.test.ts and the end-to-end audit coverage test.
    audit: recordingAudit().audit,
    logger,
  });
  const absent = async (): Promise<never> => {
    throw new AppError('FAILED_PRECONDITION', 'not served here');
  };
  const handlers = {
    ...Object.fromEntries(AuthService.methods.map((method) => [method.localName, absent])),
    ...robotHandlers(robots),
  } as ServiceHandlers<typeof AuthService>;
  return createGrpcServer({ identity: identities['auth'], logger, services: [implement(AuthService, handlers)] });
}

describe('robots against Postgres, through gRPC, with a fake tenant-registry', () => {
  const tenantA = randomUUID();
  const tenantB = randomUUID();
  const owner = randomUUID();
  const admin = randomUUID();
  const user = randomUUID();
  const ownerB = randomUUID();
  const [red, blue, green, foreign] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
  const registry = fakeTenantRegistry();
  const tokensSeen: string[] = [];

  let db: TestDatabase;
  let prisma: PrismaClient;
  let signingKeys: SigningKeys;
  let registryClient: GrpcClient<typeof TenantRegistryService>;
  let server: GrpcServer;
  let client: GrpcClient<typeof AuthService>;

  const actor = (id: string, tenantId: string = tenantA): Principal => ({
    $typeName: 'portcullis.common.v1.Principal',
    kind: PrincipalKind.USER,
    id,
    tenantId,
    role: Role.UNSPECIFIED,
    actingUserId: '',
    teamIds: [],
  });
  const createRobot = async (by: string, teamIds: string[], extra: { tenantId?: string; expiresAt?: Date } = {}) => {
    const tenantId = extra.tenantId ?? tenantA;
    const answer = await client.createRobot({
      tenantId,
      actor: actor(by, tenantId),
      name: `robot ${randomBytes(3).toString('hex')}`,
      teamIds,
      expiresAt: extra.expiresAt ? timestampFromDate(extra.expiresAt) : undefined,
    });
    tokensSeen.push(answer.token);
    const robot = answer.robot;
    if (!robot) throw new Error('no robot in the answer');
    return { robot, token: answer.token };
  };
  const robotRow = (id: string) =>
    withPg(db.ownerUrl, async (c) => (await c.query<Record<string, unknown>>('SELECT * FROM robots WHERE id = $1', [id])).rows[0]);

  beforeAll(async () => {
    db = await createTestDatabase('auth', migrationsDir);
    prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.appUrl }) });
    signingKeys = createSigningKeys({
      store: createSigningKeyQueries(prisma),
      encryption: createKeyEncryption(randomBytes(32)),
      refreshMs: 60_000,
      propagationSeconds: 0,
      accessTokenTtlSeconds: 900,
    });
    await signingKeys.ensureActiveKey();

    const port = await registry.server.listen('127.0.0.1', 0);
    registry.server.setServing(true);
    registryClient = createGrpcClient(TenantRegistryService, {
      address: `127.0.0.1:${port}`,
      deadlineMs: 3_000,
      credential: identities.auth.credentialFor('tenant-registry'),
    });
    for (const [userId, role] of [
      [owner, Role.OWNER],
      [admin, Role.ADMIN],
      [user, Role.USER],
    ] as const) {
      registry.roles.set(`${tenantA}/${userId}`, role);
    }
    registry.roles.set(`${tenantB}/${ownerB}`, Role.OWNER);
    for (const team of [red, blue, green]) registry.teams.set(team, tenantA);
    registry.teams.set(foreign, tenantB);
    registry.members.set(red, new Set([user, admin]));
    registry.members.set(green, new Set([user]));

    server = robotServer(registryClient, prisma, signingKeys);
    const authPort = await server.listen('127.0.0.1', 0);
    server.setServing(true);
    client = createGrpcClient(AuthService, {
      address: `127.0.0.1:${authPort}`,
      deadlineMs: 5_000,
      credential: identities['api-gateway'].credentialFor('auth'),
    });
  });

  afterAll(async () => {
    // beforeAll may have failed part-way.
    /* eslint-disable @typescript-eslint/no-unnecessary-condition */
    client?.close();
    registryClient?.close();
    await server?.drain(1_000);
    await registry.server.drain(1_000);
    await prisma?.$disconnect();
    await db?.drop();
    /* eslint-enable @typescript-eslint/no-unnecessary-condition */
  });

  it('stores only the registration; the token is an ES256 robot+jwt verifiable against the published JWKS', async () => {
    const { robot, token } = await createRobot(owner, [red, blue]);
    expect(robot).toMatchObject({ tenantId: tenantA, creatorId: owner, teamIds: [red, blue] });
    expect(robot.expiresAt).toBeUndefined();
    expect(robot.revokedAt).toBeUndefined();

    const row = await robotRow(robot.robotId);
    expect(Object.keys(row ?? {}).sort()).toEqual(
      ['created_at', 'creator_id', 'expires_at', 'id', 'name', 'revoked_at', 'revoked_by', 'signing_kid', 'team_ids', 'tenant_id'].sort(),
    );
    expect(JSON.stringify(row)).not.toContain(token.split('.')[2]);
    const { kid } = decodeProtectedHeader(token);
    expect(row).toMatchObject({ tenant_id: tenantA, creator_id: owner, signing_kid: kid, expires_at: null, revoked_at: null });

    const { payload } = await jwtVerify(token, createLocalJWKSet(await signingKeys.publicJwks()), {
      issuer,
      audience,
      typ: 'robot+jwt',
      algorithms: ['ES256'],
    });
    expect(payload).toMatchObject({ sub: robot.robotId, jti: robot.robotId, tenantId: tenantA, creatorId: owner, teamIds: [red, blue] });
    expect(payload.exp).toBeUndefined();

    await expect(client.verifyRobotToken({ token })).resolves.toMatchObject({
      robotId: robot.robotId,
      tenantId: tenantA,
      robotName: robot.name,
      creatorId: owner,
      teamIds: [red, blue],
    });
  });

  it('keeps robots under row-level security: the app role sees none without their tenant, and cannot write into another', async () => {
    const { robot } = await createRobot(owner, [red]);
    const seen = await withPg(db.appUrl, async (c) => (await c.query('SELECT id FROM robots WHERE id = $1', [robot.robotId])).rowCount);
    expect(seen).toBe(0);
    const inScope = async (tenantId: string, sql: string, params: unknown[]) =>
      withPg(db.appUrl, async (c) => {
        await c.query('BEGIN');
        try {
          await c.query("SELECT set_config('app.tenant_id', $1, true)", [tenantId]);
          return (await c.query(sql, params)).rowCount;
        } finally {
          await c.query('ROLLBACK');
        }
      });
    expect(await inScope(tenantA, 'SELECT id FROM robots WHERE id = $1', [robot.robotId])).toBe(1);
    expect(await inScope(tenantB, 'SELECT id FROM robots WHERE id = $1', [robot.robotId])).toBe(0);
    expect(await inScope(tenantB, 'UPDATE robots SET revoked_at = now(), revoked_by = $2 WHERE id = $1', [robot.robotId, ownerB])).toBe(0);
    await expect(
      inScope(
        tenantB,
        "INSERT INTO robots (id, tenant_id, name, creator_id, team_ids, signing_kid) VALUES ($1, $2, 'x', $3, ARRAY[$4]::uuid[], 'k')",
        [randomUUID(), tenantA, owner, red],
      ),
    ).rejects.toThrow(/row-level security/);
  });

  it('lets users assign only their own teams and see only their own robots; owners and admins see all', async () => {
    const mine = await createRobot(user, [red, green]);
    const refused = await rejectionOf(createRobot(user, [blue]));
    expect(refused.code).toBe('PERMISSION_DENIED');
    const outside = await rejectionOf(createRobot(owner, [foreign]));
    expect(outside.code).toBe('INVALID_ARGUMENT');
    const ofB = await createRobot(ownerB, [foreign], { tenantId: tenantB });

    const listed = async (by: string) => (await client.listRobots({ tenantId: tenantA, actor: actor(by) })).robots.map((r) => r.robotId);
    expect(await listed(user)).toEqual([mine.robot.robotId]);
    expect(await listed(admin)).toContain(mine.robot.robotId);
    expect(await listed(owner)).toContain(mine.robot.robotId);
    expect(await listed(owner)).not.toContain(ofB.robot.robotId);
    const cross = await rejectionOf(client.listRobots({ tenantId: tenantA, actor: actor(ownerB, tenantB) }));
    expect(cross.code).toBe('CROSS_TENANT');
  });

  it('revokes at once, idempotently, and answers NOT_FOUND for robots of another tenant or not the actor’s', async () => {
    const { robot, token } = await createRobot(user, [red]);
    const ofB = await createRobot(ownerB, [foreign], { tenantId: tenantB });
    const ownersRobot = await createRobot(owner, [red]);

    expect((await rejectionOf(client.revokeRobot({ tenantId: tenantA, actor: actor(owner), robotId: ofB.robot.robotId }))).code).toBe(
      'NOT_FOUND',
    );
    expect(
      (await rejectionOf(client.revokeRobot({ tenantId: tenantA, actor: actor(user), robotId: ownersRobot.robot.robotId }))).code,
    ).toBe('NOT_FOUND');
    await expect(client.verifyRobotToken({ token: ofB.token })).resolves.toMatchObject({ robotId: ofB.robot.robotId });

    await client.revokeRobot({ tenantId: tenantA, actor: actor(user), robotId: robot.robotId });
    const revoked = await rejectionOf(client.verifyRobotToken({ token }));
    expect(revoked).toMatchObject({ code: 'UNAUTHENTICATED', message: 'invalid, expired or revoked robot token' });
    const first = await robotRow(robot.robotId);
    expect(first).toMatchObject({ revoked_by: user, revoked_at: expect.any(Date) });
    await client.revokeRobot({ tenantId: tenantA, actor: actor(admin), robotId: robot.robotId });
    expect(await robotRow(robot.robotId)).toMatchObject({ revoked_by: user, revoked_at: first?.revoked_at });
    const listed = await client.listRobots({ tenantId: tenantA, actor: actor(user) });
    expect(listed.robots.find((r) => r.robotId === robot.robotId)?.revokedAt).toBeDefined();
  });

  it('stores the chosen expiry in whole seconds, puts it in exp, and refuses the token after it', async () => {
    const expiresAt = new Date(Date.now() + 2_500);
    const { robot, token } = await createRobot(owner, [red], { expiresAt });
    expect((await robotRow(robot.robotId))?.expires_at).toEqual(new Date(Math.floor(expiresAt.getTime() / 1000) * 1000));
    await expect(client.verifyRobotToken({ token })).resolves.toMatchObject({ robotId: robot.robotId });
    const refused = await pollUntil(
      () =>
        client.verifyRobotToken({ token }).then(
          () => undefined,
          (error: unknown) => error,
        ),
      { timeoutMs: 10_000, intervalMs: 200, what: 'the robot token to expire' },
    );
    expect(refused).toMatchObject({ code: 'UNAUTHENTICATED', message: 'invalid, expired or revoked robot token' });
  });

  it('follows the creator: fewer teams, then none (403), then removed from the tenant (401)', async () => {
    const creator = randomUUID();
    registry.roles.set(`${tenantA}/${creator}`, Role.USER);
    registry.members.get(red)?.add(creator);
    registry.members.get(green)?.add(creator);
    const { token } = await createRobot(creator, [red, green]);
    await expect(client.verifyRobotToken({ token })).resolves.toMatchObject({ teamIds: [red, green] });

    registry.members.get(red)?.delete(creator);
    await expect(client.verifyRobotToken({ token })).resolves.toMatchObject({ teamIds: [green] });
    registry.members.get(green)?.delete(creator);
    expect(await rejectionOf(client.verifyRobotToken({ token }))).toMatchObject({
      code: 'PERMISSION_DENIED',
      message: "the robot's creator no longer holds any of the robot's teams",
    });
    registry.members.get(green)?.add(creator);
    registry.roles.delete(`${tenantA}/${creator}`);
    expect(await rejectionOf(client.verifyRobotToken({ token }))).toMatchObject({
      code: 'UNAUTHENTICATED',
      message: "the robot's creator no longer belongs to this tenant",
    });
  });

  it('keeps a robot dead when its creator is removed and added again; a robot made since works', async () => {
    const creator = randomUUID();
    const key = `${tenantA}/${creator}`;
    registry.roles.set(key, Role.USER);
    registry.members.get(red)?.add(creator);
    const old = await createRobot(creator, [red]);
    // Made an hour ago, as far as the stored registration says.
    await withPg(db.ownerUrl, (c) =>
      c.query("UPDATE robots SET created_at = created_at - interval '1 hour' WHERE id = $1", [old.robot.robotId]),
    );
    await expect(client.verifyRobotToken({ token: old.token })).resolves.toMatchObject({ creatorId: creator });
    const gone = { code: 'UNAUTHENTICATED', message: "the robot's creator no longer belongs to this tenant" };
    registry.roles.delete(key);
    expect(await rejectionOf(client.verifyRobotToken({ token: old.token }))).toMatchObject(gone);

    // Added again now, with the same role and teams: a new membership.
    registry.roles.set(key, Role.USER);
    registry.since.set(key, new Date());
    expect(await rejectionOf(client.verifyRobotToken({ token: old.token }))).toMatchObject(gone);
    const fresh = await createRobot(creator, [red]);
    await expect(client.verifyRobotToken({ token: fresh.token })).resolves.toMatchObject({ robotId: fresh.robot.robotId, teamIds: [red] });
    expect(await rejectionOf(client.verifyRobotToken({ token: old.token }))).toMatchObject(gone);
  });

  it('denies with DEPENDENCY_UNAVAILABLE when tenant-registry answers without member_since', async () => {
    const creator = randomUUID();
    const key = `${tenantA}/${creator}`;
    registry.roles.set(key, Role.USER);
    registry.members.get(red)?.add(creator);
    const { token } = await createRobot(creator, [red]);
    registry.since.set(key, undefined);
    expect((await rejectionOf(client.verifyRobotToken({ token }))).code).toBe('DEPENDENCY_UNAVAILABLE');
  });

  it('keeps verifying a robot signed by a key that was rotated out of the JWKS; new robots use the new key', async () => {
    const before = await createRobot(owner, [red]);
    const oldKid = decodeProtectedHeader(before.token).kid;
    await signingKeys.rotate();
    // Retire the old key now: it leaves the JWKS and signs nothing more.
    await withPg(db.ownerUrl, (c) => c.query("UPDATE signing_keys SET retired_at = now() - interval '1 second' WHERE kid = $1", [oldKid]));
    const published = (await withPg(db.ownerUrl, (c) => c.query<{ kid: string }>('SELECT kid FROM signing_keys WHERE retired_at IS NULL')))
      .rows;
    expect(published.map((k) => k.kid)).not.toContain(oldKid);

    await expect(client.verifyRobotToken({ token: before.token })).resolves.toMatchObject({ robotId: before.robot.robotId });
    const after = await createRobot(owner, [red]);
    expect(decodeProtectedHeader(after.token).kid).not.toBe(oldKid);
    expect((await robotRow(after.robot.robotId))?.signing_kid).toBe(decodeProtectedHeader(after.token).kid);

    // The documented way to end every robot of one key at once.
    await withPg(db.ownerUrl, (c) =>
      c.query('UPDATE robots SET revoked_at = now(), revoked_by = creator_id WHERE signing_kid = $1 AND revoked_at IS NULL', [oldKid]),
    );
    expect((await rejectionOf(client.verifyRobotToken({ token: before.token }))).code).toBe('UNAUTHENTICATED');
    await expect(client.verifyRobotToken({ token: after.token })).resolves.toMatchObject({ robotId: after.robot.robotId });
  });

  it('denies with DEPENDENCY_UNAVAILABLE when tenant-registry cannot be reached', async () => {
    const { token } = await createRobot(owner, [red]);
    const unreachable = createGrpcClient(TenantRegistryService, {
      address: '127.0.0.1:1',
      deadlineMs: 2_000,
      credential: identities.auth.credentialFor('tenant-registry'),
    });
    const cut = robotServer(unreachable, prisma, signingKeys);
    const port = await cut.listen('127.0.0.1', 0);
    cut.setServing(true);
    const cutClient = createGrpcClient(AuthService, {
      address: `127.0.0.1:${port}`,
      deadlineMs: 5_000,
      credential: identities['api-gateway'].credentialFor('auth'),
    });
    try {
      expect((await rejectionOf(cutClient.verifyRobotToken({ token }))).code).toBe('DEPENDENCY_UNAVAILABLE');
    } finally {
      cutClient.close();
      unreachable.close();
      await cut.drain(1_000);
    }
  });

  it('never writes a robot token to the log', () => {
    expect(tokensSeen.length).toBeGreaterThan(5);
    const log = logLines.join('\n');
    for (const token of tokensSeen) expect(log).not.toContain(token.split('.')[2]);
    expect(log).toContain('robot created');
  });
});
