import { AppError, roleNameOf, type GrpcClient, type RoleName } from '@portcullis/kit';
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
