import type { JWK } from 'jose';
import type { PrismaClient } from '../generated/prisma/client.js';
import type { SigningKeyStore } from '../libraries/signing-keys.js';

/** Serialises first-key creation across every replica sharing the database. */
const CREATE_LOCK = 'portcullis-auth:signing-keys';

export function createSigningKeyQueries(prisma: PrismaClient): SigningKeyStore {
  return {
    async listActive() {
      const rows = await prisma.signingKey.findMany({
        where: { retiredAt: null },
        orderBy: [{ createdAt: 'desc' }, { kid: 'asc' }],
        select: { kid: true, alg: true, publicJwk: true, privateKeyEncrypted: true },
      });
      return rows.map((row) => ({ ...row, publicJwk: row.publicJwk as JWK }));
    },
    createIfNoneActive(make) {
      return prisma.$transaction(
        async (tx) => {
          // Transaction-scoped advisory lock: a second replica waits here, then sees the key.
          await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${CREATE_LOCK}))`;
          if ((await tx.signingKey.count({ where: { retiredAt: null } })) > 0) return false;
          const key = await make();
          await tx.signingKey.create({
            data: { kid: key.kid, alg: key.alg, publicJwk: key.publicJwk, privateKeyEncrypted: key.privateKeyEncrypted },
          });
          return true;
        },
        { timeout: 15_000, maxWait: 15_000 },
      );
    },
  };
}
