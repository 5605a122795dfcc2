import { AppError } from '@portcullis/kit';
import type { MembershipStore } from './memberships.js';

/** Where an actor's stored role is read. */
export type RoleLookup = Pick<MembershipStore, 'find'>;

/**
 * PERMISSION_DENIED unless the actor is, by their stored role (not one they claim), an owner
 * or admin of the tenant. Both ids must already be validated.
 */
export async function requireOwnerOrAdmin(members: RoleLookup, tenantId: string, actorUserId: string, what: string): Promise<void> {
  const role = (await members.find(tenantId, actorUserId))?.role;
  if (role !== 'owner' && role !== 'admin') throw new AppError('PERMISSION_DENIED', `only owners and admins may ${what}`);
}
