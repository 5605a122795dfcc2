import type { webcrypto } from 'node:crypto';
import { AppError } from '@portcullis/kit';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import type { KeyEncryption } from './key-encryption.js';

export const SIGNING_ALG = 'ES256';

/** A signing key as stored: public half in clear, private half encrypted. */
export interface StoredSigningKey {
  kid: string;
  alg: string;
  publicJwk: JWK;
  privateKeyEncrypted: string;
}

/** A stored key with its schedule: signs from `activatesAt`, published until `retiredAt`. */
export interface ScheduledSigningKey extends StoredSigningKey {
  activatesAt: Date;
  /** Null while no retirement is scheduled. */
  retiredAt: Date | null;
}

/** What the key ring needs from the database. */
export interface SigningKeyStore {
  /** Keys still published at `at` (retired_at null or later than `at`), latest activation first. */
  listPublished(at: Date): Promise<ScheduledSigningKey[]>;
  /**
   * Under a lock shared by every replica: when no key is without a retirement time, builds
   * one with `make` and inserts it, active from `activatesAt`. Returns whether a key was
   * inserted.
   */
  createIfNoneActive(make: () => Promise<StoredSigningKey>, activatesAt: Date): Promise<boolean>;
  /**
   * Under the same lock: gives every key without a retirement time `retiredAt`, then inserts
   * the key `make` builds, active from `activatesAt`.
   */
  rotate(make: () => Promise<StoredSigningKey>, schedule: { activatesAt: Date; retiredAt: Date }): Promise<StoredSigningKey>;
}

export interface SigningKeysDeps {
  store: SigningKeyStore;
  encryption: KeyEncryption;
  /** How long the set of published keys is trusted before it is re-read (other replicas may rotate). */
  refreshMs: number;
  /** SIGNING_KEY_PROPAGATION_SECONDS: how long a new key is published before it signs. */
  propagationSeconds: number;
  /** ACCESS_TOKEN_TTL_SECONDS: how long a replaced key must stay published after it last signed. */
  accessTokenTtlSeconds: number;
  now?: () => number;
}

/** Added to a replaced key's publication for clock skew and replicas still signing with it from a stale cache. */
export const RETIREMENT_MARGIN_SECONDS = 60;

export type PrivateKey = webcrypto.CryptoKey;

export interface Signer {
  kid: string;
  privateKey: PrivateKey;
}

/** Only the public parameters of an EC key, whatever else the JWK carries. */
function ecPublicParameters(jwk: JWK): JWK {
  const { kty, crv, x, y } = jwk;
  if (kty !== 'EC' || crv === undefined || x === undefined || y === undefined) {
    throw new AppError('INTERNAL', 'signing key is not an EC public key');
  }
  return { kty, crv, x, y };
}

/** Public JWK as published: only the public parameters, plus kid/alg/use. */
function publishedJwk(key: StoredSigningKey): JWK {
  return { ...ecPublicParameters(key.publicJwk), kid: key.kid, alg: key.alg, use: 'sig' };
}

/**
 * The ES256 key ring: creates the first key when none exists (one key for all replicas),
 * rotates with overlap, publishes the public halves of every key that is not retired yet
 * (including one waiting to sign) and hands the newest activated key out for signing.
 */
export function createSigningKeys({
  store,
  encryption,
  refreshMs,
  propagationSeconds,
  accessTokenTtlSeconds,
  now = Date.now,
}: SigningKeysDeps) {
  let cache: { loadedAt: number; keys: ScheduledSigningKey[] } | undefined;
  let loading: Promise<ScheduledSigningKey[]> | undefined;
  const privateKeys = new Map<string, Promise<PrivateKey>>();

  const load = (): Promise<ScheduledSigningKey[]> => {
    loading ??= store
      .listPublished(new Date(now()))
      .then((keys) => {
        cache = { loadedAt: now(), keys };
        return keys;
      })
      .finally(() => {
        loading = undefined;
      });
    return loading;
  };

  /** Keys published now: the cached set minus those whose retirement has passed since. */
  const publishedKeys = async (): Promise<ScheduledSigningKey[]> => {
    const keys = cache !== undefined && now() - cache.loadedAt < refreshMs ? cache.keys : await load();
    const at = now();
    return keys.filter((key) => key.retiredAt === null || key.retiredAt.getTime() > at);
  };

  /** The key that signs now: the latest activation that has happened (the store lists latest first). */
  const signingKey = async (): Promise<ScheduledSigningKey | undefined> => {
    const keys = await publishedKeys();
    const at = now();
    return keys.find((key) => key.activatesAt.getTime() <= at);
  };

  const makeKey = async (): Promise<StoredSigningKey> => {
    const { publicKey, privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
    const publicJwk = ecPublicParameters(await exportJWK(publicKey));
    const kid = await calculateJwkThumbprint(publicJwk);
    const privateJwk = await exportJWK(privateKey);
    return { kid, alg: SIGNING_ALG, publicJwk, privateKeyEncrypted: encryption.encrypt(JSON.stringify(privateJwk), kid) };
  };

  const importPrivateKey = async (key: StoredSigningKey): Promise<PrivateKey> => {
    const jwk = JSON.parse(encryption.decrypt(key.privateKeyEncrypted, key.kid)) as JWK;
    const imported = await importJWK(jwk, key.alg);
    if (imported instanceof Uint8Array) throw new AppError('INTERNAL', `signing key ${key.kid} is not an asymmetric key`);
    return imported;
  };

  return {
    /** Start-up: guarantees a key without a retirement time exists and loads the published set. */
    async ensureActiveKey(): Promise<{ created: boolean; kid: string }> {
      const created = await store.createIfNoneActive(makeKey, new Date(now()));
      await load();
      const current = await signingKey();
      if (!current) throw new AppError('INTERNAL', 'no active signing key after creating one');
      return { created, kid: current.kid };
    },

    /**
     * Adds a key that is published at once and signs from now + propagationSeconds; every
     * key it replaces stays published until the tokens it may still sign have expired.
     */
    async rotate(): Promise<{ kid: string; signingFrom: Date }> {
      const activatesAt = new Date(now() + propagationSeconds * 1000);
      const retiredAt = new Date(activatesAt.getTime() + (accessTokenTtlSeconds + RETIREMENT_MARGIN_SECONDS) * 1000);
      const key = await store.rotate(makeKey, { activatesAt, retiredAt });
      // This replica publishes the new key at once (not through a load that may have started
      // before the rotation); the others within refreshMs.
      cache = { loadedAt: now(), keys: await store.listPublished(new Date(now())) };
      return { kid: key.kid, signingFrom: activatesAt };
    },

    /** The JWKS document: public keys of every key not retired yet, including one waiting to sign. */
    async publicJwks(): Promise<{ keys: JWK[] }> {
      return { keys: (await publishedKeys()).map(publishedJwk) };
    },

    /** The newest activated key, decrypted once per key id. */
    async currentSigner(): Promise<Signer> {
      const newest = await signingKey();
      if (!newest) throw new AppError('INTERNAL', 'no active signing key');
      if (newest.alg !== SIGNING_ALG) throw new AppError('INTERNAL', `signing key ${newest.kid} has unsupported alg ${newest.alg}`);
      let privateKey = privateKeys.get(newest.kid);
      if (!privateKey) {
        privateKey = importPrivateKey(newest);
        privateKeys.set(newest.kid, privateKey);
        privateKey.catch(() => privateKeys.delete(newest.kid));
      }
      return { kid: newest.kid, privateKey: await privateKey };
    },
  };
}

export type SigningKeys = ReturnType<typeof createSigningKeys>;
