import { AppError } from '@portcullis/kit';
import { Prisma } from '../generated/prisma/client.js';
import type { TenantRecord, TenantStatusName } from '../libraries/records.js';
import { isMemberRole, type MemberRole } from '../libraries/roles.js';

export type Tx = Prisma.TransactionClient;

/** Anything but a stored 'active' counts as suspended: an unexpected status never grants access. */
export function statusOf(value: string): TenantStatusName {
  return value === 'active' ? 'active' : 'suspended';
}

export function tenantRecordOf(row: { id: string; name: string; status: string; plan: string }): TenantRecord {
  return { id: row.id, name: row.name, status: statusOf(row.status), plan: row.plan };
}

export function memberRoleFromRow(value: string): MemberRole {
  if (!isMemberRole(value)) throw new AppError('INTERNAL', `unexpected stored role ${value}`);
  return value;
}

/** True when a write failed on a unique constraint (Prisma P2002). */
export function isUniqueViolation(error: unknown): boolean {
  return error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002';
}

/** True when a write failed on a foreign key (Prisma P2003). */
export function isForeignKeyViolation(error: unknown): boolean {
  return error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2003';
}
