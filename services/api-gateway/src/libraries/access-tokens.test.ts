import { describe, expect, it } from '@jest/globals';
import { createLocalJWKSet, errors, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { Role } from '@portcullis/proto/common';
import { createAccessTokenVerifier } from './access-tokens.js';

const tenantId = '00000000-0000-4000-8000-00000000000a';
const userId = '00000000-0000-4000-8000-0000000000f1';

async function setup() {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const other = await generateKeyPair('ES256');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
  const verify = createAccessTokenVerifier({ keys: createLocalJWKSet({ keys: [jwk] }), issuer: 'portcullis-auth', audience: 'portcullis' });
  const sign = (
    claims: Record<string, unknown> = {},
    options: {
      typ?: string;
      key?: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
      kid?: string;
      exp?: string;
      iss?: string;
      aud?: string;
    } = {},
  ) =>
    new SignJWT({ tenantId, role: 'owner', sid: 'session-1', ...claims })
      .setProtectedHeader({ alg: 'ES256', typ: options.typ ?? 'at+jwt', kid: options.kid ?? 'k1' })
      .setSubject(userId)
      .setIssuer(options.iss ?? 'portcullis-auth')
      .setAudience(options.aud ?? 'portcullis')
      .setIssuedAt()
      .setExpirationTime(options.exp ?? '5m')
      .sign(options.key ?? privateKey);
  return { verify, sign, otherKey: other.privateKey };
}

describe('access token verifier', () => {
  it('accepts a valid token and maps its claims', async () => {
    const { verify, sign } = await setup();
    await expect(verify(await sign())).resolves.toEqual({
      userId,
      tenantId,
      role: Role.OWNER,
      sessionId: 'session-1',
      expiresAt: expect.any(Number) as unknown,
    });
  });

  it('rejects alg none, foreign keys, unknown kid, wrong iss/aud, expiry and bad claims', async () => {
    const { verify, sign, otherKey } = await setup();
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const body = Buffer.from(
      JSON.stringify({ sub: userId, tenantId, role: 'owner', iss: 'portcullis-auth', aud: 'portcullis', exp: 9999999999, iat: 1 }),
    ).toString('base64url');
    const rejected = [
      `${header}.${body}.`,
      await sign({}, { key: otherKey }),
      await sign({}, { kid: 'unknown' }),
      await sign({}, { iss: 'someone-else' }),
      await sign({}, { aud: 'another-api' }),
      await sign({}, { exp: '-1m' }),
      await sign({ role: 'superuser' }),
      await sign({ tenantId: 'not-a-uuid' }),
      await sign({}, { typ: 'JWT' }),
      await sign({ sid: undefined }),
      await sign({ sid: 'has spaces and : colons' }),
    ];
    for (const token of rejected) {
      await expect(verify(token)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    }
  });
});

describe('access token verifier without its key set', () => {
  it('denies with DEPENDENCY_UNAVAILABLE (not UNAUTHENTICATED) when the key set cannot be fetched', async () => {
    const { sign } = await setup();
    const token = await sign();
    for (const failure of [
      new errors.JOSEError('Expected 200 OK from the JSON Web Key Set HTTP response'),
      new errors.JWKSTimeout(),
      new TypeError('fetch failed'),
    ]) {
      const verify = createAccessTokenVerifier({
        keys: () => Promise.reject(failure),
        issuer: 'portcullis-auth',
        audience: 'portcullis',
      });
      await expect(verify(token)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    }
  });
});
