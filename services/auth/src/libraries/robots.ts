import { randomUUID } from 'node:crypto';
import { AppError, isUuid, requireText, roleOf, type AuditPublisher, type GrpcClient, type Logger, type RoleName } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind, type Principal } from '@portcullis/proto/common';
import type { TenantRegistryService } from '@portcullis/proto/tenant';
import { madeInMembership, membershipSince, notAMember, signedInActor } from './memberships.js';
import { invalidRobotToken, MAX_ROBOT_NAME_LENGTH, MAX_ROBOT_TEAMS, type RobotTokenClaims, type RobotTokens } from './robot-tokens.js';

/** The longest expiry a robot may be given; beyond that, choose "never" knowingly (see the README). */
export const MAX_ROBOT_LIFETIME_SECONDS = 365 * 86_400;

export interface RobotRecord {
  id: string;
  tenantId: string;
  name: string;
  creatorId: string;
  teamIds: string[];
  /** The signing key that signed the robot's token; verification accepts no other key. */
  signingKid: string;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  revokedBy: string | null;
}

export type NewRobot = Omit<RobotRecord, 'revokedAt' | 'revokedBy'>;

/** Robots are tenant-owned: every call names the tenant whose scope it runs in. */
export interface RobotStore {
  insert(robot: NewRobot): Promise<RobotRecord>;
  /** The tenant's robots, newest first. */
  list(tenantId: string): Promise<RobotRecord[]>;
  get(tenantId: string, id: string): Promise<RobotRecord | undefined>;
  /** Sets revoked_at/revoked_by unless the robot is already revoked; false when nothing changed. */
  revoke(tenantId: string, id: string, at: Date, by: string): Promise<boolean>;
}

/** The tenant-registry calls robots make. */
export type TeamDirectory = Pick<GrpcClient<typeof TenantRegistryService>, 'getMembership' | 'listTeams' | 'listUserTeams'>;

export interface VerifiedRobot {
  robotId: string;
  tenantId: string;
  robotName: string;
  creatorId: string;
  /** The robot's teams its creator still holds now, in the robot's order; never empty. */
  teamIds: string[];
}

export interface RobotsDeps {
  store: RobotStore;
  tokens: Pick<RobotTokens, 'issue' | 'verify'>;
  tenants: TeamDirectory;
  /**
   * Where registration and revocation are recorded (`robots.created`, `robots.revoked`; never the
   * token). Not `robot.*`: that is where the audit service files the events robots publish.
   */
  audit: Pick<AuditPublisher, 'publish'>;
  logger: Pick<Logger, 'info' | 'warn'>;
  now?: () => number;
}

export interface CreateRobotInput {
  tenantId: string;
  actor: Principal | undefined;
  name: string;
  teamIds: readonly string[];
  expiresAt: Date | undefined;
}

const CONTROL_CHARACTER = /\p{Cc}/u;
const isManager = (role: RoleName) => role === 'owner' || role === 'admin';
const noSuchRobot = () => new AppError('NOT_FOUND', 'no such robot');
const creatorGone = () => new AppError('UNAUTHENTICATED', "the robot's creator no longer belongs to this tenant");

function robotNameOf(input: string): string {
  const name = requireText(input, 'name', MAX_ROBOT_NAME_LENGTH);
  if (CONTROL_CHARACTER.test(name)) {
    throw new AppError('INVALID_ARGUMENT', 'name must not contain control characters', { details: { field: 'name' } });
  }
  return name;
}

/** 1–20 distinct team ids (UUIDs, lowercased), in the order given. */
export function normaliseTeamIds(teamIds: readonly string[]): string[] {
  const field = { details: { field: 'team_ids' } };
  if (teamIds.length === 0) throw new AppError('INVALID_ARGUMENT', 'team_ids: at least one team is required', field);
  if (teamIds.length > MAX_ROBOT_TEAMS) throw new AppError('INVALID_ARGUMENT', `team_ids: at most ${MAX_ROBOT_TEAMS} teams`, field);
  if (!teamIds.every(isUuid)) throw new AppError('INVALID_ARGUMENT', 'team_ids: each team id is a UUID', field);
  const ids = teamIds.map((id) => id.toLowerCase());
  if (new Set(ids).size !== ids.length) throw new AppError('INVALID_ARGUMENT', 'team_ids: each team may be named once', field);
  return ids;
}

