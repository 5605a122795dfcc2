import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PrismaPg } from '@prisma/adapter-pg';
import {
  AppError,
  createGrpcClient,
  createGrpcServer,
  createLogger,
  implement,
  type GrpcClient,
  type GrpcServer,
  type ServiceHandlers,
} from '@portcullis/kit';
import { AuthService } from '@portcullis/proto/auth';
import { Role } from '@portcullis/proto/common';
import { TenantRegistryService, type Membership } from '@portcullis/proto/tenant';
import { createTestDatabase, infra, testRunId, withPg, type TestDatabase } from '@portcullis/test';
import { Redis } from 'ioredis';
import { createRemoteJWKSet, decodeProtectedHeader, generateKeyPair, jwtVerify, SignJWT, type JWK } from 'jose';
import { PrismaClient } from '../src/generated/prisma/client.js';
import { createAuthService } from '../src/grpc/auth-service.js';
import { createJwksServer, JWKS_PATH, type JwksServer } from '../src/http/jwks-server.js';
import { createAccessTokens } from '../src/libraries/access-tokens.js';
import { createAccounts } from '../src/libraries/accounts.js';
import { createKeyEncryption } from '../src/libraries/key-encryption.js';
import { createLoginTickets, hashTicket } from '../src/libraries/login-tickets.js';
import { createPasswordHasher } from '../src/libraries/passwords.js';
import { createSignIn } from '../src/libraries/sign-in.js';
import { createSigningKeys } from '../src/libraries/signing-keys.js';
import { createSigningKeyQueries } from '../src/queries/signing-keys.js';
import { createUserQueries } from '../src/queries/users.js';

const migrationsDir = new URL('../prisma/migrations', import.meta.url).pathname;
const issuer = 'portcullis-auth-test';
const audience = 'portcullis-test';
const keyPrefix = `${testRunId}:auth:`;

/** Every log line the service writes during the run, to check no secret reaches it. */
const logLines: string[] = [];
const logger = createLogger({
  name: 'auth-test',
  level: 'debug',
  destination: {
    write(line: string) {
      logLines.push(line);
    },
  },
});

/** Fake tenant-registry: only the two calls auth makes answer; memberships are test fixtures. */
function fakeTenantRegistry(memberships: Omit<Membership, '$typeName'>[]) {
  const absent = async (): Promise<never> => {
    throw new AppError('FAILED_PRECONDITION', 'not served by the fake tenant-registry');
  };
  const handlers: ServiceHandlers<typeof TenantRegistryService> = {
    createTenant: absent,
    createAssistant: absent,
    addDomain: absent,
    createTeam: absent,
    addMember: absent,
    resolveContext: absent,
    async listUserTenants({ userId }) {
      return { memberships: memberships.filter((m) => m.userId === userId) };
    },
    async getMembership({ tenantId, userId }) {
      const membership = memberships.find((m) => m.tenantId === tenantId && m.userId === userId);
      if (!membership) throw new AppError('NOT_FOUND', 'membership not found');
      return { membership };
    },
  };
  return createGrpcServer({ logger, services: [implement(TenantRegistryService, handlers)] });
}

