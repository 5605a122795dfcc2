import { Prisma, type PrismaClient } from '../generated/prisma/client.js';
import type { OAuthAccountStore, OAuthAccountTx, RevokedCredentials } from '../libraries/oauth-sign-in.js';

/** Two first sign-ins racing for one identity or email: the loser retries once and finds the winner's rows. */
const ATTEMPTS = 2;

const isUniqueViolation = (error: unknown) => error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002';

/**
 * Revokes every API key and robot of the user in every tenant. api_keys and robots are
 * tenant-owned (row-level security) and a reclaim knows no tenant, so this goes through the
 * SECURITY DEFINER function revoke_credentials_of_user (migration 20261231000000_reclaim_revocation),
 * which only revokes and answers kind, id and tenant of each revoked row.
 */
async function revokeCredentialsOf(client: Pick<Prisma.TransactionClient, '$queryRaw'>, userId: string): Promise<RevokedCredentials> {
  const rows = await client.$queryRaw<{ kind: string; id: string; tenant_id: string }[]>`
    SELECT kind, id, tenant_id::text AS tenant_id FROM revoke_credentials_of_user(${userId}::uuid)`;
  const revoked: RevokedCredentials = { apiKeys: [], robots: [] };
  for (const row of rows) (row.kind === 'robot' ? revoked.robots : revoked.apiKeys).push({ id: row.id, tenantId: row.tenant_id });
  return revoked;
}

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
      // The phone goes too, verified or not: it is whoever registered first's number, and a
      // verified number could never be replaced by the owner's (users_phone_verified_needs_phone allows both NULL).
      await tx.user.update({
        where: { id: userId },
        data: { emailVerifiedAt: new Date(), passwordHash: null, phone: null, phoneVerifiedAt: null },
      });
      return revokeCredentialsOf(tx, userId);
    },
    async insertIdentity({ provider, subject, userId, email }) {
      await tx.oauthIdentity.create({ data: { provider, subject, userId, email } });
    },
  };
}

/**
 * Users and oauth_identities are global identity tables (no tenant, no RLS): the client is used
 * directly. A reclaim's revocation of tenant-owned API keys and robots goes through
 * revoke_credentials_of_user (see revokeCredentialsOf).
 */
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
    revokeCredentials(userId) {
      // One statement: its own transaction.
      return revokeCredentialsOf(prisma, userId);
    },
  };
}
