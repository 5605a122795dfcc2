import { PrincipalKind, type Principal } from '@portcullis/proto/common';
import { AppError } from '@portcullis/kit';

/** Casbin subject for a verified principal, e.g. `user:<id>`; each principal type is its own namespace. */
export function subjectOf(principal: Principal): string {
  if (principal.id.length === 0) throw new AppError('INVALID_ARGUMENT', 'principal.id is required');
  switch (principal.kind) {
    case PrincipalKind.USER:
      return `user:${principal.id}`;
    case PrincipalKind.API_KEY:
      return `apikey:${principal.id}`;
    case PrincipalKind.ROBOT:
      return `robot:${principal.id}`;
    case PrincipalKind.DEVICE:
      return `device:${principal.id}`;
    case PrincipalKind.SERVICE:
      return `service:${principal.id}`;
    case PrincipalKind.UNSPECIFIED:
      throw new AppError('INVALID_ARGUMENT', 'principal.kind is required');
  }
}
