import { decodeProtectedHeader } from 'jose';
import { AppError, isUuid, type GrpcClient } from '@portcullis/kit';
import type { AuthService } from '@portcullis/proto/auth';

/** The JWT media type the auth service gives robot tokens (access tokens are `at+jwt`). */
export const ROBOT_TOKEN_TYPE = 'robot+jwt';
/** A robot token is well under 2 KB; anything this long is refused without asking the auth service. */
const MAX_ROBOT_TOKEN_LENGTH = 8_192;
const MAX_ROBOT_TEAMS = 20;

const invalidRobotToken = () => new AppError('UNAUTHENTICATED', 'invalid, expired or revoked robot token');

/**
 * Whether a bearer JWT says it is a robot token. Only the unverified header is read, and only
 * to pick the verifier: an access token relabelled as a robot token is then refused by the
 * auth service, a robot token relabelled as an access token by the access-token verifier
 * (changing the header breaks the signature either way). Compared like jose compares `typ`.
 */
export function isRobotToken(token: string): boolean {
  let typ: unknown;
  try {
    ({ typ } = decodeProtectedHeader(token));
  } catch {
    return false;
  }
  return typeof typ === 'string' && typ.toLowerCase().replace(/^application\//, '') === ROBOT_TOKEN_TYPE;
}

export interface VerifiedRobot {
  robotId: string;
  tenantId: string;
  robotName: string;
  /** The person whose current rights cap the robot. */
  creatorId: string;
  /** The robot's teams its creator still holds now; never empty. */
  teamIds: readonly string[];
}

/** Auth's answers that say something about the request; anything else means auth could not decide. */
const passedThrough = new Set(['UNAUTHENTICATED', 'PERMISSION_DENIED', 'TENANT_SUSPENDED', 'DEPENDENCY_UNAVAILABLE', 'DEADLINE_EXCEEDED']);

/**
 * Verifies a robot token with the auth service, which checks the signature against every key
 * it holds (a robot token may outlive the published key set), revocation, expiry, and its
 * creator's membership and teams, at every request. An answer that is not a well-formed robot
 * description is a failure, never a pass; an unexpected failure of auth denies with 503.
 */
export function createRobotTokenVerifier({ auth }: { auth: Pick<GrpcClient<typeof AuthService>, 'verifyRobotToken'> }) {
  return async function verifyRobotToken(token: string, requestId: string): Promise<VerifiedRobot> {
    if (token.length > MAX_ROBOT_TOKEN_LENGTH) throw invalidRobotToken();
    const answer = await auth.verifyRobotToken({ token }, { requestId }).catch((error: unknown) => {
      if (error instanceof AppError && passedThrough.has(error.code)) throw error;
      if (error instanceof AppError && error.code === 'INVALID_ARGUMENT') throw invalidRobotToken();
      throw new AppError('DEPENDENCY_UNAVAILABLE', 'robot tokens cannot be verified now; request denied', { cause: error });
    });
    if (
      !isUuid(answer.robotId) ||
      !isUuid(answer.tenantId) ||
      !isUuid(answer.creatorId) ||
      answer.robotName.length === 0 ||
      answer.teamIds.length === 0 ||
      answer.teamIds.length > MAX_ROBOT_TEAMS ||
      !answer.teamIds.every(isUuid)
    ) {
      throw invalidRobotToken();
    }
    return {
      robotId: answer.robotId.toLowerCase(),
      tenantId: answer.tenantId.toLowerCase(),
      robotName: answer.robotName,
      creatorId: answer.creatorId.toLowerCase(),
      teamIds: answer.teamIds.map((id) => id.toLowerCase()),
    };
  };
}

export type RobotTokenVerifier = ReturnType<typeof createRobotTokenVerifier>;
