import { Prisma, type PrismaClient } from '../generated/prisma/client.js';
import type { UserStore } from '../libraries/accounts.js';

/** Users are global identities (no tenant, no RLS), so queries use the client directly. */
export function createUserQueries(prisma: PrismaClient): UserStore {
  return {
    async insert({ email, passwordHash, displayName }) {
      try {
        return await prisma.user.create({ data: { email, passwordHash, displayName }, select: { id: true } });
      } catch (error) {
        if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') return undefined;
        throw error;
      }
    },
    async findByEmail(email) {
      return (await prisma.user.findUnique({ where: { email }, select: { id: true, passwordHash: true } })) ?? undefined;
    },
  };
}
