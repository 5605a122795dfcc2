import { describe, expect, it } from '@jest/globals';
import { status } from '@grpc/grpc-js';
import { AppError, appErrorCodes, codeOfGrpcStatus, grpcStatusOf, httpStatusOf, publicMessageOf, toAppError } from './errors.js';

describe('errors', () => {
  it('maps every code to a gRPC status and an HTTP status', () => {
    for (const code of appErrorCodes) {
      expect(Object.values(status)).toContain(grpcStatusOf(code));
      expect(httpStatusOf(code)).toBeGreaterThanOrEqual(400);
    }
  });

  it('answers security-relevant codes with the documented HTTP statuses', () => {
    expect(httpStatusOf('UNAUTHENTICATED')).toBe(401);
    expect(httpStatusOf('PERMISSION_DENIED')).toBe(403);
    expect(httpStatusOf('CROSS_TENANT')).toBe(403);
    expect(httpStatusOf('TENANT_SUSPENDED')).toBe(403);
    expect(httpStatusOf('DEPENDENCY_UNAVAILABLE')).toBe(503);
    expect(httpStatusOf('PAYLOAD_TOO_LARGE')).toBe(413);
    expect(httpStatusOf('INTERNAL')).toBe(500);
  });

  it('round-trips each code through its gRPC status to a code with the same status', () => {
    for (const code of appErrorCodes) {
      expect(grpcStatusOf(codeOfGrpcStatus(grpcStatusOf(code)))).toBe(grpcStatusOf(code));
    }
  });

  it('wraps unknown throws as INTERNAL and hides their message', () => {
    const error = toAppError(new Error('password=hunter2 leaked'));
    expect(error.code).toBe('INTERNAL');
    expect(publicMessageOf(error)).toBe('Internal error');
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('keeps AppErrors as they are', () => {
    const original = new AppError('NOT_FOUND', 'tool not found');
    expect(toAppError(original)).toBe(original);
    expect(publicMessageOf(original)).toBe('tool not found');
  });
});
