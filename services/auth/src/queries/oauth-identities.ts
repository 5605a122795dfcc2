import { Prisma, type PrismaClient } from '../generated/prisma/client.js';
import type { OAuthAccountStore, OAuthAccountTx } from '../libraries/oauth-sign-in.js';

/** Two first sign-ins racing for one identity or email: the loser retries once and finds the winner's rows. */
const ATTEMPTS = 2;

const isUniqueViolation = (error: unknown) => error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002';

function txQueries(tx: Prisma.TransactionClient): OAuthAccountTx {
  return {
    async findIdentity(provider, subject) {
      const row = await tx.oauthIdentity.findUnique({ where: { provider_subject: { provider, subject } }, select: { userId: true } });
      return row?.userId;
    },
    async lockUserByEmail(email) {
      // FOR UPDATE: a concurrent link of the same account waits, then sees this one's result.
      const rows = await tx.$queryRaw<{ id: string; email_verified_at: Date | null }[]>`
        SELECT id::text AS id, email_verified_at FROM users WHERE email = ${email} FOR UPDATE`;
      const row = rows[0];
      return row ? { id: row.id, emailVerified: row.email_verified_at !== null } : undefined;
    },
    async createUser({ email, displayName }) {
      const user = await tx.user.create({ data: { email, displayName, emailVerifiedAt: new Date() }, select: { id: true } });
      return user.id;
    },
    async reclaimUser(userId) {
      await tx.user.update({ where: { id: userId }, data: { emailVerifiedAt: new Date(), passwordHash: null } });
    },
    async insertIdentity({ provider, subject, userId, email }) {
      await tx.oauthIdentity.create({ data: { provider, subject, userId, email } });
    },
  };
}

/** Users and oauth_identities are global identity tables (no tenant, no RLS): the client is used directly. */
export function createOAuthAccountQueries(prisma: PrismaClient): OAuthAccountStore {
  return {
    async transaction(work) {
      for (let attempt = 1; ; attempt += 1) {
        try {
          return await prisma.$transaction((tx) => work(txQueries(tx)));
        } catch (error) {
          if (attempt >= ATTEMPTS || !isUniqueViolation(error)) throw error;
        }
      }
    },
  };
}