/** An optional expiry in whole seconds (a JWT `exp`), in the future and at most a year ahead. */
function expiryOf(expiresAt: Date | undefined, createdAt: Date): Date | null {
  if (expiresAt === undefined) return null;
  const field = { details: { field: 'expires_at' } };
  const ms = expiresAt.getTime();
  if (!Number.isFinite(ms)) throw new AppError('INVALID_ARGUMENT', 'expires_at is not a valid time', field);
  const seconds = Math.floor(ms / 1000);
  if (seconds * 1000 <= createdAt.getTime()) throw new AppError('INVALID_ARGUMENT', 'expires_at must be in the future', field);
  if (seconds * 1000 > createdAt.getTime() + MAX_ROBOT_LIFETIME_SECONDS * 1000) {
    throw new AppError(
      'INVALID_ARGUMENT',
      'expires_at must be at most 365 days ahead (leave it unset for a robot that does not expire)',
      field,
    );
  }
  return new Date(seconds * 1000);
}

const sameTeams = (a: readonly string[], b: readonly string[]) => a.length === b.length && [...a].sort().join() === [...b].sort().join();

/** Does the registration say exactly what the (validly signed) token says? */
function matchesRegistration(robot: RobotRecord, claims: RobotTokenClaims): boolean {
  const expiry = robot.expiresAt === null ? undefined : Math.floor(robot.expiresAt.getTime() / 1000);
  return (
    robot.tenantId === claims.tenantId &&
    robot.creatorId === claims.creatorId &&
    robot.name === claims.robotName &&
    robot.signingKid === claims.kid &&
    sameTeams(robot.teamIds, claims.teamIds) &&
    expiry === claims.expiresAt
  );
}

/**
 * Robots ("assign a PC"): a signed-in person registers a robot for some of their teams and gets
 * its token once. The robot never exceeds its creator's rights: verification re-reads the
 * creator's membership and teams every time, so it loses them the moment the creator does.
 */
