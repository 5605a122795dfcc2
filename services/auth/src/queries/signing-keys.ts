import type { JWK } from 'jose';
import type { Prisma, PrismaClient } from '../generated/prisma/client.js';
import type { SigningKeyStore, StoredSigningKey } from '../libraries/signing-keys.js';

/** Serialises first-key creation and rotation across every replica sharing the database. */
const KEY_LOCK = 'portcullis-auth:signing-keys';

/** Long enough for an ES256 key generation behind a busy lock. */
const TRANSACTION_OPTIONS = { timeout: 15_000, maxWait: 15_000 };

async function lockKeys(tx: Prisma.TransactionClient): Promise<void> {
  // Transaction-scoped advisory lock: a second replica waits here, then sees the first one's work.
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${KEY_LOCK}))`;
}

function insertKey(tx: Prisma.TransactionClient, key: StoredSigningKey, activatesAt: Date) {
  return tx.signingKey.create({
    data: { kid: key.kid, alg: key.alg, publicJwk: key.publicJwk, privateKeyEncrypted: key.privateKeyEncrypted, activatesAt },
  });
}

export function createSigningKeyQueries(prisma: PrismaClient): SigningKeyStore {
  return {
    async listPublished(at) {
      const rows = await prisma.signingKey.findMany({
        where: { OR: [{ retiredAt: null }, { retiredAt: { gt: at } }] },
        orderBy: [{ activatesAt: 'desc' }, { kid: 'asc' }],
        select: { kid: true, alg: true, publicJwk: true, privateKeyEncrypted: true, activatesAt: true, retiredAt: true },
      });
      return rows.map((row) => ({ ...row, publicJwk: row.publicJwk as JWK }));
    },
    createIfNoneActive(make, activatesAt) {
      return prisma.$transaction(async (tx) => {
        await lockKeys(tx);
        if ((await tx.signingKey.count({ where: { retiredAt: null } })) > 0) return false;
        await insertKey(tx, await make(), activatesAt);
        return true;
      }, TRANSACTION_OPTIONS);
    },
    rotate(make, { activatesAt, retiredAt }) {
      return prisma.$transaction(async (tx) => {
        await lockKeys(tx);
        await tx.signingKey.updateMany({ where: { retiredAt: null }, data: { retiredAt } });
        const key = await make();
        await insertKey(tx, key, activatesAt);
        return key;
      }, TRANSACTION_OPTIONS);
    },
  };
}
