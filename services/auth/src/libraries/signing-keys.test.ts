import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { createLocalJWKSet, decodeProtectedHeader, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { createAccessTokens } from './access-tokens.js';
import { createKeyEncryption } from './key-encryption.js';
import { createSigningKeys, type ScheduledSigningKey, type SigningKeyStore } from './signing-keys.js';

type Row = ScheduledSigningKey;

/** In-memory store; createIfNoneActive and rotate run one caller at a time, like the advisory lock. */
function fakeStore() {
  const rows: Row[] = [];
  let lock = Promise.resolve();
  let lists = 0;
  const serialised = <T>(work: () => Promise<T>): Promise<T> => {
    const run = lock.then(work);
    lock = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  };
  const store: SigningKeyStore = {
    async listPublished(at) {
      lists += 1;
      return rows
        .filter((row) => row.retiredAt === null || row.retiredAt > at)
        .sort((a, b) => b.activatesAt.getTime() - a.activatesAt.getTime() || a.kid.localeCompare(b.kid))
        .map((row) => ({ ...row }));
    },
    createIfNoneActive(make, activatesAt) {
      return serialised(async () => {
        if (rows.some((row) => row.retiredAt === null)) return false;
        rows.push({ ...(await make()), activatesAt, retiredAt: null });
        return true;
      });
    },
    rotate(make, { activatesAt, retiredAt }) {
      return serialised(async () => {
        for (const row of rows) if (row.retiredAt === null) row.retiredAt = retiredAt;
        const key = await make();
        rows.push({ ...key, activatesAt, retiredAt: null });
        return key;
      });
    },
  };
  return { store, rows, lists: () => lists };
}

const schedule = { propagationSeconds: 60, accessTokenTtlSeconds: 900 };

const encryption = createKeyEncryption(randomBytes(32));

describe('signing keys', () => {
  it('creates one ES256 key when none is active and reuses it afterwards', async () => {
    const { store, rows } = fakeStore();
    const first = createSigningKeys({ store, encryption, refreshMs: 60_000, ...schedule });
    const second = createSigningKeys({ store, encryption, refreshMs: 60_000, ...schedule });
    const [a, b] = await Promise.all([first.ensureActiveKey(), second.ensureActiveKey()]);
    expect(rows).toHaveLength(1);
    expect([a.created, b.created].sort()).toEqual([false, true]);
    expect(a.kid).toBe(b.kid);
    expect((await first.currentSigner()).kid).toBe((await second.currentSigner()).kid);
  });

  it('stores the private key only encrypted and publishes only public parameters', async () => {
    const { store, rows } = fakeStore();
    const keys = createSigningKeys({ store, encryption, refreshMs: 60_000, ...schedule });
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
    const keys = createSigningKeys({ store, encryption, refreshMs: 1_000, ...schedule, now: () => now });
    await keys.ensureActiveKey();
    const before = lists();
    await keys.publicJwks();
    await keys.currentSigner();
    expect(lists()).toBe(before);
    now = 1_000;
    await keys.publicJwks();
    expect(lists()).toBe(before + 1);
  });

  it('rotates with overlap: published at once, signing after the propagation delay, retired after the last token expired', async () => {
    const { store, rows } = fakeStore();
    let now = 1_700_000_000_000;
    const keys = createSigningKeys({ store, encryption, refreshMs: 60_000, ...schedule, now: () => now });
    const { kid: oldKid } = await keys.ensureActiveKey();
    const kids = async () => (await keys.publicJwks()).keys.map((key) => key.kid);

    const { kid: newKid, signingFrom } = await keys.rotate();
    expect(newKid).not.toBe(oldKid);
    expect(signingFrom).toEqual(new Date(now + 60_000));
    expect(rows.find((row) => row.kid === oldKid)?.retiredAt).toEqual(new Date(now + (60 + 900 + 60) * 1000));

    // Before activation: the old key still signs, both are published.
    expect((await keys.currentSigner()).kid).toBe(oldKid);
    expect(await kids()).toEqual([newKid, oldKid]);

    now += 59_999;
    expect((await keys.currentSigner()).kid).toBe(oldKid);
    now += 1;
    // From activation on the new key signs; the old one stays published for its tokens.
    expect((await keys.currentSigner()).kid).toBe(newKid);
    expect(await kids()).toEqual([newKid, oldKid]);

    // A token signed by the old key just before the switch still verifies until it expires.
    now += (900 + 60) * 1000 - 1;
    expect(await kids()).toEqual([newKid, oldKid]);
    now += 1;
    expect(await kids()).toEqual([newKid]);
    expect((await keys.currentSigner()).kid).toBe(newKid);
  });

  it('another replica sees a rotation within refreshMs and switches at the same activation time', async () => {
    const { store } = fakeStore();
    let now = 1_700_000_000_000;
    const first = createSigningKeys({ store, encryption, refreshMs: 10_000, ...schedule, now: () => now });
    const second = createSigningKeys({ store, encryption, refreshMs: 10_000, ...schedule, now: () => now });
    const { kid: oldKid } = await first.ensureActiveKey();
    await second.ensureActiveKey();
    const { kid: newKid } = await first.rotate();
    expect((await second.publicJwks()).keys.map((key) => key.kid)).toEqual([oldKid]);
    now += 10_000;
    expect((await second.publicJwks()).keys.map((key) => key.kid)).toEqual([newKid, oldKid]);
    expect((await second.currentSigner()).kid).toBe(oldKid);
    now += 50_000;
    expect((await second.currentSigner()).kid).toBe(newKid);
  });

  it('a second rotation before the first activates schedules the pending key for retirement too', async () => {
    const { store, rows } = fakeStore();
    let now = 1_700_000_000_000;
    const keys = createSigningKeys({ store, encryption, refreshMs: 60_000, ...schedule, now: () => now });
    const { kid: a } = await keys.ensureActiveKey();
    const { kid: b } = await keys.rotate();
    now += 30_000;
    const { kid: c, signingFrom } = await keys.rotate();
    expect(rows.map((row) => [row.kid, row.retiredAt?.getTime() ?? null])).toEqual([
      [a, 1_700_000_000_000 + 1_020_000],
      [b, signingFrom.getTime() + 960_000],
      [c, null],
    ]);
    now += 30_000;
    expect((await keys.currentSigner()).kid).toBe(b);
    now += 30_000;
    expect((await keys.currentSigner()).kid).toBe(c);
  });

  it('refuses to sign when no key is active', async () => {
    const keys = createSigningKeys({ store: fakeStore().store, encryption, refreshMs: 60_000, ...schedule });
    await expect(keys.currentSigner()).rejects.toMatchObject({ code: 'INTERNAL' });
  });
});

describe('access tokens', () => {
  it('signs ES256 tokens with kid and the documented claims, verifiable against the published keys', async () => {
    const keys = createSigningKeys({ store: fakeStore().store, encryption, refreshMs: 60_000, ...schedule });
    const { kid } = await keys.ensureActiveKey();
    const now = 1_700_000_000_000;
    const tokens = createAccessTokens({ keys, issuer: 'iss-x', audience: 'aud-x', ttlSeconds: 900, now: () => now });
    const { token, jti, expiresInSeconds } = await tokens.issue({
      userId: 'user-1',
      tenantId: 'tenant-1',
      role: 'admin',
      sessionId: 'session-1',
    });
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
      sid: 'session-1',
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
    const keys = createSigningKeys({ store: fakeStore().store, encryption, refreshMs: 60_000, ...schedule });
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
