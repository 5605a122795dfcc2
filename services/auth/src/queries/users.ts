import { Prisma, type PrismaClient } from '../generated/prisma/client.js';
import type { UserStore } from '../libraries/accounts.js';
import type { PhoneStore } from '../libraries/phone-verification.js';

/** Users are global identities (no tenant, no RLS), so queries use the client directly. */
export function createUserQueries(prisma: PrismaClient): UserStore & PhoneStore {
  return {
    async insert({ email, passwordHash, displayName, phone }) {
      try {
        return await prisma.user.create({ data: { email, passwordHash, displayName, phone }, select: { id: true } });
      } catch (error) {
        if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') return undefined;
        throw error;
      }
    },
    async findByEmail(email) {
      return (await prisma.user.findUnique({ where: { email }, select: { id: true, passwordHash: true } })) ?? undefined;
    },
    async findPhone(userId) {
      const row = await prisma.user.findUnique({ where: { id: userId }, select: { phone: true, phoneVerifiedAt: true } });
      return row ? { phone: row.phone, verified: row.phoneVerifiedAt !== null } : undefined;
    },
    async setUnverifiedPhone(userId, phone) {
      const { count } = await prisma.user.updateMany({ where: { id: userId, phoneVerifiedAt: null }, data: { phone } });
      return count === 1;
    },
    async markPhoneVerified(userId, phone) {
      const { count } = await prisma.user.updateMany({ where: { id: userId, phone }, data: { phoneVerifiedAt: new Date() } });
      return count === 1;
    },
  };
}
