import { AppError, isRoleName, roleNameOf, roleOf, type RoleName } from '@portcullis/kit';
import type { Role } from '@portcullis/proto/common';

/** A member's role inside one tenant, as stored. */
export type MemberRole = RoleName;

export { roleOf, isRoleName as isMemberRole };

/** The stored name of a role from the wire enum; UNSPECIFIED or an unknown value is INVALID_ARGUMENT. */
export function memberRoleOf(role: Role, field = 'role'): MemberRole {
  const name = roleNameOf(role);
  if (name === undefined) throw new AppError('INVALID_ARGUMENT', `${field} is required (owner, admin or user)`, { details: { field } });
  return name;
}

/**
 * The part of the policy service this service needs: where a member's role is granted.
 * A membership is stored only after its role was assigned here.
 */
export interface PolicyRoles {
  assignRole(request: { tenantId: string; userId: string; role: Role }): Promise<unknown>;
  revokeRole(request: { tenantId: string; userId: string; role: Role }): Promise<unknown>;
}
