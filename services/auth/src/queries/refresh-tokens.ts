import type { Prisma, PrismaClient } from '../generated/prisma/client.js';
import type { NewRefreshToken, RefreshTokenStore, SpentRefreshToken } from '../libraries/refresh-tokens.js';

/**
 * Refresh tokens are account-level identity data looked up by hash before any tenant is known
 * (no tenant_id scoping, no RLS), so queries use the client directly.
 */

/** Bounded: the callback touches Redis and signs a JWT while the spent row is locked. */
const SPEND_TRANSACTION = { timeout: 10_000, maxWait: 5_000 };

function insertToken(db: Prisma.TransactionClient | PrismaClient, token: NewRefreshToken, ttlSeconds: number) {
  // Expiry from the database clock, the same clock the spend condition compares against.
  return db.$executeRaw`
    INSERT INTO refresh_tokens (family_id, session_id, user_id, tenant_id, token_hash, expires_at)
    VALUES (${token.familyId}::uuid, ${token.sessionId}::uuid, ${token.userId}::uuid, ${token.tenantId}::uuid, ${token.tokenHash},
            now() + make_interval(secs => ${ttlSeconds}))`;
}

export function createRefreshTokenQueries(prisma: PrismaClient): RefreshTokenStore {
  return {
    async insert(token, ttlSeconds) {
      await insertToken(prisma, token, ttlSeconds);
    },
    async findByHash(tokenHash) {
      return (
        (await prisma.refreshToken.findUnique({
          where: { tokenHash },
          select: {
            familyId: true,
            sessionId: true,
            userId: true,
            tenantId: true,
            createdAt: true,
            expiresAt: true,
            usedAt: true,
            revokedAt: true,
          },
        })) ?? undefined
      );
    },
    spend(tokenHash, ttlSeconds, next) {
      return prisma.$transaction(async (tx) => {
        // One conditional update: of two concurrent spends, the second waits for this row
        // lock and then no longer matches.
        const [spent] = await tx.$queryRaw<SpentRefreshToken[]>`
          UPDATE refresh_tokens SET used_at = now()
           WHERE token_hash = ${tokenHash} AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
          RETURNING family_id::text AS "familyId", session_id::text AS "sessionId", user_id::text AS "userId", tenant_id::text AS "tenantId"`;
        if (!spent) return undefined;
        const { successor, result } = await next(spent);
        await insertToken(tx, successor, ttlSeconds);
        return result;
      }, SPEND_TRANSACTION);
    },
    async purgeExpired(retainSeconds, limit) {
      return prisma.$executeRaw`
        DELETE FROM refresh_tokens WHERE id IN (
          SELECT id FROM refresh_tokens WHERE expires_at < now() - make_interval(secs => ${retainSeconds}) LIMIT ${limit})`;
    },
    async revokeFamilies(userId, familyIds) {
      if (familyIds.length === 0) return 0;
      const { count } = await prisma.refreshToken.updateMany({
        where: { userId, familyId: { in: [...familyIds] }, revokedAt: null },
        data: { revokedAt: new Date() },
      });
      return count;
    },
  };
}
