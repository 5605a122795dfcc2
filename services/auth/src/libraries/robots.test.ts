import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from '@jest/globals';
import { calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair, type JWK } from 'jose';
import { AppError } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind, Role, type Principal } from '@portcullis/proto/common';
import { recordingAudit } from '../test-support/audit-events.js';
import { fakeClock } from '../test-support/memory-stores.js';
import { createRobotTokens } from './robot-tokens.js';
import { createRobots, MAX_ROBOT_LIFETIME_SECONDS, type RobotRecord, type RobotStore, type TeamDirectory } from './robots.js';
import { rejectionOf } from '../test-support/rejections.js';

const tenant = '00000000-0000-4000-8000-00000000000a';
const otherTenant = '00000000-0000-4000-8000-00000000000b';
const owner = '00000000-0000-4000-8000-0000000000f1';
const admin = '00000000-0000-4000-8000-0000000000f2';
const user = '00000000-0000-4000-8000-0000000000f3';
const outsider = '00000000-0000-4000-8000-0000000000f4';
const teamRed = '00000000-0000-4000-8000-0000000000e1';
const teamBlue = '00000000-0000-4000-8000-0000000000e2';
const teamGreen = '00000000-0000-4000-8000-0000000000e3';
const foreignTeam = '00000000-0000-4000-8000-0000000000e9';

const actor = (id: string, tenantId = tenant, kind = PrincipalKind.USER): Principal => ({
  $typeName: 'portcullis.common.v1.Principal',
  kind,
  id,
  tenantId,
  role: Role.UNSPECIFIED,
  actingUserId: '',
  teamIds: [],
});

function memoryStore(): RobotStore & { rows: Map<string, RobotRecord> } {
  const rows = new Map<string, RobotRecord>();
  return {
    rows,
    async insert(robot) {
      const row = { ...robot, teamIds: [...robot.teamIds], revokedAt: null, revokedBy: null };
      rows.set(robot.id, row);
      return { ...row };
    },
    async list(tenantId) {
      return [...rows.values()].filter((r) => r.tenantId === tenantId).reverse();
    },
    async get(tenantId, id) {
      const row = rows.get(id);
      return row?.tenantId === tenantId ? { ...row } : undefined;
    },
    async revoke(tenantId, id, at, by) {
      const row = rows.get(id);
      if (row?.tenantId !== tenantId || row.revokedAt) return false;
      row.revokedAt = at;
      row.revokedBy = by;
      return true;
    },
  };
}

/** When the fixtures' memberships began: a day before the fake clock starts. */
const joinedAt = new Date(fakeClock().now() - 86_400_000);

/**
 * tenant-registry as robots use it: roles, when each membership began (undefined: an answer
 * without member_since), teams and team members are fixtures a test may change.
 */
function fakeRegistry() {
  const roles = new Map<string, Role>([
    [owner, Role.OWNER],
    [admin, Role.ADMIN],
    [user, Role.USER],
  ]);
  const since = new Map<string, Date | undefined>([
    [owner, joinedAt],
    [admin, joinedAt],
    [user, joinedAt],
  ]);
  const teams = new Map<string, string>([
    [teamRed, tenant],
    [teamBlue, tenant],
    [teamGreen, tenant],
    [foreignTeam, otherTenant],
  ]);
  const members = new Map<string, Set<string>>([
    [teamRed, new Set([user, admin])],
    [teamBlue, new Set([admin])],
    [teamGreen, new Set([user])],
  ]);
  const state = { down: false };
  const teamOf = (id: string, tenantId: string) => ({ id, tenantId, name: id.slice(-2) });
  const guard = () => {
    if (state.down) throw new AppError('DEPENDENCY_UNAVAILABLE', 'a required service is unavailable');
  };
  const directory: TeamDirectory = {
    async getMembership({ tenantId, userId = '' }) {
      guard();
      const role = roles.get(userId);
      if (role === undefined || tenantId !== tenant) throw new AppError('NOT_FOUND', 'membership not found');
      const memberSince = since.get(userId);
      return { membership: { tenantId, userId, role, memberSince: memberSince && timestampFromDate(memberSince) } } as never;
    },
    async listTeams({ tenantId = '' }) {
      guard();
      return { teams: [...teams].filter(([, t]) => t === tenantId).map(([id, t]) => teamOf(id, t)) } as never;
    },
    async listUserTeams({ tenantId = '', userId = '' }) {
      guard();
      if (!roles.has(userId)) throw new AppError('NOT_FOUND', 'membership not found');
      return {
        teams: [...teams].filter(([id, t]) => t === tenantId && (members.get(id)?.has(userId) ?? false)).map(([id, t]) => teamOf(id, t)),
      } as never;
    },
  };
  /** Removes the person from the tenant and adds them again now: a new membership. */
  const removeAndAddAgain = (userId: string, at: Date) => {
    const role = roles.get(userId);
    if (role === undefined) throw new Error(`${userId} is not a member`);
    roles.delete(userId);
    roles.set(userId, role);
    since.set(userId, at);
  };
  return { directory, roles, since, teams, members, state, removeAndAddAgain };
}

