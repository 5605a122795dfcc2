import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { createLocalJWKSet, exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWK } from 'jose';
import { createHmac } from 'node:crypto';
import { AppError } from '@portcullis/kit';
import { bearerTokenOf } from '../pipeline/authenticate.js';
import { createAccessTokenVerifier } from './access-tokens.js';
import { oneCharacterForgeries } from '@portcullis/test/jwt-mutations';

const tenantA = '00000000-0000-4000-8000-00000000000a';
const tenantB = '00000000-0000-4000-8000-00000000000b';
const userId = '00000000-0000-4000-8000-0000000000f1';

async function setup() {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const verify = createAccessTokenVerifier({ keys: createLocalJWKSet({ keys: [jwk] }), issuer: 'portcullis-auth', audience: 'portcullis' });
  const valid = await new SignJWT({ tenantId: tenantA, role: 'owner', sid: 's1' })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' })
    .setSubject(userId)
    .setIssuer('portcullis-auth')
    .setAudience('portcullis')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(privateKey);
  return { verify, valid, publicKey, privateKey, jwk };
}

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** What a verifier may do with hostile input: refuse it as UNAUTHENTICATED. Never accept, never fail otherwise. */
async function expectRefused(verify: (token: string) => Promise<unknown>, token: string): Promise<void> {
  let outcome: unknown;
  try {
    outcome = await verify(token);
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('UNAUTHENTICATED');
    return;
  }
  throw new Error(`token was accepted: ${JSON.stringify(outcome)}`);
}

describe('access token attacks', () => {
  it('refuses HS256 signed with the public key (algorithm confusion)', async () => {
    const { verify, valid, publicKey, jwk } = await setup();
    const [, payload] = valid.split('.');
    const header = b64({ alg: 'HS256', typ: 'at+jwt', kid: 'k1' });
    for (const secret of [await exportSPKI(publicKey), JSON.stringify(jwk)]) {
      const signature = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
      await expectRefused(verify, `${header}.${payload}.${signature}`);
    }
  });

  it('refuses a token whose tenantId was changed after signing', async () => {
    const { verify, valid } = await setup();
    const [header, payload, signature] = valid.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as Record<string, unknown>;
    await expectRefused(verify, `${header}.${b64({ ...claims, tenantId: tenantB })}.${signature}`);
  });

  it('refuses a token that is not valid yet', async () => {
    const { verify, privateKey } = await setup();
    const future = await new SignJWT({ tenantId: tenantA, role: 'owner', sid: 's1' })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' })
      .setSubject(userId)
      .setIssuer('portcullis-auth')
      .setAudience('portcullis')
      .setIssuedAt()
      .setNotBefore('10m')
      .setExpirationTime('20m')
      .sign(privateKey);
    await expectRefused(verify, future);
  });

  it('never accepts random bytes or mutations of a valid token (property)', async () => {
    const { verify, valid } = await setup();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string(),
          fc.base64String(),
          fc.uint8Array().map((bytes) => Buffer.from(bytes).toString('latin1')),
        ),
        async (text) => {
          await expectRefused(verify, text);
        },
      ),
      { numRuns: 300 },
    );
    await fc.assert(
      fc.asyncProperty(oneCharacterForgeries(valid), async (mutated) => {
        await expectRefused(verify, mutated);
      }),
      { numRuns: 300 },
    );
  });

  it('parses the Authorization header without ever throwing anything but UNAUTHENTICATED (property)', () => {
    fc.assert(
      fc.property(fc.string(), (header) => {
        try {
          const token = bearerTokenOf(header);
          expect(token.split('.')).toHaveLength(3);
        } catch (error) {
          expect(error).toBeInstanceOf(AppError);
          expect((error as AppError).code).toBe('UNAUTHENTICATED');
        }
      }),
      { numRuns: 1000 },
    );
  });
});
