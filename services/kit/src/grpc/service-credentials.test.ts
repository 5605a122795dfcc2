import { describe, expect, it } from '@jest/globals';
import { Metadata } from '@grpc/grpc-js';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { loadConfig } from '../config.js';
import { AppError } from '../errors.js';
import { bearerTokenOf } from './metadata.js';
import {
  admits,
  anyPlatformService,
  type Caller,
  createServiceIdentity,
  createTrustedIdentities,
  generateServiceIdentityEnv,
  generateServiceKeyPair,
  onlyServices,
  platformServiceNames,
  platformServiceOrTenant,
  requireCallerTenant,
  serviceIdentityConfigSchema,
  type ServiceIdentity,
} from './service-credentials.js';

/** A whole second, so token times (whole seconds) line up with the clock. */
const T0 = 1_700_000_000_000;
const TENANT = '7d7f1b4e-3c1a-4a59-9f55-2f4c1c0f2a10';
const OTHER_TENANT = 'a4b1d7c2-0f3e-4d8a-8b6c-5e9f0a1b2c3d';

function keyPair() {
  return generateKeyPairSync('ed25519');
}

/** Services that all trust one another, sharing one clock the test moves. */
function world(names: readonly string[] = ['a', 'b', 'c', 'auth', 'policy', 'tenant-registry']) {
  const clock = { ms: T0 };
  const now = () => clock.ms;
  const keys = new Map(names.map((name) => [name, keyPair()]));
  const trust = new Map(names.map((name) => [name, [keys.get(name)!.publicKey]]));
  const privateKeyOf = (name: string) => keys.get(name)!.privateKey;
  const identity = (name: string, privateKey: KeyObject = privateKeyOf(name)) => createServiceIdentity({ name, privateKey, trust, now });
  return { clock, now, trust, privateKeyOf, identity };
}

interface HandToken {
  typ?: string;
  iss?: string;
  sub?: string;
  aud?: string;
  iat?: number;
  exp?: number;
  claims?: Record<string, unknown>;
}

/** Signs a token the way a service would, but with any field changed. */
async function signByHand(privateKey: KeyObject, { typ = 'svc+jwt', iss = 'a', sub, aud = 'b', iat, exp, claims = {} }: HandToken) {
  const issuedAt = iat ?? Math.floor(T0 / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'EdDSA', typ })
    .setIssuer(iss)
    .setSubject(sub ?? iss)
    .setAudience(aud)
    .setIssuedAt(issuedAt)
    .setExpirationTime(exp ?? issuedAt + 60)
    .sign(privateKey);
}