async function setUp() {
  const clock = fakeClock();
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const publicJwk: JWK = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const store = memoryStore();
  const registry = fakeRegistry();
  const logs: unknown[] = [];
  const recorded = recordingAudit();
  const robots = createRobots({
    store,
    tokens: createRobotTokens({
      signer: { currentSigner: async () => ({ kid, privateKey }) },
      verificationKeys: { findPublicKey: async (wanted) => (wanted === kid ? { alg: 'ES256', publicJwk } : undefined) },
      issuer: 'portcullis-auth',
      audience: 'portcullis',
      keyRefreshMs: 60_000,
      now: clock.now,
    }),
    tenants: registry.directory,
    audit: recorded.audit,
    logger: { info: (...args: unknown[]) => logs.push(args), warn: (...args: unknown[]) => logs.push(args) },
    now: clock.now,
  });
  const create = (
    by: string,
    teamIds: string[],
    extra: { name?: string; expiresAt?: Date; tenantId?: string; principal?: Principal } = {},
  ) =>
    robots.create({
      tenantId: extra.tenantId ?? tenant,
      actor: extra.principal ?? actor(by),
      name: extra.name ?? 'build agent',
      teamIds,
      expiresAt: extra.expiresAt,
    });
  return { clock, store, registry, robots, logs, create, kid, recorded };
}