async function expectRejection(call: Promise<unknown>): Promise<AppError> {
  const error = await call.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

describe('auth service against Postgres, Redis and a fake tenant-registry', () => {
  const secret = randomBytes(32);
  const memberships: Omit<Membership, '$typeName'>[] = [];
  const tenantAlpha = randomUUID();
  const tenantBeta = randomUUID();
  const password = `pw-${randomBytes(12).toString('hex')}`;
  const email = `ada.${testRunId}@Example.com`;
  const secretsSeen: string[] = [password];

  let db: TestDatabase;
  let prisma: PrismaClient;
  let redis: Redis;
  let registry: GrpcServer;
  let registryClient: GrpcClient<typeof TenantRegistryService>;
  let server: GrpcServer;
  let jwks: JwksServer;
  let jwksUrl: URL;
  let client: GrpcClient<typeof AuthService>;
  let userId: string;

  const login = async () => {
    const result = await client.login({ email, password });
    secretsSeen.push(result.loginTicket);
    return result;
  };

  beforeAll(async () => {
    db = await createTestDatabase('auth', migrationsDir);
    prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.appUrl }) });
    redis = new Redis(infra.redisUrl);

    registry = fakeTenantRegistry(memberships);
    const registryPort = await registry.listen('127.0.0.1', 0);
    registry.setServing(true);
    registryClient = createGrpcClient(TenantRegistryService, { address: `127.0.0.1:${registryPort}`, deadlineMs: 3_000 });

    const signingKeys = createSigningKeys({
      store: createSigningKeyQueries(prisma),
      encryption: createKeyEncryption(secret),
      refreshMs: 60_000,
    });
    await signingKeys.ensureActiveKey();
    jwks = createJwksServer({ keys: signingKeys, logger });
    jwksUrl = new URL(JWKS_PATH, `http://127.0.0.1:${await jwks.listen('127.0.0.1', 0)}`);

    const accounts = createAccounts({ users: createUserQueries(prisma), passwords: createPasswordHasher(), logger });
    const signIn = createSignIn({
      accounts,
      tickets: createLoginTickets({ store: redis, keyPrefix, ttlSeconds: 300 }),
      tenants: registryClient,
      tokens: createAccessTokens({ keys: signingKeys, issuer, audience, ttlSeconds: 900 }),
      logger,
    });
    server = createGrpcServer({ logger, services: [createAuthService({ accounts, signIn })] });
    const port = await server.listen('127.0.0.1', 0);
    server.setServing(true);
    client = createGrpcClient(AuthService, { address: `127.0.0.1:${port}`, deadlineMs: 5_000 });

    ({ userId } = await client.signUp({ email, password, displayName: 'Ada' }));
    memberships.push(
      { tenantId: tenantAlpha, tenantName: 'Alpha', userId, role: Role.ADMIN },
      { tenantId: tenantBeta, tenantName: 'Beta', userId, role: Role.USER },
    );
  });

  afterAll(async () => {
    client.close();
    registryClient.close();
    await server.drain(1_000);
    await registry.drain(1_000);
    await jwks.close();
    const keys = await redis.keys(`${keyPrefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await prisma.$disconnect();
    await db.drop();
  });

  describe('sign-up', () => {
    it('stores a lowercased email and an argon2id hash, never the password', async () => {
      expect(userId).toMatch(/^[0-9a-f-]{36}$/);
      const row = await withPg(
        db.ownerUrl,
        async (c) =>
          (await c.query<{ email: string; password_hash: string; display_name: string }>('SELECT * FROM users WHERE id = $1', [userId]))
            .rows[0],
      );
      expect(row).toMatchObject({ email: email.toLowerCase(), display_name: 'Ada', password_hash: expect.stringMatching(/^\$argon2id\$/) });
      expect(row?.password_hash).not.toContain(password);
    });

    it.each([
      ['a malformed email', { email: 'not-an-email', password: 'long enough password' }, 'email'],
      ['an email over 254 characters', { email: `${'a'.repeat(60)}@${'b'.repeat(190)}.com`, password: 'long enough password' }, 'email'],
      ['a password under 12 characters', { email: `short.${testRunId}@example.com`, password: 'elevenchars' }, 'password'],
      ['a password over 256 characters', { email: `long.${testRunId}@example.com`, password: 'p'.repeat(257) }, 'password'],
    ])('refuses %s with INVALID_ARGUMENT', async (_label, request, field) => {
      const error = await expectRejection(client.signUp({ ...request, displayName: 'X' }));
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toContain(field);
    });

    it('refuses a second account for the same email in any case', async () => {
      const error = await expectRejection(
        client.signUp({ email: email.toUpperCase(), password: 'another long password', displayName: '' }),
      );
      expect(error.code).toBe('ALREADY_EXISTS');
      const count = await withPg(
        db.ownerUrl,
        async (c) => (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM users')).rows[0]?.n,
      );
      expect(count).toBe(1);
    });
  });

  describe('login', () => {
    it('returns a ticket, the user and their tenants; Redis holds only the ticket hash, with the TTL', async () => {
      const result = await login();
      expect(result).toMatchObject({ userId, ticketExpiresInSeconds: 300 });
      expect(Buffer.from(result.loginTicket, 'base64url')).toHaveLength(32);
      expect(result.tenants.map(({ tenantId, tenantName, role }) => ({ tenantId, tenantName, role }))).toEqual([
        { tenantId: tenantAlpha, tenantName: 'Alpha', role: Role.ADMIN },
        { tenantId: tenantBeta, tenantName: 'Beta', role: Role.USER },
      ]);

      const key = `${keyPrefix}login-ticket:${hashTicket(result.loginTicket)}`;
      expect(await redis.get(key)).toBe(userId);
      const ttl = await redis.ttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(300);
      const stored = await redis.keys(`${keyPrefix}*`);
      expect(stored.some((k) => k.includes(result.loginTicket))).toBe(false);
    });

    it('gives an unknown email and a wrong password the same UNAUTHENTICATED error', async () => {
      const wrongPassword = await expectRejection(client.login({ email, password: `${password}x` }));
      const unknownEmail = await expectRejection(client.login({ email: `nobody.${testRunId}@example.com`, password }));
      for (const error of [wrongPassword, unknownEmail]) {
        expect({ code: error.code, message: error.message }).toEqual({ code: 'UNAUTHENTICATED', message: 'invalid email or password' });
      }
    });

    it('accepts the email in any case', async () => {
      await expect(client.login({ email: email.toUpperCase(), password })).resolves.toMatchObject({ userId });
    });
  });

  describe('tickets and tenant selection', () => {
    it('inspects a ticket without consuming it', async () => {
      const { loginTicket } = await login();
      await expect(client.inspectLoginTicket({ loginTicket })).resolves.toMatchObject({ userId });
      await expect(client.inspectLoginTicket({ loginTicket })).resolves.toMatchObject({ userId });
      await expect(client.selectTenant({ loginTicket, tenantId: tenantBeta })).resolves.toMatchObject({ tenantId: tenantBeta });
      expect((await expectRejection(client.inspectLoginTicket({ loginTicket }))).code).toBe('UNAUTHENTICATED');
    });

    it('lets a ticket be used once only', async () => {
      const { loginTicket } = await login();
      const first = await client.selectTenant({ loginTicket, tenantId: tenantAlpha });
      secretsSeen.push(first.accessToken);
      expect(first).toMatchObject({ tokenType: 'Bearer', expiresInSeconds: 900, tenantId: tenantAlpha, role: Role.ADMIN });
      const second = await expectRejection(client.selectTenant({ loginTicket, tenantId: tenantAlpha }));
      expect(second.code).toBe('UNAUTHENTICATED');
    });

    it('refuses unknown and malformed tickets', async () => {
      for (const loginTicket of [randomBytes(32).toString('base64url'), 'garbage', '']) {
        expect((await expectRejection(client.selectTenant({ loginTicket, tenantId: tenantAlpha }))).code).toBe('UNAUTHENTICATED');
        expect((await expectRejection(client.inspectLoginTicket({ loginTicket }))).code).toBe('UNAUTHENTICATED');
      }
    });

    it('denies a tenant the user is not a member of', async () => {
      const { loginTicket } = await login();
      const error = await expectRejection(client.selectTenant({ loginTicket, tenantId: randomUUID() }));
      expect({ code: error.code, message: error.message }).toEqual({ code: 'PERMISSION_DENIED', message: 'not a member of this tenant' });
    });
  });

  describe('access tokens and JWKS', () => {
    it('serves public keys only, cacheable for 60 seconds', async () => {
      const response = await fetch(jwksUrl);
      expect(response.status).toBe(200);
      expect(response.headers.get('cache-control')).toContain('max-age=60');
      expect(response.headers.get('content-type')).toBe('application/json');
      const body = (await response.json()) as { keys: JWK[] };
      expect(body.keys).toHaveLength(1);
      expect(body.keys[0]).toEqual({
        kty: 'EC',
        crv: 'P-256',
        x: expect.any(String),
        y: expect.any(String),
        kid: expect.any(String),
        alg: 'ES256',
        use: 'sig',
      });
      expect((await fetch(new URL('/jwks.json', jwksUrl))).status).toBe(404);
      expect((await fetch(jwksUrl, { method: 'POST' })).status).toBe(405);
    });

    it('issues a JWT that verifies against the JWKS over HTTP and carries the right claims', async () => {
      const { loginTicket } = await login();
      const { accessToken } = await client.selectTenant({ loginTicket, tenantId: tenantAlpha });
      secretsSeen.push(accessToken);

      const { payload, protectedHeader } = await jwtVerify(accessToken, createRemoteJWKSet(jwksUrl), {
        issuer,
        audience,
        algorithms: ['ES256'],
      });
      const { keys } = (await (await fetch(jwksUrl)).json()) as { keys: JWK[] };
      expect(protectedHeader).toEqual({ alg: 'ES256', kid: keys[0]?.kid, typ: 'at+jwt' });
      expect(payload).toEqual({
        iss: issuer,
        aud: audience,
        sub: userId,
        tenantId: tenantAlpha,
        role: 'admin',
        iat: expect.any(Number),
        exp: (payload.iat ?? 0) + 900,
        jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
      });

      await expect(jwtVerify(accessToken, createRemoteJWKSet(jwksUrl), { issuer, audience: 'someone-else' })).rejects.toMatchObject({
        code: 'ERR_JWT_CLAIM_VALIDATION_FAILED',
      });
    });

    it('does not verify a token signed by another key, whatever kid it claims', async () => {
      const { loginTicket } = await login();
      const { accessToken } = await client.selectTenant({ loginTicket, tenantId: tenantBeta });
      secretsSeen.push(accessToken);
      const { kid } = decodeProtectedHeader(accessToken);
      const intruder = await generateKeyPair('ES256');
      const forge = (claimedKid: string) =>
        new SignJWT({ tenantId: tenantBeta, role: 'owner' })
          .setProtectedHeader({ alg: 'ES256', kid: claimedKid, typ: 'at+jwt' })
          .setIssuer(issuer)
          .setAudience(audience)
          .setSubject(userId)
          .setIssuedAt()
          .setExpirationTime('5m')
          .setJti(randomUUID())
          .sign(intruder.privateKey);
      const remote = createRemoteJWKSet(jwksUrl);
      await expect(jwtVerify(await forge(kid ?? ''), remote, { issuer, audience })).rejects.toMatchObject({
        code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
      });
      await expect(jwtVerify(await forge('intruder-kid'), remote, { issuer, audience })).rejects.toMatchObject({
        code: 'ERR_JWKS_NO_MATCHING_KEY',
      });
    });

    it('stores private keys encrypted, never as plaintext', async () => {
      const rows = await withPg(
        db.ownerUrl,
        async (c) =>
          (
            await c.query<{ kid: string; public_jwk: JWK; private_key_encrypted: string }>(
              'SELECT kid, public_jwk, private_key_encrypted FROM signing_keys',
            )
          ).rows,
      );
      expect(rows).toHaveLength(1);
      const row = rows[0]!;
      const privateJwk = JSON.parse(createKeyEncryption(secret).decrypt(row.private_key_encrypted, row.kid)) as JWK;
      expect(privateJwk.d).toEqual(expect.any(String));
      expect(row.private_key_encrypted).toMatch(/^v1\./);
      expect(row.private_key_encrypted).not.toContain(privateJwk.d);
      expect(row.private_key_encrypted).not.toMatch(/PRIVATE KEY|"d"/);
      expect(row.public_jwk).not.toHaveProperty('d');
      expect(() => createKeyEncryption(randomBytes(32)).decrypt(row.private_key_encrypted, row.kid)).toThrow(
        expect.objectContaining({ code: 'INTERNAL' }),
      );
    });

    it('gives replicas starting together one shared signing key', async () => {
      const fresh = await createTestDatabase('auth_keys', migrationsDir);
      const replicas = [0, 1, 2, 3].map(() => new PrismaClient({ adapter: new PrismaPg({ connectionString: fresh.appUrl }) }));
      try {
        const rings = replicas.map((replica) =>
          createSigningKeys({ store: createSigningKeyQueries(replica), encryption: createKeyEncryption(secret), refreshMs: 60_000 }),
        );
        const started = await Promise.all(rings.map((ring) => ring.ensureActiveKey()));
        expect(started.filter((s) => s.created)).toHaveLength(1);
        expect(new Set(started.map((s) => s.kid)).size).toBe(1);
        const signers = await Promise.all(rings.map((ring) => ring.currentSigner()));
        expect(new Set(signers.map((s) => s.kid))).toEqual(new Set([started[0]?.kid]));
        const count = await withPg(
          fresh.ownerUrl,
          async (c) => (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM signing_keys')).rows[0]?.n,
        );
        expect(count).toBe(1);
      } finally {
        await Promise.all(replicas.map((replica) => replica.$disconnect()));
        await fresh.drop();
      }
    });
  });

  it('keeps identity tables global: no row-level security, readable by the app role without a tenant', async () => {
    const flags = await withPg(
      db.ownerUrl,
      async (c) =>
        (
          await c.query<{ relname: string; relrowsecurity: boolean }>(
            "SELECT relname, relrowsecurity FROM pg_class WHERE relname IN ('users', 'signing_keys') ORDER BY relname",
          )
        ).rows,
    );
    expect(flags).toEqual([
      { relname: 'signing_keys', relrowsecurity: false },
      { relname: 'users', relrowsecurity: false },
    ]);
    const seen = await withPg(db.appUrl, async (c) => (await c.query('SELECT id FROM users WHERE id = $1', [userId])).rowCount);
    expect(seen).toBe(1);
  });

  it('never writes the password, a ticket or a token to the log', () => {
    const log = logLines.join('');
    expect(log).toContain('user signed up');
    expect(log).toContain('access token issued');
    expect(secretsSeen.length).toBeGreaterThan(3);
    for (const secretValue of secretsSeen) expect(log).not.toContain(secretValue);
  });
});