/** The token is refused with UNAUTHENTICATED and a message that does not repeat it. */
async function expectRefused(verifier: ServiceIdentity, token: string) {
  const outcome = await verifier.verify(token).then(
    (caller) => ({ caller }),
    (error: unknown) => ({ error }),
  );
  expect(outcome).not.toHaveProperty('caller');
  const { error } = outcome as { error: unknown };
  expect(error).toBeInstanceOf(AppError);
  expect(error).toMatchObject({ code: 'UNAUTHENTICATED', message: 'service credential rejected' });
  for (const part of token.split('.').filter((segment) => segment.length >= 8)) {
    expect((error as AppError).message).not.toContain(part);
    expect(JSON.stringify((error as AppError).details ?? {})).not.toContain(part);
  }
}

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe('service identity tokens', () => {
  it("verifies a platform service's credential addressed to the verifying service", async () => {
    const { identity } = world();
    const token = await identity('a').credentialFor('b')();
    await expect(identity('b').verify(token)).resolves.toEqual({ kind: 'platform', service: 'a' });
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'EdDSA', typ: 'svc+jwt' });
    expect(decodeJwt(token)).toMatchObject({ iss: 'a', sub: 'a', aud: 'b', iat: T0 / 1000, exp: T0 / 1000 + 300 });
  });

  it('refuses a credential addressed to another service', async () => {
    const { identity } = world();
    const forC = await identity('a').credentialFor('c')();
    await expectRefused(identity('b'), forC);
    await expect(identity('c').verify(forC)).resolves.toEqual({ kind: 'platform', service: 'a' });
  });

  it('refuses an issuer that is not in its trust', async () => {
    const { identity, trust, now } = world(['a', 'b']);
    const stranger = createServiceIdentity({ name: 'stranger', privateKey: keyPair().privateKey, trust, now });
    await expectRefused(identity('b'), await stranger.credentialFor('b')());
  });

  it("refuses a token signed by a key other than the issuer's trusted key", async () => {
    const { identity } = world();
    const impostor = identity('a', keyPair().privateKey);
    await expectRefused(identity('b'), await impostor.credentialFor('b')());
  });

  it('refuses an expired token, even one it has verified before, beyond the 5 s clock tolerance', async () => {
    const { identity, clock } = world();
    const token = await identity('a').credentialFor('b')();
    const seenBefore = identity('b');
    await expect(seenBefore.verify(token)).resolves.toEqual({ kind: 'platform', service: 'a' });

    // exp is T0 + 300 s; within the tolerance both a remembering and a fresh verifier accept it.
    clock.ms = T0 + 304_000;
    await expect(seenBefore.verify(token)).resolves.toEqual({ kind: 'platform', service: 'a' });
    await expect(identity('b').verify(token)).resolves.toEqual({ kind: 'platform', service: 'a' });

    clock.ms = T0 + 306_000;
    await expectRefused(seenBefore, token);
    await expectRefused(identity('b'), token);
  });

  it('refuses a token whose typ is not svc+jwt', async () => {
    const { identity, privateKeyOf } = world();
    // The same token with the right typ is accepted, so only typ makes the difference.
    await expect(identity('b').verify(await signByHand(privateKeyOf('a'), {}))).resolves.toEqual({ kind: 'platform', service: 'a' });
    await expectRefused(identity('b'), await signByHand(privateKeyOf('a'), { typ: 'JWT' }));
    await expectRefused(identity('b'), await signByHand(privateKeyOf('a'), { typ: 'at+jwt' }));
  });

  it('refuses a platform token whose subject differs from its issuer', async () => {
    const { identity, privateKeyOf } = world();
    await expectRefused(identity('b'), await signByHand(privateKeyOf('a'), { sub: 'c' }));
  });

  it('refuses a tenant claim signed by any service other than auth', async () => {
    const { identity, privateKeyOf } = world();
    const token = await signByHand(privateKeyOf('a'), { sub: 'apikey:1', claims: { tenant_id: TENANT } });
    await expectRefused(identity('b'), token);
    // Not even with sub = iss, which would otherwise pass as a platform token.
    await expectRefused(identity('b'), await signByHand(privateKeyOf('a'), { claims: { tenant_id: TENANT } }));
  });

  it('refuses a tenant token whose tenant_id is not a uuid', async () => {
    const { identity, privateKeyOf } = world();
    for (const tenant of ['not-a-uuid', '', 42, null]) {
      const token = await signByHand(privateKeyOf('auth'), { iss: 'auth', sub: 'apikey:1', claims: { tenant_id: tenant } });
      await expectRefused(identity('b'), token);
    }
  });

  it('refuses garbage', async () => {
    const { identity, privateKeyOf } = world();
    const valid = await signByHand(privateKeyOf('a'), {});
    const [header, payload] = valid.split('.');
    const unsigned = `${header!}.${payload!}.`;
    const noneAlg = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'svc+jwt' })).toString('base64url')}.${payload!}.`;
    const forgedSignature = `${header!}.${payload!}.${Buffer.alloc(64, 7).toString('base64url')}`;
    for (const token of ['', 'garbage', 'a.b.c', 'x'.repeat(500), unsigned, noneAlg, forgedSignature]) {
      await expectRefused(identity('b'), token);
    }
  });

  it('refuses a token issued more than 900 s ago even though its exp is in the future', async () => {
    const { identity, privateKeyOf } = world();
    const nowSeconds = T0 / 1000;
    const old = await signByHand(privateKeyOf('a'), { iat: nowSeconds - 1_000, exp: nowSeconds + 100 });
    await expectRefused(identity('b'), old);
    // A token younger than the limit with the same exp is accepted.
    const young = await signByHand(privateKeyOf('a'), { iat: nowSeconds - 800, exp: nowSeconds + 100 });
    await expect(identity('b').verify(young)).resolves.toEqual({ kind: 'platform', service: 'a' });
  });

  it('remembers a verified token no longer than the age limit, whatever exp its signer chose', async () => {
    const { identity, privateKeyOf, clock } = world();
    const nowSeconds = T0 / 1000;
    const longLived = await signByHand(privateKeyOf('a'), { iat: nowSeconds, exp: nowSeconds + 3_600 });
    const b = identity('b');
    await expect(b.verify(longLived)).resolves.toEqual({ kind: 'platform', service: 'a' });
    clock.ms = T0 + 1_000_000;
    await expectRefused(b, longLived);
  });

  it('refuses a token issued in the future beyond the clock tolerance', async () => {
    const { identity, privateKeyOf } = world();
    const nowSeconds = T0 / 1000;
    await expectRefused(identity('b'), await signByHand(privateKeyOf('a'), { iat: nowSeconds + 60, exp: nowSeconds + 120 }));
  });

  it('accepts tokens from every key trusted for a name while a key is rotated', async () => {
    const oldKey = keyPair();
    const newKey = keyPair();
    const trust = new Map([
      ['a', [oldKey.publicKey, newKey.publicKey]],
      ['b', [keyPair().publicKey]],
    ]);
    const now = () => T0;
    const b = createServiceIdentity({ name: 'b', privateKey: keyPair().privateKey, trust, now });
    const withOld = createServiceIdentity({ name: 'a', privateKey: oldKey.privateKey, trust, now });
    const withNew = createServiceIdentity({ name: 'a', privateKey: newKey.privateKey, trust, now });
    const withUnknown = createServiceIdentity({ name: 'a', privateKey: keyPair().privateKey, trust, now });
    await expect(b.verify(await withOld.credentialFor('b')())).resolves.toEqual({ kind: 'platform', service: 'a' });
    await expect(b.verify(await withNew.credentialFor('b')())).resolves.toEqual({ kind: 'platform', service: 'a' });
    await expectRefused(b, await withUnknown.credentialFor('b')());
  });
});

describe('credentialFor', () => {
  it('reuses its token until the renew point, then signs a new one', async () => {
    const { identity, clock } = world();
    const a = identity('a');
    const b = identity('b');
    const credential = a.credentialFor('b');
    const [first, concurrent] = await Promise.all([credential(), credential()]);
    expect(concurrent).toBe(first);
    expect(await a.credentialFor('b')()).toBe(first);

    clock.ms = T0 + 239_000;
    expect(await credential()).toBe(first);

    clock.ms = T0 + 240_001;
    const renewed = await credential();
    expect(renewed).not.toBe(first);
    expect(decodeJwt(renewed)).toMatchObject({ iat: T0 / 1000 + 240, exp: T0 / 1000 + 540 });
    await expect(b.verify(renewed)).resolves.toEqual({ kind: 'platform', service: 'a' });
    // The previous token has not expired yet and is still good.
    await expect(b.verify(first)).resolves.toEqual({ kind: 'platform', service: 'a' });
    expect(await credential()).toBe(renewed);
  });

  it('keeps one token per audience', async () => {
    const { identity } = world();
    const a = identity('a');
    const forB = await a.credentialFor('b')();
    const forC = await a.credentialFor('c')();
    expect(forC).not.toBe(forB);
    expect(decodeJwt(forC).aud).toBe('c');
  });

  it('refuses an audience that is not a service name', () => {
    const { identity } = world();
    expect(() => identity('a').credentialFor('Not A Service')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('createServiceIdentity', () => {
  it('refuses a key that is not an Ed25519 private key, and a bad name', () => {
    const trust = new Map<string, KeyObject[]>();
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect(() => createServiceIdentity({ name: 'a', privateKey: rsa.privateKey, trust })).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG' }),
    );
    expect(() => createServiceIdentity({ name: 'a', privateKey: keyPair().publicKey, trust })).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG' }),
    );
    expect(() => createServiceIdentity({ name: 'Bad Name', privateKey: keyPair().privateKey, trust })).toThrow();
  });
});

describe('issueTenantToken', () => {
  const request = { audience: 'policy', tenantId: TENANT, subject: 'apikey:123', ttlSeconds: 600 };

  it('is refused to any identity but auth', async () => {
    const { identity } = world();
    for (const name of ['a', 'policy', 'tenant-registry']) {
      await expect(identity(name).issueTenantToken(request)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    }
  });

  it('keeps the lifetime within 1 to 900 seconds', async () => {
    const { identity } = world();
    const auth = identity('auth');
    for (const ttlSeconds of [0, -1, 901, 1.5, Number.NaN]) {
      await expect(auth.issueTenantToken({ ...request, ttlSeconds })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    await expect(auth.issueTenantToken({ ...request, ttlSeconds: 1 })).resolves.toHaveProperty('token');
    await expect(auth.issueTenantToken({ ...request, ttlSeconds: 900 })).resolves.toHaveProperty('token');
  });

  it('refuses a tenant id that is not a uuid', async () => {
    const { identity } = world();
    expect(await errorOf(identity('auth').issueTenantToken({ ...request, tenantId: 'acme' }))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'tenantId' },
    });
  });

  it('gives the addressed service a tenant caller, until the token expires', async () => {
    const { identity, clock } = world();
    const { token, expiresAt } = await identity('auth').issueTenantToken(request);
    expect(expiresAt).toEqual(new Date(T0 + 600_000));
    const policy = identity('policy');
    await expect(policy.verify(token)).resolves.toEqual({ kind: 'tenant', tenantId: TENANT, subject: 'apikey:123' });
    expect(decodeJwt(token)).toMatchObject({ iss: 'auth', sub: 'apikey:123', aud: 'policy', tenant_id: TENANT });

    clock.ms = T0 + 606_000;
    await expectRefused(policy, token);
  });

  it('is refused by a service it is not addressed to', async () => {
    const { identity } = world();
    const { token } = await identity('auth').issueTenantToken(request);
    await expectRefused(identity('tenant-registry'), token);
  });
});

describe('caller rules', () => {
  const platform = (service: string): Caller => ({ kind: 'platform', service });
  const tenant: Caller = { kind: 'tenant', tenantId: TENANT, subject: 'apikey:1' };

  it('anyPlatformService admits every platform service and no tenant', () => {
    expect(admits(anyPlatformService, platform('a'))).toBe(true);
    expect(admits(anyPlatformService, platform('platform-ops'))).toBe(true);
    expect(admits(anyPlatformService, tenant)).toBe(false);
  });

  it('onlyServices admits the named services only, and no tenant', () => {
    const rule = onlyServices('tenant-registry', 'platform-ops');
    expect(admits(rule, platform('tenant-registry'))).toBe(true);
    expect(admits(rule, platform('platform-ops'))).toBe(true);
    expect(admits(rule, platform('api-gateway'))).toBe(false);
    expect(admits(rule, tenant)).toBe(false);
    expect(admits(onlyServices(), platform('tenant-registry'))).toBe(false);
  });

  it('platformServiceOrTenant admits platform services and tenants', () => {
    expect(admits(platformServiceOrTenant, platform('a'))).toBe(true);
    expect(admits(platformServiceOrTenant, tenant)).toBe(true);
  });

  it('requireCallerTenant holds a tenant caller to its own tenant', () => {
    expect(() => requireCallerTenant(tenant, OTHER_TENANT)).toThrow(expect.objectContaining({ code: 'CROSS_TENANT' }));
    expect(() => requireCallerTenant(tenant, TENANT)).not.toThrow();
    expect(() => requireCallerTenant(platform('a'), OTHER_TENANT)).not.toThrow();
  });
});

describe('createTrustedIdentities and key generation', () => {
  it('makes every platform identity by default, each trusting the others', async () => {
    const identities = createTrustedIdentities();
    expect(Object.keys(identities).sort()).toEqual([...platformServiceNames].sort());
    const token = await identities['platform-ops'].credentialFor('policy')();
    await expect(identities.policy.verify(token)).resolves.toEqual({ kind: 'platform', service: 'platform-ops' });
    const { token: tenantToken } = await identities.auth.issueTenantToken({
      audience: 'policy',
      tenantId: TENANT,
      subject: 'apikey:1',
      ttlSeconds: 60,
    });
    await expect(identities.policy.verify(tenantToken)).resolves.toMatchObject({ kind: 'tenant', tenantId: TENANT });
  });

  it('makes identities for the names given', async () => {
    const identities = createTrustedIdentities(['x', 'y']);
    expect(Object.keys(identities).sort()).toEqual(['x', 'y']);
    await expect(identities.y.verify(await identities.x.credentialFor('y')())).resolves.toEqual({ kind: 'platform', service: 'x' });
    // Separate calls make separate keys: one set does not trust the other.
    await expectRefused(createTrustedIdentities(['x', 'y']).y, await identities.x.credentialFor('y')());
  });

  it('generates an Ed25519 key pair as PKCS#8 PEM and public JWK', () => {
    const { privateKeyPem, publicJwk } = generateServiceKeyPair();
    expect(privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(publicJwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519' });
    expect(publicJwk).not.toHaveProperty('d');
  });
});

describe('serviceIdentityConfigSchema', () => {
  it('parses generated values into a working identity', async () => {
    const env = generateServiceIdentityEnv('policy');
    const config = loadConfig(serviceIdentityConfigSchema, env);
    expect(config.SERVICE_IDENTITY_KEY.asymmetricKeyType).toBe('ed25519');
    expect(config.SERVICE_IDENTITY_KEY.type).toBe('private');
    expect([...config.SERVICE_TRUST.keys()]).toEqual(['policy']);
    const identity = createServiceIdentity({ name: 'policy', privateKey: config.SERVICE_IDENTITY_KEY, trust: config.SERVICE_TRUST });
    await expect(identity.verify(await identity.credentialFor('policy')())).resolves.toEqual({ kind: 'platform', service: 'policy' });
  });

  it('accepts a list of keys for one service', () => {
    const { SERVICE_IDENTITY_KEY } = generateServiceIdentityEnv('a');
    const trust = { a: [generateServiceKeyPair().publicJwk, generateServiceKeyPair().publicJwk], b: generateServiceKeyPair().publicJwk };
    const result = serviceIdentityConfigSchema.safeParse({ SERVICE_IDENTITY_KEY, SERVICE_TRUST: JSON.stringify(trust) });
    expect(result.success).toBe(true);
    expect(result.data?.SERVICE_TRUST.get('a')).toHaveLength(2);
    expect(result.data?.SERVICE_TRUST.get('b')).toHaveLength(1);
  });

  /** Refused by both safeParse and loadConfig, naming the variable and never repeating `secret`. */
  function expectConfigRefused(env: Record<string, string>, variable: string, secret: string) {
    const result = serviceIdentityConfigSchema.safeParse(env);
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((issue) => issue.path.join('.'))).toContain(variable);
    const error = (() => {
      try {
        loadConfig(serviceIdentityConfigSchema, env);
      } catch (thrown) {
        return thrown;
      }
      return undefined;
    })();
    expect(error).toMatchObject({ code: 'INVALID_CONFIG' });
    const texts = [(error as AppError).message, JSON.stringify(result.error?.issues), String(result.error)];
    expect(texts[0]).toContain(variable);
    const secretParts = [secret, ...secret.split('\n').filter((line) => line.length >= 16 && !line.startsWith('-----'))];
    for (const text of texts) {
      for (const part of secretParts) expect(text).not.toContain(part);
    }
  }

  it('refuses an RSA private key without repeating it', () => {
    const { SERVICE_TRUST } = generateServiceIdentityEnv('a');
    const rsaPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expectConfigRefused({ SERVICE_IDENTITY_KEY: rsaPem, SERVICE_TRUST }, 'SERVICE_IDENTITY_KEY', rsaPem);
  });

  it('refuses a PEM that is not a key without repeating it', () => {
    const { SERVICE_TRUST } = generateServiceIdentityEnv('a');
    const garbage = '-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWdhcmJhZ2Utbm90LWEta2V5LWF0LWFsbA==\n-----END PRIVATE KEY-----\n';
    expectConfigRefused({ SERVICE_IDENTITY_KEY: garbage, SERVICE_TRUST }, 'SERVICE_IDENTITY_KEY', garbage);
    expectConfigRefused({ SERVICE_IDENTITY_KEY: 'not a pem at all, but secret', SERVICE_TRUST }, 'SERVICE_IDENTITY_KEY', 'secret');
  });

  it('refuses a public key PEM as the identity key', () => {
    const { SERVICE_TRUST } = generateServiceIdentityEnv('a');
    const publicPem = keyPair().publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expectConfigRefused({ SERVICE_IDENTITY_KEY: publicPem, SERVICE_TRUST }, 'SERVICE_IDENTITY_KEY', publicPem);
  });

  it('refuses a trust list that is not JSON, or holds a non-Ed25519 key, or a bad service name, without repeating the key', () => {
    const { SERVICE_IDENTITY_KEY, SERVICE_TRUST } = generateServiceIdentityEnv('a');
    const good = generateServiceKeyPair().publicJwk;
    const rsaJwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
    const x25519Jwk = generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' });
    const refusedTrusts = [
      'not json',
      '{"a": ',
      '[]',
      '"a"',
      JSON.stringify({ a: rsaJwk }),
      JSON.stringify({ a: x25519Jwk }),
      JSON.stringify({ a: [good, rsaJwk] }),
      JSON.stringify({ a: [] }),
      JSON.stringify({ a: { kty: 'OKP', crv: 'Ed25519', x: 'abc' } }),
      JSON.stringify({ Policy: good }),
      JSON.stringify({ 'bad name': good }),
    ];
    for (const trust of refusedTrusts) {
      expectConfigRefused({ SERVICE_IDENTITY_KEY, SERVICE_TRUST: trust }, 'SERVICE_TRUST', SERVICE_IDENTITY_KEY);
    }
    // Sanity: the same identity key with its own trust parses.
    expect(serviceIdentityConfigSchema.safeParse({ SERVICE_IDENTITY_KEY, SERVICE_TRUST }).success).toBe(true);
  });

  it('requires both variables', () => {
    const { SERVICE_IDENTITY_KEY, SERVICE_TRUST } = generateServiceIdentityEnv('a');
    expect(serviceIdentityConfigSchema.safeParse({ SERVICE_IDENTITY_KEY }).success).toBe(false);
    expect(serviceIdentityConfigSchema.safeParse({ SERVICE_TRUST }).success).toBe(false);
  });
});

describe('bearerTokenOf', () => {
  const metadataWith = (...values: string[]) => {
    const metadata = new Metadata();
    for (const value of values) metadata.add('authorization', value);
    return metadata;
  };

  it('reads the token of a single Bearer entry', () => {
    expect(bearerTokenOf(metadataWith('Bearer aaa.bbb-_.ccc'))).toBe('aaa.bbb-_.ccc');
  });

  it('reads nothing from a missing, repeated or malformed entry', () => {
    expect(bearerTokenOf(new Metadata())).toBeUndefined();
    expect(bearerTokenOf(metadataWith('Bearer aaa', 'Bearer bbb'))).toBeUndefined();
    expect(bearerTokenOf(metadataWith('Basic dXNlcjpwYXNz'))).toBeUndefined();
    expect(bearerTokenOf(metadataWith('Bearer '))).toBeUndefined();
    expect(bearerTokenOf(metadataWith('Bearer a b'))).toBeUndefined();
    expect(bearerTokenOf(metadataWith(`Bearer ${'a'.repeat(4097)}`))).toBeUndefined();
  });
});
