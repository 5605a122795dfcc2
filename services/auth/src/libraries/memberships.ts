import { AppError, isUuid, requireUuid, roleNameOf, type GrpcClient, type RoleName } from '@portcullis/kit';
import { PrincipalKind, type Principal } from '@portcullis/proto/common';
import type { TenantRegistryService } from '@portcullis/proto/tenant';

/** The two tenant-registry calls auth makes. */
export type TenantDirectory = Pick<GrpcClient<typeof TenantRegistryService>, 'listUserTenants' | 'getMembership'>;

export const notAMember = () => new AppError('PERMISSION_DENIED', 'not a member of this tenant');

/**
 * The user's current role in the tenant, or undefined when tenant-registry answers NOT_FOUND,
 * a membership without a known role, or a membership for another user or tenant. Every other
 * tenant-registry error (suspended tenant, outage) is thrown as it is.
 */
export async function currentRole(
  tenants: Pick<TenantDirectory, 'getMembership'>,
  tenantId: string,
  userId: string,
): Promise<RoleName | undefined> {
  const membership = await tenants.getMembership({ tenantId, userId }).then(
    (response) => response.membership,
    (error: unknown) => {
      if (error instanceof AppError && error.code === 'NOT_FOUND') return undefined;
      throw error;
    },
  );
  if (!membership || membership.tenantId !== tenantId || membership.userId !== userId) return undefined;
  return roleNameOf(membership.role);
}

/**
 * The signed-in person acting on `what` (API keys, robots) in the tenant, with their current
 * role read from tenant-registry (never taken from the caller): a USER principal of that tenant
 * that is still a member, else PERMISSION_DENIED / CROSS_TENANT.
 */
export async function signedInActor(
  tenants: Pick<TenantDirectory, 'getMembership'>,
  tenantIdInput: string,
  actor: Principal | undefined,
  what: string,
): Promise<{ tenantId: string; userId: string; role: RoleName }> {
  const tenantId = requireUuid(tenantIdInput, 'tenant_id');
  if (actor?.kind !== PrincipalKind.USER || !isUuid(actor.id)) {
    throw new AppError('PERMISSION_DENIED', `${what} are managed by signed-in people`);
  }
  if (actor.tenantId.toLowerCase() !== tenantId) throw new AppError('CROSS_TENANT', 'the actor belongs to another tenant');
  const userId = actor.id.toLowerCase();
  const role = await currentRole(tenants, tenantId, userId);
  if (role === undefined) throw notAMember();
  return { tenantId, userId, role };
}
