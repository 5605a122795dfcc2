import { AppError, isRoleName, roleNameOf, roleOf, type RoleName } from '@portcullis/kit';
import type { Principal, Role } from '@portcullis/proto/common';

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
 * A role change in the policy service. `actor` is the verified person making it: the policy
 * service decides by their stored roles (owners grant anything, admins only the user role).
 * Only a tenant's very first owner is assigned without one.
 */
export interface RoleGrant {
  tenantId: string;
  userId: string;
  role: Role;
  actor?: Principal;
}

/**
 * The part of the policy service this service needs: where a member's role is granted.
 * A membership is stored only after its role was assigned here.
 */
export interface PolicyRoles {
  assignRole(request: RoleGrant): Promise<unknown>;
  revokeRole(request: RoleGrant): Promise<unknown>;
}

/** Where a tenant's plan is enforced; INVALID_ARGUMENT for a plan it does not know. */
export interface PolicyPlans {
  setTenantPlan(request: { tenantId: string; plan: string }): Promise<unknown>;
}
