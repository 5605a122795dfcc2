import { AppError } from '@portcullis/kit';
import { Role } from '@portcullis/proto/common';

/** A member's role inside one tenant, as stored. */
export type MemberRole = 'owner' | 'admin' | 'user';

/** The stored name of a role from the wire enum; UNSPECIFIED or an unknown value is INVALID_ARGUMENT. */
export function memberRoleOf(role: Role, field = 'role'): MemberRole {
  switch (role) {
    case Role.OWNER:
      return 'owner';
    case Role.ADMIN:
      return 'admin';
    case Role.USER:
      return 'user';
    case Role.UNSPECIFIED:
      break;
  }
  throw new AppError('INVALID_ARGUMENT', `${field} is required (owner, admin or user)`, { details: { field } });
}

export function roleOf(role: MemberRole): Role {
  switch (role) {
    case 'owner':
      return Role.OWNER;
    case 'admin':
      return Role.ADMIN;
    case 'user':
      return Role.USER;
  }
}

export function isMemberRole(value: string): value is MemberRole {
  return value === 'owner' || value === 'admin' || value === 'user';
}

/**
 * The part of the policy service this service needs: where a member's role is granted.
 * A membership is stored only after its role was assigned here.
 */
export interface PolicyRoles {
  assignRole(request: { tenantId: string; userId: string; role: Role }): Promise<unknown>;
  revokeRole(request: { tenantId: string; userId: string; role: Role }): Promise<unknown>;
}
