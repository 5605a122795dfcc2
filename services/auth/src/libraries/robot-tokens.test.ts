import { createHmac } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWK } from 'jose';
import { AppError } from '@portcullis/kit';
import { fakeClock } from '../test-support/memory-stores.js';
import { createAccessTokens } from './access-tokens.js';
import { createRobotTokens, type RobotTokenSubject, type VerificationKeyStore } from './robot-tokens.js';
import { oneCharacterForgeries } from '@portcullis/test/jwt-mutations';

const tenantA = '00000000-0000-4000-8000-00000000000a';
const tenantB = '00000000-0000-4000-8000-00000000000b';
const robotId = '00000000-0000-4000-8000-0000000000c1';
const creator = '00000000-0000-4000-8000-0000000000f1';
const team1 = '00000000-0000-4000-8000-0000000000e1';
const team2 = '00000000-0000-4000-8000-0000000000e2';
const issuer = 'portcullis-auth';
const audience = 'portcullis';

async function newKey() {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  return { privateKey, publicKey, publicJwk, kid: await calculateJwkThumbprint(publicJwk) };
}

async function setUp() {
  const clock = fakeClock();
  const key = await newKey();
  const rows = new Map<string, { alg: string; publicJwk: JWK }>([[key.kid, { alg: 'ES256', publicJwk: key.publicJwk }]]);
  const lookups: string[] = [];
  let storeDown = false;
  const verificationKeys: VerificationKeyStore = {
    async findPublicKey(kid) {
      lookups.push(kid);
      if (storeDown) throw new AppError('DEPENDENCY_UNAVAILABLE', 'database is unavailable');
      return rows.get(kid);
    },
  };
  const signer = { currentSigner: async () => ({ kid: key.kid, privateKey: key.privateKey }) };
  const tokens = createRobotTokens({ signer, verificationKeys, issuer, audience, keyRefreshMs: 60_000, now: clock.now });
  const subject: RobotTokenSubject = {
    robotId,
    tenantId: tenantA,
    robotName: 'build agent',
    creatorId: creator,
    teamIds: [team1, team2],
    expiresAt: undefined,
  };
  const { token: valid } = await tokens.issue(subject);
  /** Signs arbitrary header and claims with the real key. */
  const sign = (claims: Record<string, unknown>, header: Record<string, unknown> = {}) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'robot+jwt', ...header }).sign(key.privateKey);
  const claimsOf = (token: string) => decodeJwt(token) as Record<string, unknown>;
  return {
    clock,
    key,
    rows,
    lookups,
    tokens,
    subject,
    valid,
    sign,
    claimsOf,
    signer,
    setStoreDown: (down: boolean) => (storeDown = down),
  };
}

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** Hostile input may only be refused as UNAUTHENTICATED: never accepted, never another failure. */
async function expectRefused(verify: (token: string) => Promise<unknown>, token: string): Promise<void> {
  let outcome: unknown;
  try {
    outcome = await verify(token);
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('UNAUTHENTICATED');
    expect((error as AppError).message).toBe('invalid, expired or revoked robot token');
    return;
  }
  throw new Error(`token was accepted: ${JSON.stringify(outcome)}`);
}

