import { AppError, type AppErrorCode } from '@portcullis/kit';

/** Answers that mean the dependency could not decide (down, slow, broken), not that it said no. */
const undecided = new Set<AppErrorCode>(['DEPENDENCY_UNAVAILABLE', 'DEADLINE_EXCEEDED', 'INTERNAL', 'UPSTREAM_FAILED', 'INVALID_CONFIG']);

/**
 * For `.catch` on a call the pipeline depends on: a dependency that failed or missed its
 * deadline denies the request with 503 DEPENDENCY_UNAVAILABLE naming it (never a 504, never a
 * guess); its real answers (NOT_FOUND, UNAUTHENTICATED, TENANT_SUSPENDED, …) pass unchanged.
 */
export function denyWhenUnavailable(dependency: string) {
  return (error: unknown): never => {
    if (error instanceof AppError && !undecided.has(error.code)) throw error;
    throw new AppError('DEPENDENCY_UNAVAILABLE', `${dependency} is unavailable; request denied`, { cause: error });
  };
}
