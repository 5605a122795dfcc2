import { status as GrpcStatus } from '@grpc/grpc-js';

/**
 * The closed set of error codes used across Portcullis. Adding a code breaks the
 * exhaustive switches below until it is mapped.
 */
export const appErrorCodes = [
  'INVALID_ARGUMENT',
  'UNAUTHENTICATED',
  'PERMISSION_DENIED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'FAILED_PRECONDITION',
  'TENANT_SUSPENDED',
  'CROSS_TENANT',
  'RATE_LIMITED',
  'PAYLOAD_TOO_LARGE',
  'UPSTREAM_FAILED',
  'DEPENDENCY_UNAVAILABLE',
  'DEADLINE_EXCEEDED',
  'INVALID_CONFIG',
  'INTERNAL',
] as const;

export type AppErrorCode = (typeof appErrorCodes)[number];

export interface AppErrorOptions {
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class AppError extends Error {
  override readonly name = 'AppError';
  readonly code: AppErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: AppErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }
}

export function isAppErrorCode(value: unknown): value is AppErrorCode {
  return typeof value === 'string' && (appErrorCodes as readonly string[]).includes(value);
}

/** Normalises anything thrown into an AppError; unknown throws become INTERNAL with the cause kept. */
export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  return new AppError('INTERNAL', 'Internal error', { cause: error });
}

/** The gRPC status a service answers with for an AppError code. */
export function grpcStatusOf(code: AppErrorCode): GrpcStatus {
  switch (code) {
    case 'INVALID_ARGUMENT':
      return GrpcStatus.INVALID_ARGUMENT;
    case 'UNAUTHENTICATED':
      return GrpcStatus.UNAUTHENTICATED;
    case 'PERMISSION_DENIED':
    case 'TENANT_SUSPENDED':
    case 'CROSS_TENANT':
      return GrpcStatus.PERMISSION_DENIED;
    case 'NOT_FOUND':
      return GrpcStatus.NOT_FOUND;
    case 'ALREADY_EXISTS':
      return GrpcStatus.ALREADY_EXISTS;
    case 'FAILED_PRECONDITION':
      return GrpcStatus.FAILED_PRECONDITION;
    case 'RATE_LIMITED':
    case 'PAYLOAD_TOO_LARGE':
      return GrpcStatus.RESOURCE_EXHAUSTED;
    case 'UPSTREAM_FAILED':
    case 'DEPENDENCY_UNAVAILABLE':
      return GrpcStatus.UNAVAILABLE;
    case 'DEADLINE_EXCEEDED':
      return GrpcStatus.DEADLINE_EXCEEDED;
    case 'INVALID_CONFIG':
    case 'INTERNAL':
      return GrpcStatus.INTERNAL;
  }
}

/** The AppError code a client assigns to a gRPC status when the server sent no code of its own. */
export function codeOfGrpcStatus(status: GrpcStatus): AppErrorCode {
  switch (status) {
    case GrpcStatus.INVALID_ARGUMENT:
    case GrpcStatus.OUT_OF_RANGE:
      return 'INVALID_ARGUMENT';
    case GrpcStatus.UNAUTHENTICATED:
      return 'UNAUTHENTICATED';
    case GrpcStatus.PERMISSION_DENIED:
      return 'PERMISSION_DENIED';
    case GrpcStatus.NOT_FOUND:
      return 'NOT_FOUND';
    case GrpcStatus.ALREADY_EXISTS:
    case GrpcStatus.ABORTED:
      return 'ALREADY_EXISTS';
    case GrpcStatus.FAILED_PRECONDITION:
      return 'FAILED_PRECONDITION';
    case GrpcStatus.RESOURCE_EXHAUSTED:
      return 'RATE_LIMITED';
    case GrpcStatus.UNAVAILABLE:
      return 'DEPENDENCY_UNAVAILABLE';
    case GrpcStatus.DEADLINE_EXCEEDED:
    case GrpcStatus.CANCELLED:
      return 'DEADLINE_EXCEEDED';
    case GrpcStatus.OK:
    case GrpcStatus.UNKNOWN:
    case GrpcStatus.UNIMPLEMENTED:
    case GrpcStatus.INTERNAL:
    case GrpcStatus.DATA_LOSS:
      return 'INTERNAL';
  }
}

/** HTTP status for a gRPC status (the gateway's view of a downstream failure). */
export function httpStatusOfGrpc(status: GrpcStatus): number {
  switch (status) {
    case GrpcStatus.OK:
      return 200;
    case GrpcStatus.INVALID_ARGUMENT:
    case GrpcStatus.OUT_OF_RANGE:
    case GrpcStatus.FAILED_PRECONDITION:
      return 400;
    case GrpcStatus.UNAUTHENTICATED:
      return 401;
    case GrpcStatus.PERMISSION_DENIED:
      return 403;
    case GrpcStatus.NOT_FOUND:
      return 404;
    case GrpcStatus.ALREADY_EXISTS:
    case GrpcStatus.ABORTED:
      return 409;
    case GrpcStatus.RESOURCE_EXHAUSTED:
      return 429;
    case GrpcStatus.CANCELLED:
      return 499;
    case GrpcStatus.UNIMPLEMENTED:
      return 501;
    case GrpcStatus.UNAVAILABLE:
      return 503;
    case GrpcStatus.DEADLINE_EXCEEDED:
      return 504;
    case GrpcStatus.UNKNOWN:
    case GrpcStatus.INTERNAL:
    case GrpcStatus.DATA_LOSS:
      return 500;
  }
}

/**
 * HTTP status for an AppError code. Mostly the gRPC mapping composed with the HTTP one;
 * the codes whose HTTP meaning is more precise than their gRPC status are listed first.
 */
export function httpStatusOf(code: AppErrorCode): number {
  switch (code) {
    case 'PAYLOAD_TOO_LARGE':
      return 413;
    case 'UPSTREAM_FAILED':
      return 502;
    case 'INVALID_ARGUMENT':
    case 'UNAUTHENTICATED':
    case 'PERMISSION_DENIED':
    case 'TENANT_SUSPENDED':
    case 'CROSS_TENANT':
    case 'NOT_FOUND':
    case 'ALREADY_EXISTS':
    case 'FAILED_PRECONDITION':
    case 'RATE_LIMITED':
    case 'DEPENDENCY_UNAVAILABLE':
    case 'DEADLINE_EXCEEDED':
    case 'INVALID_CONFIG':
    case 'INTERNAL':
      return httpStatusOfGrpc(grpcStatusOf(code));
  }
}

/** Message safe to show a caller: internal failures never leak their cause. */
export function publicMessageOf(error: AppError): string {
  return error.code === 'INTERNAL' || error.code === 'INVALID_CONFIG' ? 'Internal error' : error.message;
}