describe('robot tokens', () => {
  it('issues an ES256 robot+jwt with the documented claims and no exp unless one was chosen', async () => {
    const { valid, key, tokens, subject, clock } = await setUp();
    expect(decodeProtectedHeader(valid)).toEqual({ alg: 'ES256', kid: key.kid, typ: 'robot+jwt' });
    const claims = decodeJwt(valid);
    expect(claims).toEqual({
      iss: issuer,
      aud: audience,
      sub: robotId,
      jti: robotId,
      robotName: 'build agent',
      creatorId: creator,
      tenantId: tenantA,
      teamIds: [team1, team2],
      iat: Math.floor(clock.now() / 1000),
    });
    await expect(tokens.verify(valid)).resolves.toEqual({
      robotId,
      tenantId: tenantA,
      robotName: 'build agent',
      creatorId: creator,
      teamIds: [team1, team2],
      expiresAt: undefined,
      kid: key.kid,
    });

    const expiresAt = new Date(clock.now() + 3_600_000);
    const { token: expiring } = await tokens.issue({ ...subject, expiresAt });
    expect(decodeJwt(expiring).exp).toBe(Math.floor(expiresAt.getTime() / 1000));
    await expect(tokens.verify(expiring)).resolves.toMatchObject({ expiresAt: Math.floor(expiresAt.getTime() / 1000) });
  });

  it('refuses an expired token', async () => {
    const { tokens, subject, clock } = await setUp();
    const { token } = await tokens.issue({ ...subject, expiresAt: new Date(clock.now() + 10_000) });
    clock.advance(10_000);
    await expectRefused(tokens.verify, token);
  });

  it('verifies with a key no longer published: a token without expiry outlives rotation', async () => {
    const { tokens, valid, lookups } = await setUp();
    // The store answers from signing_keys whatever the retirement; the cache makes one lookup per kid.
    await tokens.verify(valid);
    await tokens.verify(valid);
    expect(lookups).toHaveLength(1);
  });

  it('stops verifying within the refresh interval once the key row is gone', async () => {
    const { tokens, valid, rows, key, clock } = await setUp();
    await tokens.verify(valid);
    rows.delete(key.kid);
    clock.advance(60_000);
    await expectRefused(tokens.verify, valid);
  });

  it('refuses alg none', async () => {
    const { tokens, valid, key } = await setUp();
    const [, payload] = valid.split('.');
    await expectRefused(tokens.verify, `${b64({ alg: 'none', typ: 'robot+jwt', kid: key.kid })}.${payload}.`);
    await expectRefused(tokens.verify, `${b64({ alg: 'none', typ: 'robot+jwt', kid: key.kid })}.${payload}.AAAA`);
  });

  it('refuses HS256 signed with the public key (algorithm confusion)', async () => {
    const { tokens, valid, key } = await setUp();
    const [, payload] = valid.split('.');
    const header = b64({ alg: 'HS256', typ: 'robot+jwt', kid: key.kid });
    for (const secret of [
      await exportSPKI(key.publicKey),
      JSON.stringify(key.publicJwk),
      JSON.stringify({ ...key.publicJwk, kid: key.kid }),
    ]) {
      const signature = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
      await expectRefused(tokens.verify, `${header}.${payload}.${signature}`);
    }
  });

  it('refuses a token signed by a key auth does not hold, under its own kid or under ours', async () => {
    const { tokens, subject, lookups, key, valid, claimsOf } = await setUp();
    const foreign = await newKey();
    const forged = createRobotTokens({
      signer: { currentSigner: async () => ({ kid: foreign.kid, privateKey: foreign.privateKey }) },
      verificationKeys: { findPublicKey: async () => undefined },
      issuer,
      audience,
      keyRefreshMs: 60_000,
    });
    await expectRefused(tokens.verify, (await forged.issue(subject)).token);
    expect(lookups).toContain(foreign.kid);
    const underOurKid = await new SignJWT(claimsOf(valid))
      .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'robot+jwt' })
      .sign(foreign.privateKey);
    await expectRefused(tokens.verify, underOurKid);
  });

  it('refuses a token without a well-formed kid before any lookup', async () => {
    const { tokens, sign, claimsOf, valid, lookups } = await setUp();
    for (const kid of [undefined, '', 'k1', 'x'.repeat(44), '../../etc/passwd', 42]) {
      await expectRefused(tokens.verify, await sign(claimsOf(valid), { kid }));
    }
    expect(lookups).toHaveLength(0);
  });

  it('refuses an access token presented as a robot token, and a robot token typed as an access token', async () => {
    const { tokens, signer, sign, claimsOf, valid, key } = await setUp();
    const access = createAccessTokens({ keys: signer, issuer, audience, ttlSeconds: 900 });
    const { token } = await access.issue({ userId: creator, tenantId: tenantA, role: 'owner', sessionId: robotId });
    await expectRefused(tokens.verify, token);
    for (const typ of ['at+jwt', 'JWT', undefined, 'application/at+jwt']) {
      await expectRefused(tokens.verify, await sign(claimsOf(valid), { typ }));
    }
    // Relabelling the header of a genuine robot token breaks its signature.
    const [, payload, signature] = valid.split('.');
    await expectRefused(tokens.verify, `${b64({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' })}.${payload}.${signature}`);
  });

  it('refuses tokens whose tenantId or teamIds were changed after signing', async () => {
    const { tokens, valid, claimsOf } = await setUp();
    const [header, , signature] = valid.split('.');
    const claims = claimsOf(valid);
    for (const changed of [
      { ...claims, tenantId: tenantB },
      { ...claims, teamIds: [team1, team2, '00000000-0000-4000-8000-0000000000e3'] },
      { ...claims, teamIds: [team1] },
      { ...claims, creatorId: robotId },
      { ...claims, exp: Number(claims.iat) + 60 },
    ]) {
      await expectRefused(tokens.verify, `${header}.${b64(changed)}.${signature}`);
    }
  });

  it('refuses wrong issuer or audience, a missing iat/sub/jti and a token not valid yet', async () => {
    const { tokens, sign, claimsOf, valid, clock } = await setUp();
    const claims = claimsOf(valid);
    const nowSeconds = Math.floor(clock.now() / 1000);
    for (const changed of [
      { ...claims, iss: 'someone-else' },
      { ...claims, aud: 'other-audience' },
      { ...claims, iat: undefined },
      { ...claims, sub: undefined, jti: undefined },
      { ...claims, nbf: nowSeconds + 600 },
    ]) {
      await expectRefused(tokens.verify, await sign(changed));
    }
  });

  it('refuses validly signed tokens with malformed claims', async () => {
    const { tokens, sign, claimsOf, valid } = await setUp();
    const claims = claimsOf(valid);
    for (const changed of [
      { ...claims, jti: '00000000-0000-4000-8000-0000000000c2' },
      { ...claims, sub: 'robot', jti: 'robot' },
      { ...claims, sub: robotId.toUpperCase(), jti: robotId.toUpperCase() },
      { ...claims, tenantId: 'tenant-a' },
      { ...claims, creatorId: 7 },
      { ...claims, robotName: '' },
      { ...claims, robotName: 'r'.repeat(101) },
      { ...claims, teamIds: [] },
      { ...claims, teamIds: [team1, team1] },
      { ...claims, teamIds: team1 },
      { ...claims, teamIds: Array.from({ length: 21 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`) },
      { ...claims, exp: 'never' },
      { ...claims, exp: 1e12 + 0.5 },
    ]) {
      await expectRefused(tokens.verify, await sign(changed));
    }
  });

  it('refuses an oversized token without verifying it', async () => {
    const { tokens, lookups } = await setUp();
    await expectRefused(tokens.verify, `${'a'.repeat(5_000)}.${'b'.repeat(5_000)}.c`);
    expect(lookups).toHaveLength(0);
  });

  it('passes a failing key store through instead of blaming the token', async () => {
    const { tokens, valid, setStoreDown } = await setUp();
    setStoreDown(true);
    await expect(tokens.verify(valid)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
  });

  it('never accepts random bytes or mutations of a valid token (property)', async () => {
    const { tokens, valid } = await setUp();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string(),
          fc.base64String(),
          fc.uint8Array().map((bytes) => Buffer.from(bytes).toString('latin1')),
          fc.tuple(fc.base64String(), fc.base64String(), fc.base64String()).map((parts) => parts.join('.')),
        ),
        async (text) => {
          await expectRefused(tokens.verify, text);
        },
      ),
      { numRuns: 300 },
    );
    await fc.assert(
      fc.asyncProperty(oneCharacterForgeries(valid), async (mutated) => {
        await expectRefused(tokens.verify, mutated);
      }),
      { numRuns: 300 },
    );
  });
});
