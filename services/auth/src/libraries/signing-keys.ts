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

/** What the key ring needs from the database. */
export interface SigningKeyStore {
  /** Non-retired keys, newest first. */
  listActive(): Promise<StoredSigningKey[]>;
  /**
   * Under a lock shared by every replica: when no key is active, builds one with `make` and
   * inserts it. Returns whether a key was inserted.
   */
  createIfNoneActive(make: () => Promise<StoredSigningKey>): Promise<boolean>;
}

export interface SigningKeysDeps {
  store: SigningKeyStore;
  encryption: KeyEncryption;
  /** How long the set of active keys is trusted before it is re-read (other replicas may rotate). */
  refreshMs: number;
  now?: () => number;
}

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
 * publishes the public halves of active keys and hands the newest one out for signing.
 */
export function createSigningKeys({ store, encryption, refreshMs, now = Date.now }: SigningKeysDeps) {
  let cache: { loadedAt: number; keys: StoredSigningKey[] } | undefined;
  let loading: Promise<StoredSigningKey[]> | undefined;
  const privateKeys = new Map<string, Promise<PrivateKey>>();

  const load = (): Promise<StoredSigningKey[]> => {
    loading ??= store
      .listActive()
      .then((keys) => {
        cache = { loadedAt: now(), keys };
        return keys;
      })
      .finally(() => {
        loading = undefined;
      });
    return loading;
  };

  const activeKeys = (): Promise<StoredSigningKey[]> =>
    cache !== undefined && now() - cache.loadedAt < refreshMs ? Promise.resolve(cache.keys) : load();

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
    /** Start-up: guarantees at least one active key exists and loads the active set. */
    async ensureActiveKey(): Promise<{ created: boolean; kid: string }> {
      const created = await store.createIfNoneActive(makeKey);
      const [newest] = await load();
      if (!newest) throw new AppError('INTERNAL', 'no active signing key after creating one');
      return { created, kid: newest.kid };
    },

    /** The JWKS document: public keys of every non-retired key. */
    async publicJwks(): Promise<{ keys: JWK[] }> {
      return { keys: (await activeKeys()).map(publishedJwk) };
    },

    /** The newest active key, decrypted once per key id. */
    async currentSigner(): Promise<Signer> {
      const [newest] = await activeKeys();
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
