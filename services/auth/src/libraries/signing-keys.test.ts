import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { createLocalJWKSet, decodeProtectedHeader, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { createAccessTokens } from './access-tokens.js';
import { createKeyEncryption } from './key-encryption.js';
import { createSigningKeys, type SigningKeyStore, type StoredSigningKey } from './signing-keys.js';

/** In-memory store; createIfNoneActive runs one caller at a time, like the advisory lock. */
function fakeStore() {
  const rows: (StoredSigningKey & { retired: boolean })[] = [];
  let lock = Promise.resolve();
  let lists = 0;
  const store: SigningKeyStore = {
    async listActive() {
      lists += 1;
      return rows
        .filter((row) => !row.retired)
        .reverse()
        .map(({ retired: _retired, ...key }) => key);
    },
    createIfNoneActive(make) {
      const run = lock.then(async () => {
        if (rows.some((row) => !row.retired)) return false;
        rows.push({ ...(await make()), retired: false });
        return true;
      });
      lock = run.then(() => undefined);
      return run;
    },
  };
  return { store, rows, lists: () => lists };
}

const encryption = createKeyEncryption(randomBytes(32));

describe('signing keys', () => {
  it('creates one ES256 key when none is active and reuses it afterwards', async () => {
    const { store, rows } = fakeStore();
    const first = createSigningKeys({ store, encryption, refreshMs: 60_000 });
    const second = createSigningKeys({ store, encryption, refreshMs: 60_000 });
    const [a, b] = await Promise.all([first.ensureActiveKey(), second.ensureActiveKey()]);
    expect(rows).toHaveLength(1);
    expect([a.created, b.created].sort()).toEqual([false, true]);
    expect(a.kid).toBe(b.kid);
    expect((await first.currentSigner()).kid).toBe((await second.currentSigner()).kid);
  });

  it('stores the private key only encrypted and publishes only public parameters', async () => {
    const { store, rows } = fakeStore();
    const keys = createSigningKeys({ store, encryption, refreshMs: 60_000 });
    await keys.ensureActiveKey();
    const row = rows[0]!;
    const privateJwk = JSON.parse(encryption.decrypt(row.privateKeyEncrypted, row.kid)) as { d: string };
    expect(typeof privateJwk.d).toBe('string');
    expect(row.privateKeyEncrypted).not.toContain(privateJwk.d);
    expect(row.publicJwk).not.toHaveProperty('d');
    const { keys: published } = await keys.publicJwks();
    expect(published).toEqual([
      { kty: 'EC', crv: 'P-256', x: expect.any(String), y: expect.any(String), kid: row.kid, alg: 'ES256', use: 'sig' },
    ]);
  });

  it('re-reads the active set only after refreshMs', async () => {
    const { store, lists } = fakeStore();
    let now = 0;
    const keys = createSigningKeys({ store, encryption, refreshMs: 1_000, now: () => now });
    await keys.ensureActiveKey();
    const before = lists();
    await keys.publicJwks();
    await keys.currentSigner();
    expect(lists()).toBe(before);
    now = 1_000;
    await keys.publicJwks();
    expect(lists()).toBe(before + 1);
  });

  it('refuses to sign when no key is active', async () => {
    const keys = createSigningKeys({ store: fakeStore().store, encryption, refreshMs: 60_000 });
    await expect(keys.currentSigner()).rejects.toMatchObject({ code: 'INTERNAL' });
  });
});

describe('access tokens', () => {
  it('signs ES256 tokens with kid and the documented claims, verifiable against the published keys', async () => {
    const keys = createSigningKeys({ store: fakeStore().store, encryption, refreshMs: 60_000 });
    const { kid } = await keys.ensureActiveKey();
    const now = 1_700_000_000_000;
    const tokens = createAccessTokens({ keys, issuer: 'iss-x', audience: 'aud-x', ttlSeconds: 900, now: () => now });
    const { token, jti, expiresInSeconds } = await tokens.issue({ userId: 'user-1', tenantId: 'tenant-1', role: 'admin' });
    expect(expiresInSeconds).toBe(900);
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES256', kid, typ: 'at+jwt' });

    const jwks = createLocalJWKSet(await keys.publicJwks());
    const { payload } = await jwtVerify(token, jwks, { issuer: 'iss-x', audience: 'aud-x', currentDate: new Date(now) });
    expect(payload).toEqual({
      iss: 'iss-x',
      aud: 'aud-x',
      sub: 'user-1',
      tenantId: 'tenant-1',
      role: 'admin',
      iat: now / 1000,
      exp: now / 1000 + 900,
      jti,
    });

    await expect(
      jwtVerify(token, jwks, { issuer: 'iss-x', audience: 'aud-x', currentDate: new Date(now + 901_000) }),
    ).rejects.toMatchObject({
      code: 'ERR_JWT_EXPIRED',
    });
    await expect(jwtVerify(token, jwks, { issuer: 'iss-x', audience: 'other', currentDate: new Date(now) })).rejects.toMatchObject({
      code: 'ERR_JWT_CLAIM_VALIDATION_FAILED',
    });
  });

  it('a token signed by another key under the same kid does not verify', async () => {
    const keys = createSigningKeys({ store: fakeStore().store, encryption, refreshMs: 60_000 });
    const { kid } = await keys.ensureActiveKey();
    const intruder = await generateKeyPair('ES256');
    const forged = await new SignJWT({ tenantId: 't', role: 'owner' })
      .setProtectedHeader({ alg: 'ES256', kid, typ: 'at+jwt' })
      .setIssuer('iss-x')
      .setAudience('aud-x')
      .setSubject('user-1')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(intruder.privateKey);
    await expect(
      jwtVerify(forged, createLocalJWKSet(await keys.publicJwks()), { issuer: 'iss-x', audience: 'aud-x' }),
    ).rejects.toMatchObject({
      code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    });
  });
});