describe('robots: creation', () => {
  it('registers a robot for an owner in any team of the tenant and hands out a token that verifies', async () => {
    const { create, robots, store, clock, kid } = await setUp();
    const { robot, token } = await create(owner, [teamBlue, teamRed], { name: '  build agent  ' });
    expect(robot).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      tenantId: tenant,
      name: 'build agent',
      creatorId: owner,
      teamIds: [teamBlue, teamRed],
      signingKid: kid,
      createdAt: new Date(clock.now()),
      expiresAt: null,
      revokedAt: null,
      revokedBy: null,
    });
    expect(decodeJwt(token)).toMatchObject({
      sub: robot.id,
      jti: robot.id,
      tenantId: tenant,
      creatorId: owner,
      teamIds: [teamBlue, teamRed],
    });
    expect(decodeJwt(token).exp).toBeUndefined();
    // Only the registration is stored: nothing in it is (or contains) the token.
    expect(JSON.stringify([...store.rows.values()])).not.toContain(token.split('.')[2]);
    await expect(robots.verify(token)).resolves.toEqual({
      robotId: robot.id,
      tenantId: tenant,
      robotName: 'build agent',
      creatorId: owner,
      teamIds: [teamBlue, teamRed],
    });
  });

  it('lets a user pick only teams they belong to; owners and admins only teams of the tenant', async () => {
    const { create } = await setUp();
    await expect(create(user, [teamRed, teamGreen])).resolves.toMatchObject({ robot: { creatorId: user } });
    const notTheirs = await rejectionOf(create(user, [teamRed, teamBlue]));
    expect(notTheirs).toMatchObject({ code: 'PERMISSION_DENIED', message: expect.stringContaining('teams you belong to') });
    // An admin is not in the green team, and may still assign it.
    await expect(create(admin, [teamGreen])).resolves.toMatchObject({ robot: { teamIds: [teamGreen] } });
    for (const by of [owner, admin, user]) {
      const foreign = await rejectionOf(create(by, [foreignTeam]));
      expect(foreign.code).toBe(by === user ? 'PERMISSION_DENIED' : 'INVALID_ARGUMENT');
    }
  });

  it.each([
    ['an empty name', { name: '   ' }, [teamRed], 'name'],
    ['a name over 100 characters', { name: 'r'.repeat(101) }, [teamRed], 'name'],
    ['a name with control characters', { name: 'build\nagent' }, [teamRed], 'name'],
    ['no team', {}, [], 'team_ids'],
    ['more than 20 teams', {}, Array.from({ length: 21 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`), 'team_ids'],
    ['a team id that is not a UUID', {}, ['red'], 'team_ids'],
    ['the same team twice', {}, [teamRed, teamRed.toUpperCase()], 'team_ids'],
  ])('refuses %s with INVALID_ARGUMENT', async (_label, extra, teamIds, field) => {
    const { create, store } = await setUp();
    const error = await rejectionOf(create(owner, teamIds, extra));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', details: { field } });
    expect(store.rows.size).toBe(0);
  });

  it('takes an expiry in whole seconds, in the future and at most a year ahead; the robot stops at it', async () => {
    const { create, robots, clock } = await setUp();
    const field = { code: 'INVALID_ARGUMENT', details: { field: 'expires_at' } };
    await expect(create(owner, [teamRed], { expiresAt: new Date(clock.now()) })).rejects.toMatchObject(field);
    await expect(create(owner, [teamRed], { expiresAt: new Date(clock.now() + 999) })).rejects.toMatchObject(field);
    await expect(
      create(owner, [teamRed], { expiresAt: new Date(clock.now() + MAX_ROBOT_LIFETIME_SECONDS * 1000 + 1000) }),
    ).rejects.toMatchObject(field);
    await expect(create(owner, [teamRed], { expiresAt: new Date(Number.NaN) })).rejects.toMatchObject(field);

    const { robot, token } = await create(owner, [teamRed], { expiresAt: new Date(clock.now() + 60_500) });
    expect(robot.expiresAt?.getTime()).toBe(Math.floor((clock.now() + 60_500) / 1000) * 1000);
    expect(decodeJwt(token).exp).toBe(Math.floor((clock.now() + 60_500) / 1000));
    clock.advance(59_000);
    await expect(robots.verify(token)).resolves.toMatchObject({ robotId: robot.id });
    clock.advance(1_500);
    await expect(robots.verify(token)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('is for signed-in members only: no other principal kind, no actor of another tenant, no outsider', async () => {
    const { create, store } = await setUp();
    await expect(create(owner, [teamRed], { principal: actor(owner, tenant, PrincipalKind.ROBOT) })).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
    });
    await expect(create(owner, [teamRed], { principal: actor(owner, tenant, PrincipalKind.API_KEY) })).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
    });
    await expect(create(owner, [teamRed], { principal: actor(owner, otherTenant) })).rejects.toMatchObject({ code: 'CROSS_TENANT' });
    await expect(create(outsider, [teamRed])).rejects.toMatchObject({ code: 'PERMISSION_DENIED', message: 'not a member of this tenant' });
    await expect(create(owner, [teamRed], { tenantId: 'tenant' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(store.rows.size).toBe(0);
  });

  it('fails closed when tenant-registry is down: no robot, no token', async () => {
    const { create, store, registry } = await setUp();
    registry.state.down = true;
    await expect(create(owner, [teamRed])).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(store.rows.size).toBe(0);
  });

  it('records the registration by its creator, with the robot and its teams, never the token', async () => {
    const { create, recorded } = await setUp();
    const { robot, token } = await create(admin, [teamBlue, teamRed], { name: 'build agent' });
    expect(recorded.events).toEqual([
      {
        tenantId: tenant,
        kind: 'robots.created',
        principal: { kind: PrincipalKind.USER, id: admin, tenantId: tenant, role: Role.ADMIN },
        object: 'robots',
        action: 'create',
        outcome: Outcome.SUCCESS,
        attributes: {
          robot_id: robot.id,
          robot_name: 'build agent',
          creator_id: admin,
          team_ids: `${teamBlue} ${teamRed}`,
          expires_at: '',
        },
      },
    ]);
    expect(JSON.stringify(recorded.events)).not.toContain(token.split('.')[2]);
  });

  it('hands out no token for a robot whose registration was not recorded', async () => {
    const { create, recorded } = await setUp();
    recorded.fail();
    await expect(create(owner, [teamRed])).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
  });

  it('never logs the token', async () => {
    const { create, logs } = await setUp();
    const { token } = await create(owner, [teamRed]);
    expect(JSON.stringify(logs)).not.toContain(token);
    expect(JSON.stringify(logs)).not.toContain(token.split('.')[2]);
  });
});

describe('robots: listing and revocation', () => {
  it('shows owners and admins every robot of the tenant, users only their own', async () => {
    const { create, robots } = await setUp();
    const mine = await create(user, [teamRed]);
    const owners = await create(owner, [teamBlue]);
    const ids = (list: RobotRecord[]) => list.map((r) => r.id).sort();
    expect(ids(await robots.list(tenant, actor(owner)))).toEqual([mine.robot.id, owners.robot.id].sort());
    expect(ids(await robots.list(tenant, actor(admin)))).toEqual([mine.robot.id, owners.robot.id].sort());
    expect(ids(await robots.list(tenant, actor(user)))).toEqual([mine.robot.id]);
    await expect(robots.list(tenant, actor(outsider))).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(robots.list(tenant, actor(owner, otherTenant))).rejects.toMatchObject({ code: 'CROSS_TENANT' });
  });

  it('lets the creator or an owner/admin revoke; the token stops at once; a second revoke changes nothing', async () => {
    const { create, robots, store, clock } = await setUp();
    const { robot, token } = await create(user, [teamRed]);
    await robots.revoke(tenant, actor(user), robot.id);
    const revokedAt = new Date(clock.now());
    expect(store.rows.get(robot.id)).toMatchObject({ revokedAt, revokedBy: user });
    await expect(robots.verify(token)).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      message: 'invalid, expired or revoked robot token',
    });
    clock.advance(1_000);
    await robots.revoke(tenant, actor(admin), robot.id);
    expect(store.rows.get(robot.id)).toMatchObject({ revokedAt, revokedBy: user });

    const ownersRobot = await create(owner, [teamRed]);
    await robots.revoke(tenant, actor(admin), ownersRobot.robot.id);
    expect(store.rows.get(ownersRobot.robot.id)).toMatchObject({ revokedBy: admin });
  });

  it('records each revocation that changed something, by the person who revoked', async () => {
    const { create, robots, recorded } = await setUp();
    const { robot } = await create(user, [teamRed]);
    await robots.revoke(tenant, actor(user), robot.id);
    await robots.revoke(tenant, actor(admin), robot.id);
    expect(recorded.ofKind('robots.revoked')).toEqual([
      expect.objectContaining({
        tenantId: tenant,
        principal: { kind: PrincipalKind.USER, id: user, tenantId: tenant, role: Role.USER },
        object: 'robots',
        action: 'revoke',
        attributes: expect.objectContaining({ robot_id: robot.id, creator_id: user }),
      }),
    ]);
  });

  it("answers NOT_FOUND for another person's robot (to a user), an unknown id and a robot of another tenant", async () => {
    const { create, robots, store } = await setUp();
    const ownersRobot = await create(owner, [teamRed]);
    await expect(robots.revoke(tenant, actor(user), ownersRobot.robot.id)).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: 'no such robot',
    });
    await expect(robots.revoke(tenant, actor(owner), '00000000-0000-4000-8000-000000000000')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(robots.revoke(tenant, actor(owner), 'not-a-uuid')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    // A row of another tenant with a known id: the tenant's scope never finds it.
    store.rows.set(ownersRobot.robot.id, { ...ownersRobot.robot, tenantId: otherTenant });
    await expect(robots.revoke(tenant, actor(owner), ownersRobot.robot.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(store.rows.get(ownersRobot.robot.id)?.revokedAt).toBeNull();
  });
});

describe('robots: verification follows the creator', () => {
  it('refuses every robot of a creator removed from the tenant', async () => {
    const { create, robots, registry } = await setUp();
    const { token } = await create(user, [teamRed]);
    registry.roles.delete(user);
    await expect(robots.verify(token)).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      message: "the robot's creator no longer belongs to this tenant",
    });
  });

  it('refuses for good a robot made before its creator was removed and added again; a robot made since works', async () => {
    const { create, robots, registry, clock } = await setUp();
    const old = await create(user, [teamRed]);
    clock.advance(3_600_000);
    registry.roles.delete(user);
    await expect(robots.verify(old.token)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    clock.advance(60_000);
    registry.roles.set(user, Role.USER);
    registry.since.set(user, new Date(clock.now()));
    // Back in the tenant, with the same teams: the old robot still belongs to the old membership.
    await expect(robots.verify(old.token)).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      message: "the robot's creator no longer belongs to this tenant",
    });
    const fresh = await create(user, [teamRed]);
    await expect(robots.verify(fresh.token)).resolves.toMatchObject({ robotId: fresh.robot.id, teamIds: [teamRed] });
    clock.advance(86_400_000);
    await expect(robots.verify(old.token)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    // Nobody else's robots are touched by it.
    const owners = await create(owner, [teamRed]);
    registry.removeAndAddAgain(user, new Date(clock.now() + 60_000));
    await expect(robots.verify(owners.token)).resolves.toMatchObject({ creatorId: owner });
  });

  it('allows one second of clock difference between auth and tenant-registry, not more', async () => {
    const { create, robots, registry, clock } = await setUp();
    const { token } = await create(user, [teamRed]);
    // tenant-registry's clock a little ahead: the membership seems to begin just after the robot.
    registry.since.set(user, new Date(clock.now() + 1_000));
    await expect(robots.verify(token)).resolves.toMatchObject({ creatorId: user });
    registry.since.set(user, new Date(clock.now() + 1_001));
    await expect(robots.verify(token)).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      message: "the robot's creator no longer belongs to this tenant",
    });
  });

  it('denies with DEPENDENCY_UNAVAILABLE when tenant-registry answers without member_since, and says so in the log', async () => {
    const { create, robots, registry, logs } = await setUp();
    const { token } = await create(user, [teamRed]);
    registry.since.set(user, undefined);
    await expect(robots.verify(token)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(JSON.stringify(logs)).toContain('without member_since');
  });

  it("narrows the robot's teams to those its creator still holds, and refuses it when none is left", async () => {
    const { create, robots, registry } = await setUp();
    const { token } = await create(user, [teamRed, teamGreen]);
    registry.members.get(teamRed)?.delete(user);
    await expect(robots.verify(token)).resolves.toMatchObject({ teamIds: [teamGreen] });
    registry.members.get(teamGreen)?.delete(user);
    await expect(robots.verify(token)).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
      message: "the robot's creator no longer holds any of the robot's teams",
    });
  });

  it("caps an admin's robot by the admin's teams once the admin is demoted to user", async () => {
    const { create, robots, registry } = await setUp();
    const { token } = await create(admin, [teamRed, teamGreen]);
    await expect(robots.verify(token)).resolves.toMatchObject({ teamIds: [teamRed, teamGreen] });
    registry.roles.set(admin, Role.USER);
    await expect(robots.verify(token)).resolves.toMatchObject({ teamIds: [teamRed] });
  });

  it("drops a deleted team from an owner's robot", async () => {
    const { create, robots, registry } = await setUp();
    const { token } = await create(owner, [teamRed, teamBlue]);
    registry.teams.delete(teamBlue);
    await expect(robots.verify(token)).resolves.toMatchObject({ teamIds: [teamRed] });
  });

  it('denies with DEPENDENCY_UNAVAILABLE while tenant-registry is down, never allows', async () => {
    const { create, robots, registry } = await setUp();
    const { token } = await create(user, [teamRed]);
    registry.state.down = true;
    await expect(robots.verify(token)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
  });

  it('refuses a signed token whose registration is gone or says something else, and warns about the mismatch', async () => {
    const { create, robots, store, logs } = await setUp();
    const { robot, token } = await create(user, [teamRed, teamGreen]);
    const row = store.rows.get(robot.id)!;
    for (const changed of [
      { teamIds: [teamRed] },
      { creatorId: admin },
      { name: 'other' },
      { signingKid: 'k2' },
      { expiresAt: new Date() },
    ]) {
      store.rows.set(robot.id, { ...row, ...changed });
      await expect(robots.verify(token)).rejects.toMatchObject({
        code: 'UNAUTHENTICATED',
        message: 'invalid, expired or revoked robot token',
      });
    }
    expect(JSON.stringify(logs)).toContain('signed robot token does not match its registration');
    store.rows.delete(robot.id);
    await expect(robots.verify(token)).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      message: 'invalid, expired or revoked robot token',
    });
  });
});
