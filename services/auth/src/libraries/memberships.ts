import { timestampDate } from '@bufbuild/protobuf/wkt';
import { AppError, isUuid, requireUuid, roleNameOf, type GrpcClient, type Logger, type RoleName } from '@portcullis/kit';
import { PrincipalKind, type Principal } from '@portcullis/proto/common';
import type { TenantRegistryService } from '@portcullis/proto/tenant';

/** The two tenant-registry calls auth makes. */
export type TenantDirectory = Pick<GrpcClient<typeof TenantRegistryService>, 'listUserTenants' | 'getMembership'>;

export const notAMember = () => new AppError('PERMISSION_DENIED', 'not a member of this tenant');

/**
 * The membership tenant-registry holds for exactly this user and tenant, or undefined when it
 * answers NOT_FOUND or with a membership for another user or tenant. Every other
 * tenant-registry error (suspended tenant, outage) is thrown as it is.
 */
async function membershipOf(tenants: Pick<TenantDirectory, 'getMembership'>, tenantId: string, userId: string) {
  const membership = await tenants.getMembership({ tenantId, userId }).then(
    (response) => response.membership,
    (error: unknown) => {
      if (error instanceof AppError && error.code === 'NOT_FOUND') return undefined;
      throw error;
    },
  );
  if (!membership || membership.tenantId !== tenantId || membership.userId !== userId) return undefined;
  return membership;
}

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
  const membership = await membershipOf(tenants, tenantId, userId);
  return membership ? roleNameOf(membership.role) : undefined;
}

/**
 * How far apart the clocks behind a credential's created_at (auth's) and a membership's
 * member_since (tenant-registry's database) may be. A credential made up to this long before the
 * membership began still counts as made within it: refusing it would kill, for good, a
 * credential made right after someone was added again on a server whose clock is a little
 * behind. Letting it through only matters if a person is removed and added again within this
 * bound of making the credential, which is no attack. It also covers member_since arriving in
 * microseconds and being rounded to milliseconds.
 */
export const MEMBERSHIP_CLOCK_TOLERANCE_MS = 1_000;

export interface CurrentMembership {
  role: RoleName;
  /** When the current membership began; a person removed and added again has a new one. */
  since: Date;
}

/**
 * The user's current membership in the tenant, with when it began — undefined exactly when
 * currentRole is. A membership answer without member_since (a tenant-registry that does not
 * fill it yet) cannot tell a credential of this membership from one of an earlier membership,
 * so it is never taken as a pass: DEPENDENCY_UNAVAILABLE, logged for operators.
 */
export async function membershipSince(
  tenants: Pick<TenantDirectory, 'getMembership'>,
  tenantId: string,
  userId: string,
  logger: Pick<Logger, 'warn'>,
): Promise<CurrentMembership | undefined> {
  const membership = await membershipOf(tenants, tenantId, userId);
  const role = membership ? roleNameOf(membership.role) : undefined;
  if (!membership || role === undefined) return undefined;
  const since = membership.memberSince ? timestampDate(membership.memberSince) : undefined;
  if (since === undefined || !Number.isFinite(since.getTime())) {
    logger.warn({ tenantId, userId }, 'tenant-registry answered a membership without member_since; credential refused');
    throw new AppError('DEPENDENCY_UNAVAILABLE', 'membership cannot be checked now; request denied', {
      details: { target: 'tenant-registry', missing: 'member_since' },
    });
  }
  return { role, since };
}

/**
 * Whether a credential made at `createdAt` belongs to the membership that began at `since`
 * (within MEMBERSHIP_CLOCK_TOLERANCE_MS). A credential made before it — in an earlier membership
 * the person was removed from — stays dead when the person is added again.
 */
export const madeInMembership = (createdAt: Date, membership: CurrentMembership): boolean =>
  createdAt.getTime() >= membership.since.getTime() - MEMBERSHIP_CLOCK_TOLERANCE_MS;

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
