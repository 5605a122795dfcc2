import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { AppError, z, type GrpcClient } from '@portcullis/kit';
import type { AuthService, Robot } from '@portcullis/proto/auth';
import { isoTime } from '../http/presenters.js';
import { parseInput, type ProtectedRoute } from '../http/route.js';

export interface RobotRouteDeps {
  auth: Pick<GrpcClient<typeof AuthService>, 'createRobot' | 'listRobots' | 'revokeRobot'>;
}

function presentRobot(robot: Robot | undefined) {
  if (!robot) throw new AppError('INTERNAL', 'auth returned no robot');
  return {
    id: robot.robotId,
    name: robot.name,
    creatorId: robot.creatorId,
    teamIds: robot.teamIds,
    createdAt: isoTime(robot.createdAt),
    expiresAt: isoTime(robot.expiresAt),
    revokedAt: isoTime(robot.revokedAt),
  };
}

/**
 * Robots ("assign a PC"). Only signed-in people manage robots (a robot or an API key cannot
 * mint robots): capability `robots:own` (every role), and the auth service re-checks the actor's
 * role and teams — users assign only teams they belong to and see/revoke only their own robots;
 * owners and admins any team and any robot of the tenant.
 */
export function createRobotRoutes({ auth }: RobotRouteDeps): ProtectedRoute[] {
  const capability = { object: 'robots', action: 'own' };
  return [
    {
      kind: 'protected',
      method: 'post',
      path: '/api/robots',
      capability,
      humansOnly: true,
      summary: 'Assign a robot to some of your teams (its token is in this answer only)',
      async handle({ request, target, principal }, { body }) {
        const input = parseInput(
          z.object({
            name: z.string().trim().min(1).max(100),
            teamIds: z.array(z.uuid()).min(1).max(20),
            expiresAt: z.iso.datetime({ offset: true }).optional(),
          }),
          body,
        );
        const { robot, token } = await auth.createRobot(
          {
            tenantId: target.tenantId,
            actor: principal,
            name: input.name,
            teamIds: input.teamIds,
            expiresAt: input.expiresAt === undefined ? undefined : timestampFromDate(new Date(input.expiresAt)),
          },
          { requestId: request.requestId },
        );
        return { status: 201, body: { robot: presentRobot(robot), token } };
      },
    },
    {
      kind: 'protected',
      method: 'get',
      path: '/api/robots',
      capability,
      humansOnly: true,
      summary: 'List the robots you may manage (never their tokens)',
      async handle({ request, target, principal }) {
        const { robots } = await auth.listRobots({ tenantId: target.tenantId, actor: principal }, { requestId: request.requestId });
        return { body: { robots: robots.map(presentRobot) } };
      },
    },
    {
      kind: 'protected',
      method: 'delete',
      path: '/api/robots/:robotId',
      capability,
      humansOnly: true,
      summary: 'Revoke a robot; its token is refused from the next request on',
      async handle({ request, target, principal }, { params }) {
        const { robotId } = parseInput(z.object({ robotId: z.uuid() }), params);
        await auth.revokeRobot({ tenantId: target.tenantId, actor: principal, robotId }, { requestId: request.requestId });
        return { status: 204, body: null };
      },
    },
  ];
}