export function createRobots({ store, tokens, tenants, audit, logger, now = Date.now }: RobotsDeps) {
  const actorOf = (tenantIdInput: string, actor: Principal | undefined) => signedInActor(tenants, tenantIdInput, actor, 'robots');

  /** Records a change the actor made to a robot, once it is stored. */
  const record = (
    change: { kind: 'robots.created'; action: 'create' } | { kind: 'robots.revoked'; action: 'revoke' },
    actor: { tenantId: string; userId: string; role: RoleName },
    robot: RobotRecord,
  ) =>
    audit.publish({
      tenantId: actor.tenantId,
      kind: change.kind,
      principal: { kind: PrincipalKind.USER, id: actor.userId, tenantId: actor.tenantId, role: roleOf(actor.role) },
      object: 'robots',
      action: change.action,
      outcome: Outcome.SUCCESS,
      attributes: {
        robot_id: robot.id,
        robot_name: robot.name,
        creator_id: robot.creatorId,
        team_ids: robot.teamIds.join(' '),
        expires_at: robot.expiresAt?.toISOString() ?? '',
      },
    });

  /**
   * The teams a person holds in the tenant: every team for owners and admins, their own teams
   * for users. Undefined when tenant-registry says the person (or the tenant) is not there.
   */
  async function teamsHeld(tenantId: string, userId: string, role: RoleName): Promise<Set<string> | undefined> {
    const answer = await (isManager(role) ? tenants.listTeams({ tenantId }) : tenants.listUserTeams({ tenantId, userId })).catch(
      (error: unknown) => {
        if (error instanceof AppError && error.code === 'NOT_FOUND') return undefined;
        throw error;
      },
    );
    if (!answer) return undefined;
    return new Set(answer.teams.filter((team) => team.tenantId.toLowerCase() === tenantId).map((team) => team.id.toLowerCase()));
  }

  const visibleTo = (robot: RobotRecord, userId: string, role: RoleName) => isManager(role) || robot.creatorId === userId;

  return {
    async create(input: CreateRobotInput): Promise<{ robot: RobotRecord; token: string }> {
      const { tenantId, userId, role } = await actorOf(input.tenantId, input.actor);
      const name = robotNameOf(input.name);
      const teamIds = normaliseTeamIds(input.teamIds);
      const createdAt = new Date(now());
      const expiresAt = expiryOf(input.expiresAt, createdAt);

      const held = await teamsHeld(tenantId, userId, role);
      if (!held) throw notAMember();
      const foreign = teamIds.find((id) => !held.has(id));
      if (foreign !== undefined) {
        // Owners and admins may pick any team of the tenant; users only their own teams.
        if (isManager(role)) {
          throw new AppError('INVALID_ARGUMENT', `team_ids: ${foreign} is not a team of this tenant`, { details: { field: 'team_ids' } });
        }
        throw new AppError('PERMISSION_DENIED', `team_ids: you may only assign a robot to teams you belong to (${foreign})`);
      }

      const robotId = randomUUID();
      const { token, kid } = await tokens.issue({
        robotId,
        tenantId,
        robotName: name,
        creatorId: userId,
        teamIds,
        expiresAt: expiresAt ?? undefined,
      });
      const robot = await store.insert({ id: robotId, tenantId, name, creatorId: userId, teamIds, signingKid: kid, createdAt, expiresAt });
      logger.info({ tenantId, robotId, creatorId: userId, teams: teamIds.length, expiresAt, kid }, 'robot created');
      // Without its record the token is not handed out: nobody ever holds it.
      await record({ kind: 'robots.created', action: 'create' }, { tenantId, userId, role }, robot);
      return { robot, token };
    },

    async list(tenantIdInput: string, actor: Principal | undefined): Promise<RobotRecord[]> {
      const { tenantId, userId, role } = await actorOf(tenantIdInput, actor);
      return (await store.list(tenantId)).filter((robot) => visibleTo(robot, userId, role));
    },

    /** Idempotent: revoking a revoked robot succeeds and keeps the first revocation's time and author. */
    async revoke(tenantIdInput: string, actor: Principal | undefined, robotId: string): Promise<void> {
      const { tenantId, userId, role } = await actorOf(tenantIdInput, actor);
      if (!isUuid(robotId)) throw noSuchRobot();
      const robot = await store.get(tenantId, robotId.toLowerCase());
      // Robots the actor may not manage are answered like unknown ones.
      if (!robot || !visibleTo(robot, userId, role)) throw noSuchRobot();
      const revoked = await store.revoke(tenantId, robot.id, new Date(now()), userId);
      logger.info({ tenantId, robotId: robot.id, by: userId, revoked }, 'robot revoked');
      // Revoking a revoked robot changes nothing and records nothing.
      if (revoked) await record({ kind: 'robots.revoked', action: 'revoke' }, { tenantId, userId, role }, robot);
    },

    /**
     * A robot token is good when its signature and claims verify, its registration exists in
     * the claimed tenant and says the same, it is neither revoked nor expired, its creator is
     * still a member — in the same membership: a robot made before its creator was removed
     * and added again stays dead — and the creator still holds at least one of its teams.
     * Every problem with the token itself is the same UNAUTHENTICATED; tenant-registry's
     * failures pass through (an outage, or an answer without member_since, is
     * DEPENDENCY_UNAVAILABLE: nothing is ever allowed without a full answer).
     */
    async verify(token: string): Promise<VerifiedRobot> {
      const claims = await tokens.verify(token);
      const robot = await store.get(claims.tenantId, claims.robotId);
      if (!robot) throw invalidRobotToken();
      if (!matchesRegistration(robot, claims)) {
        // Only the holder of a signing key can make a validly signed token that disagrees with
        // its registration: worth an operator's attention (see the README on signing keys).
        logger.warn(
          { tenantId: claims.tenantId, robotId: claims.robotId, kid: claims.kid },
          'signed robot token does not match its registration',
        );
        throw invalidRobotToken();
      }
      if (robot.revokedAt !== null || (robot.expiresAt !== null && robot.expiresAt.getTime() <= now())) throw invalidRobotToken();

      const membership = await membershipSince(tenants, robot.tenantId, robot.creatorId, logger);
      if (!membership || !madeInMembership(robot.createdAt, membership)) throw creatorGone();
      const held = await teamsHeld(robot.tenantId, robot.creatorId, membership.role);
      if (!held) throw creatorGone();
      const teamIds = robot.teamIds.filter((id) => held.has(id));
      if (teamIds.length === 0) {
        throw new AppError('PERMISSION_DENIED', "the robot's creator no longer holds any of the robot's teams");
      }
      return { robotId: robot.id, tenantId: robot.tenantId, robotName: robot.name, creatorId: robot.creatorId, teamIds };
    },
  };
}

export type Robots = ReturnType<typeof createRobots>;
