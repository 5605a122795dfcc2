import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PrismaPg } from '@prisma/adapter-pg';
import {
  AppError,
  connectNats,
  createAuditPublisher,
  createChangeAuditPublisher,
  createGrpcClient,
  createGrpcServer,
  createTrustedIdentities,
  createLogger,
  implement,
  migrate,
  type AuditPublisher,
  type GrpcClient,
  type GrpcServer,
  type NatsConnection,
  type ServiceHandlers,
} from '@portcullis/kit';
import { Outcome, type AuditEvent } from '@portcullis/proto/audit';
import { ApiKeyKind, AuthService } from '@portcullis/proto/auth';
import { PrincipalKind, Role, type Principal } from '@portcullis/proto/common';
import { TenantRegistryService, type Membership } from '@portcullis/proto/tenant';
import {
  createTestDatabase,
  infra,
  pollUntil,
  startAuditRecorder,
  testAppRole,
  testRunId,
  withPg,
  type AuditRecorder,
  type TestDatabase,
} from '@portcullis/test';
import { Redis } from 'ioredis';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  generateKeyPair,
  jwtVerify,
  SignJWT,
  type JWK,
} from 'jose';
import { PrismaClient } from '../src/generated/prisma/client.js';
import { createAuthService } from '../src/grpc/auth-service.js';
import { createJwksServer, JWKS_PATH, type JwksServer } from '../src/http/jwks-server.js';
import { createAccessTokens, type AccessTokens } from '../src/libraries/access-tokens.js';
import { createAccounts } from '../src/libraries/accounts.js';
import { createApiKeys, hashSecret } from '../src/libraries/api-keys.js';
import { createKeyEncryption } from '../src/libraries/key-encryption.js';
import { accountThrottleKey, createLoginThrottle, createRedisFailureCounters } from '../src/libraries/login-throttle.js';
import { createLoginTickets, hashTicket } from '../src/libraries/login-tickets.js';
import { createPasswordHasher } from '../src/libraries/passwords.js';
import { createPhoneVerification, deriveCodeKey, hashCode } from '../src/libraries/phone-verification.js';
import { hashRefreshToken, purgeExpiredRefreshTokens } from '../src/libraries/refresh-tokens.js';
import { createSessions, type Sessions } from '../src/libraries/sessions.js';
import { createSignIn } from '../src/libraries/sign-in.js';
import { createSigningKeys } from '../src/libraries/signing-keys.js';
import { createTokenRefresh, REUSE_MESSAGE } from '../src/libraries/token-refresh.js';
import type { SmsSender } from '../src/libraries/sms-senders.js';
import { createApiKeyQueries } from '../src/queries/api-keys.js';
import { createRobotTokens } from '../src/libraries/robot-tokens.js';
import { createRobots } from '../src/libraries/robots.js';
import { createServiceTokens } from '../src/libraries/service-tokens.js';
import { createRobotQueries, createVerificationKeyQueries } from '../src/queries/robots.js';
import { createPhoneCodeQueries, phoneCodeKey, phoneResendKey } from '../src/queries/phone-codes.js';
import { createRefreshTokenQueries } from '../src/queries/refresh-tokens.js';
import { createSessionQueries, sessionKey, userSessionsKey } from '../src/queries/sessions.js';
import { createSigningKeyQueries } from '../src/queries/signing-keys.js';
import { createUserQueries } from '../src/queries/users.js';
import { rejectionOf } from '../src/test-support/rejections.js';

const identities = createTrustedIdentities();

const migrationsDir = new URL('../prisma/migrations', import.meta.url).pathname;
const issuer = 'portcullis-auth-test';
const audience = 'portcullis-test';
const keyPrefix = `${testRunId}:auth:`;
const refreshTtlSeconds = 3_600;
const maxFailuresPerAccount = 5;
const maxFailuresPerIp = 8;
const keySchedule = { propagationSeconds: 60, accessTokenTtlSeconds: 900 };
const phoneCodeTtlSeconds = 120;
const phoneResendSeconds = 60;
const phoneMaxAttempts = 3;

/** Every SMS "sent" during the run; a test can make the provider fail. */
const smsOutbox: { phone: string; code: string }[] = [];
let smsFailure: Error | undefined;
const recordingSender: SmsSender = {
  send(phone, code) {
    if (smsFailure) return Promise.reject(smsFailure);
    smsOutbox.push({ phone, code });
    return Promise.resolve();
  },
};

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

/** member_since of fixture memberships that do not set their own. */
const joinedLongAgo = new Date(Date.now() - 86_400_000);

/** Fake tenant-registry: only the two calls auth makes answer; memberships are test fixtures. */
function fakeTenantRegistry(memberships: Omit<Membership, '$typeName'>[]) {
  const absent = async (): Promise<never> => {
    throw new AppError('FAILED_PRECONDITION', 'not served by the fake tenant-registry');
  };
  const handlers: ServiceHandlers<typeof TenantRegistryService> = {
    createTenant: absent,
    createAssistant: absent,
    addDomain: absent,
    verifyDomain: absent,
    createTeam: absent,
    addMember: absent,
    resolveContext: absent,
    removeMember: absent,
    addTeamMember: absent,
    removeTeamMember: absent,
    moveDomain: absent,
    setTenantStatus: absent,
    setTenantPlan: absent,
    listTeams: absent,
    listUserTeams: absent,
    createChatGroup: absent,
    listChatGroups: absent,
    addChatGroupMember: absent,
    removeChatGroupMember: absent,
    listChatGroupMembers: absent,
    async listUserTenants({ userId }) {
      return { memberships: memberships.filter((m) => m.userId === userId) };
    },
    async getMembership({ tenantId, userId }) {
      const membership = memberships.find((m) => m.tenantId === tenantId && m.userId === userId);
      if (!membership) throw new AppError('NOT_FOUND', 'membership not found');
      // A fixture that does not say when it began began before anything of the run; one with
      // memberSince: undefined stands for a tenant-registry that leaves member_since unset.
      return { membership: 'memberSince' in membership ? membership : { ...membership, memberSince: timestampFromDate(joinedLongAgo) } };
    },
  };
  return createGrpcServer({ identity: identities['tenant-registry'], logger, services: [implement(TenantRegistryService, handlers)] });
}

describe('auth service against Postgres, Redis and a fake tenant-registry', () => {
  const secret = randomBytes(32);
  const memberships: Omit<Membership, '$typeName'>[] = [];
  const tenantAlpha = randomUUID();
  const tenantBeta = randomUUID();
  const password = `pw-${randomBytes(12).toString('hex')}`;
  const email = `ada.${testRunId}@Example.com`;
  const phone = '+86 138 0013 8000';
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
  let sessions: Sessions;
  let tokens: AccessTokens;
  let nc: NatsConnection;
  /** The service's audit events, published to JetStream as main.ts does (without the spool). */
  let audit: Pick<AuditPublisher, 'publish'>;
  let recorder: AuditRecorder;

  /** Waits for an audit event of the run's tenants of `kind` that `matches`, as JetStream delivered it. */
  const auditedEvent = (kind: string, matches: (event: AuditEvent) => boolean) =>
    pollUntil(() => recorder.events.find((event) => event.kind === kind && matches(event)), { timeoutMs: 10_000, what: `a ${kind} event` });

  const login = async () => {
    const result = await client.login({ email, password });
    secretsSeen.push(result.loginTicket);
    return result;
  };

  /** Signs in (login + select-tenant) and returns the tenant-bound response. */
  const openSession = async (tenantId = tenantAlpha, extra: { clientIp?: string; userAgent?: string } = {}) => {
    const { loginTicket } = await login();
    const session = await client.selectTenant({ loginTicket, tenantId, ...extra });
    secretsSeen.push(session.accessToken, session.refreshToken);
    return session;
  };

  const refreshWith = async (refreshToken: string) => {
    const result = await client.refreshTokens({ refreshToken });
    secretsSeen.push(result.accessToken, result.refreshToken);
    return result;
  };

  /** Another account, with its own password, a member of the given tenants. */
  const newUser = async (label: string, tenants: { tenantId: string; role: Role }[] = []) => {
    const other = {
      email: `${label}.${testRunId}@example.com`,
      password: `pw-${randomBytes(12).toString('hex')}`,
      phone: `+86139${String(randomInt(0, 100_000_000)).padStart(8, '0')}`,
    };
    secretsSeen.push(other.password);
    const { userId: id } = await client.signUp({ ...other, displayName: label });
    for (const { tenantId, role } of tenants) memberships.push({ tenantId, tenantName: tenantId.slice(0, 8), userId: id, role });
    return { ...other, userId: id };
  };

  const refreshRows = (sessionId: string) =>
    withPg(
      db.ownerUrl,
      async (c) =>
        (
          await c.query<{ token_hash: string; family_id: string; used_at: Date | null; revoked_at: Date | null; tenant_id: string }>(
            'SELECT token_hash, family_id, used_at, revoked_at, tenant_id FROM refresh_tokens WHERE session_id = $1 ORDER BY created_at, id',
            [sessionId],
          )
        ).rows,
    );

  beforeAll(async () => {
    db = await createTestDatabase('auth', migrationsDir);
    prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.appUrl }) });
    redis = new Redis(infra.redisUrl);
    nc = await connectNats({ servers: infra.natsUrl, name: 'auth-test', logger });
    recorder = await startAuditRecorder({ nc, subjectPrefix: testRunId, name: `auth_test_${testRunId}` });
    audit = createChangeAuditPublisher({ publisher: createAuditPublisher({ nc, subjectPrefix: testRunId }), logger });

    registry = fakeTenantRegistry(memberships);
    const registryPort = await registry.listen('127.0.0.1', 0);
    registry.setServing(true);
    registryClient = createGrpcClient(TenantRegistryService, {
      address: `127.0.0.1:${registryPort}`,
      deadlineMs: 3_000,
      credential: identities.auth.credentialFor('tenant-registry'),
    });

    const signingKeys = createSigningKeys({
      store: createSigningKeyQueries(prisma),
      encryption: createKeyEncryption(secret),
      refreshMs: 60_000,
      ...keySchedule,
    });
    await signingKeys.ensureActiveKey();
    jwks = createJwksServer({ keys: signingKeys, logger });
    jwksUrl = new URL(JWKS_PATH, `http://127.0.0.1:${await jwks.listen('127.0.0.1', 0)}`);

    const users = createUserQueries(prisma);
    const accounts = createAccounts({ users, passwords: createPasswordHasher(), logger });
    tokens = createAccessTokens({ keys: signingKeys, issuer, audience, ttlSeconds: 900 });
    const refreshTokens = createRefreshTokenQueries(prisma);
    sessions = createSessions({
      store: createSessionQueries(redis, keyPrefix),
      refreshTokens,
      ttlSeconds: refreshTtlSeconds,
      audit,
      logger,
    });
    const tickets = createLoginTickets({ store: redis, keyPrefix, ttlSeconds: 300 });
    const phoneVerification = createPhoneVerification({
      tickets,
      users,
      codes: createPhoneCodeQueries(redis, keyPrefix),
      sender: recordingSender,
      codeKey: deriveCodeKey(secret),
      ttlSeconds: phoneCodeTtlSeconds,
      resendSeconds: phoneResendSeconds,
      maxAttempts: phoneMaxAttempts,
      maxSendsPerDay: 10,
      maxSendsPerNumberPerDay: 30,
      maxFailuresPerDay: 20,
      logger,
    });
    const signIn = createSignIn({
      accounts,
      throttle: createLoginThrottle({
        ...createRedisFailureCounters({
          redis,
          keyPrefix,
          windowSeconds: 900,
          maxPerAccount: maxFailuresPerAccount,
          maxPerIp: maxFailuresPerIp,
        }),
        logger,
      }),
      tickets,
      tenants: registryClient,
      sessions,
      tokens,
      audit,
      logger,
    });
    const refresh = createTokenRefresh({
      refreshTokens,
      sessions,
      tenants: registryClient,
      tokens,
      ttlSeconds: refreshTtlSeconds,
      audit,
      logger,
    });
    server = createGrpcServer({
      identity: identities.auth,
      logger,
      services: [
        createAuthService({
          accounts,
          signIn,
          refresh,
          sessions,
          signingKeys,
          phone: phoneVerification,
          apiKeys: createApiKeys({ store: createApiKeyQueries(prisma), tenants: registryClient, audit, logger }),
          serviceTokens: createServiceTokens({ identity: identities.auth, ttlSeconds: 300 }),
          // Robots have their own integration test (robots.int.test.ts); here they are only wired.
          robots: createRobots({
            store: createRobotQueries(prisma),
            tokens: createRobotTokens({
              signer: signingKeys,
              verificationKeys: createVerificationKeyQueries(prisma),
              issuer,
              audience,
              keyRefreshMs: 60_000,
            }),
            tenants: registryClient,
            audit,
            logger,
          }),
        }),
      ],
    });
    const port = await server.listen('127.0.0.1', 0);
    server.setServing(true);
    client = createGrpcClient(AuthService, {
      address: `127.0.0.1:${port}`,
      deadlineMs: 5_000,
      credential: identities['api-gateway'].credentialFor('auth'),
    });

    ({ userId } = await client.signUp({ email, password, displayName: 'Ada', phone }));
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
    await recorder.stop();
    await nc.drain();
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
      expect(row).toMatchObject({
        email: email.toLowerCase(),
        display_name: 'Ada',
        password_hash: expect.stringMatching(/^\$argon2id\$/),
        phone: '+8613800138000',
        phone_verified_at: null,
      });
      expect(row?.password_hash).not.toContain(password);
    });

    it.each([
      ['a malformed email', { email: 'not-an-email', password: 'long enough password' }, 'email'],
      ['an email over 254 characters', { email: `${'a'.repeat(60)}@${'b'.repeat(190)}.com`, password: 'long enough password' }, 'email'],
      ['a password under 12 characters', { email: `short.${testRunId}@example.com`, password: 'elevenchars' }, 'password'],
      ['a password over 256 characters', { email: `long.${testRunId}@example.com`, password: 'p'.repeat(257) }, 'password'],
      [
        'a phone number not in E.164 form',
        { email: `phone.${testRunId}@example.com`, password: 'long enough password', phone: '13800138000' },
        'phone',
      ],
      ['a missing phone number', { email: `nophone.${testRunId}@example.com`, password: 'long enough password', phone: '' }, 'phone'],
    ])('refuses %s with INVALID_ARGUMENT', async (_label, request, field) => {
      const error = await rejectionOf(client.signUp({ phone, ...request, displayName: 'X' }));
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toContain(field);
    });

    it('refuses a second account for the same email in any case', async () => {
      const error = await rejectionOf(
        client.signUp({ email: email.toUpperCase(), password: 'another long password', displayName: '', phone }),
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
      const wrongPassword = await rejectionOf(client.login({ email, password: `${password}x` }));
      const unknownEmail = await rejectionOf(client.login({ email: `nobody.${testRunId}@example.com`, password }));
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
      expect((await rejectionOf(client.inspectLoginTicket({ loginTicket }))).code).toBe('UNAUTHENTICATED');
    });

    it('lets a ticket be used once only', async () => {
      const { loginTicket } = await login();
      const first = await client.selectTenant({ loginTicket, tenantId: tenantAlpha });
      secretsSeen.push(first.accessToken);
      expect(first).toMatchObject({ tokenType: 'Bearer', expiresInSeconds: 900, tenantId: tenantAlpha, role: Role.ADMIN });
      const second = await rejectionOf(client.selectTenant({ loginTicket, tenantId: tenantAlpha }));
      expect(second.code).toBe('UNAUTHENTICATED');
    });

    it('refuses unknown and malformed tickets', async () => {
      for (const loginTicket of [randomBytes(32).toString('base64url'), 'garbage', '']) {
        expect((await rejectionOf(client.selectTenant({ loginTicket, tenantId: tenantAlpha }))).code).toBe('UNAUTHENTICATED');
        expect((await rejectionOf(client.inspectLoginTicket({ loginTicket }))).code).toBe('UNAUTHENTICATED');
      }
    });

    it('denies a tenant the user is not a member of', async () => {
      const { loginTicket } = await login();
      const error = await rejectionOf(client.selectTenant({ loginTicket, tenantId: randomUUID() }));
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
      const { accessToken, sessionId, refreshToken } = await client.selectTenant({ loginTicket, tenantId: tenantAlpha });
      secretsSeen.push(accessToken, refreshToken);

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
        sid: sessionId,
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
          createSigningKeys({
            store: createSigningKeyQueries(replica),
            encryption: createKeyEncryption(secret),
            refreshMs: 60_000,
            ...keySchedule,
          }),
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

  describe('sessions and refresh tokens', () => {
    it('select-tenant opens a session in Redis under the documented key, and the token carries its sid', async () => {
      const session = await openSession(tenantAlpha, { clientIp: '192.0.2.44', userAgent: 'IntegrationTest/1.0' });
      expect(session).toMatchObject({ refreshExpiresInSeconds: refreshTtlSeconds, sessionId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
      expect(Buffer.from(session.refreshToken, 'base64url')).toHaveLength(32);
      expect(decodeJwt(session.accessToken).sid).toBe(session.sessionId);

      const key = `${keyPrefix}session:${session.sessionId}`;
      expect(sessionKey(keyPrefix, session.sessionId)).toBe(key);
      const fields = await redis.hgetall(key);
      expect(fields).toEqual({
        userId,
        tenantId: tenantAlpha,
        createdAt: expect.any(String),
        lastUsedAt: fields.createdAt,
        clientIp: '192.0.2.44',
        userAgent: 'IntegrationTest/1.0',
      });
      expect(new Date(fields.createdAt ?? '').getTime()).toBeGreaterThan(Date.now() - 60_000);
      const ttl = await redis.ttl(key);
      expect(ttl).toBeGreaterThan(refreshTtlSeconds - 60);
      expect(ttl).toBeLessThanOrEqual(refreshTtlSeconds);
      expect(await redis.sismember(`${keyPrefix}user-sessions:${userId}`, session.sessionId)).toBe(1);
      expect(userSessionsKey(keyPrefix, userId)).toBe(`${keyPrefix}user-sessions:${userId}`);

      // Postgres holds the first token of a new family (family = session), as a hash only.
      const rows = await refreshRows(session.sessionId);
      expect(rows).toEqual([
        {
          token_hash: hashRefreshToken(session.refreshToken),
          family_id: session.sessionId,
          used_at: null,
          revoked_at: null,
          tenant_id: tenantAlpha,
        },
      ]);
      const dump = await withPg(db.ownerUrl, async (c) => JSON.stringify((await c.query('SELECT * FROM refresh_tokens')).rows));
      expect(dump).not.toContain(session.refreshToken);
    });

    it('purges refresh tokens only once they have been expired for longer than the retention', async () => {
      const old = await openSession(tenantAlpha);
      const recent = await openSession(tenantAlpha);
      const live = await openSession(tenantAlpha);
      await withPg(db.ownerUrl, async (c) => {
        await c.query(`UPDATE refresh_tokens SET expires_at = now() - interval '8 days' WHERE session_id = $1`, [old.sessionId]);
        await c.query(`UPDATE refresh_tokens SET expires_at = now() - interval '1 day' WHERE session_id = $1`, [recent.sessionId]);
      });
      const purged = await purgeExpiredRefreshTokens(createRefreshTokenQueries(prisma), { retainSeconds: 7 * 86_400, batchSize: 1 });
      expect(purged).toBeGreaterThanOrEqual(1);
      expect(await refreshRows(old.sessionId)).toEqual([]);
      expect(await refreshRows(recent.sessionId)).toHaveLength(1);
      expect(await refreshRows(live.sessionId)).toHaveLength(1);
    });

    it('rotates the refresh token on every use, keeping the sid and restarting the session TTL', async () => {
      const session = await openSession(tenantBeta);
      await redis.expire(`${keyPrefix}session:${session.sessionId}`, 100);
      const first = await refreshWith(session.refreshToken);
      expect(first).toMatchObject({
        tokenType: 'Bearer',
        expiresInSeconds: 900,
        refreshExpiresInSeconds: refreshTtlSeconds,
        tenantId: tenantBeta,
        role: Role.USER,
        sessionId: session.sessionId,
      });
      expect(first.refreshToken).not.toBe(session.refreshToken);
      expect(await redis.ttl(`${keyPrefix}session:${session.sessionId}`)).toBeGreaterThan(refreshTtlSeconds - 60);

      const { payload } = await jwtVerify(first.accessToken, createRemoteJWKSet(jwksUrl), { issuer, audience });
      expect(payload).toMatchObject({ sub: userId, tenantId: tenantBeta, role: 'user', sid: session.sessionId });

      const second = await refreshWith(first.refreshToken);
      expect(second.sessionId).toBe(session.sessionId);
      const rows = await refreshRows(session.sessionId);
      expect(rows.map((row) => [row.token_hash, row.family_id, row.used_at !== null, row.revoked_at])).toEqual([
        [hashRefreshToken(session.refreshToken), session.sessionId, true, null],
        [hashRefreshToken(first.refreshToken), session.sessionId, true, null],
        [hashRefreshToken(second.refreshToken), session.sessionId, false, null],
      ]);
    });

    it('detects reuse: an already used token ends the session and revokes the whole family', async () => {
      const session = await openSession();
      const next = await refreshWith(session.refreshToken);
      const reuse = await rejectionOf(client.refreshTokens({ refreshToken: session.refreshToken }));
      expect({ code: reuse.code, message: reuse.message }).toEqual({ code: 'UNAUTHENTICATED', message: REUSE_MESSAGE });
      expect(await redis.exists(`${keyPrefix}session:${session.sessionId}`)).toBe(0);
      expect(await redis.sismember(`${keyPrefix}user-sessions:${userId}`, session.sessionId)).toBe(0);
      expect((await refreshRows(session.sessionId)).every((row) => row.revoked_at !== null)).toBe(true);
      // The successor, whoever holds it, no longer works either.
      expect((await rejectionOf(client.refreshTokens({ refreshToken: next.refreshToken }))).code).toBe('UNAUTHENTICATED');
    });

    it('lets exactly one of several simultaneous refreshes with the same token succeed', async () => {
      for (let round = 0; round < 3; round += 1) {
        const session = await openSession();
        const outcomes = await Promise.allSettled([0, 1, 2, 3].map(() => refreshWith(session.refreshToken)));
        const fulfilled = outcomes.filter((outcome) => outcome.status === 'fulfilled');
        expect(fulfilled).toHaveLength(1);
        // The others presented a spent token: that is reuse, so the session ends (clients must
        // not refresh in parallel).
        for (const outcome of outcomes) {
          if (outcome.status === 'rejected') expect(outcome.reason).toMatchObject({ code: 'UNAUTHENTICATED', message: REUSE_MESSAGE });
        }
        // One successor was minted, never more.
        const rows = await refreshRows(session.sessionId);
        expect(rows).toHaveLength(2);
        expect(await redis.exists(`${keyPrefix}session:${session.sessionId}`)).toBe(0);
      }
    });

    it('keeps the spent token locked until its successor is stored: a slow winner still wins', async () => {
      // The first refresh to spend the token is held up inside its transaction; the second,
      // arriving meanwhile, must wait for it and only then find the token spent (reuse).
      let holdUp: (() => void) | undefined;
      const held = new Promise<void>((resolve) => {
        holdUp = resolve;
      });
      let touches = 0;
      const slow = createTokenRefresh({
        refreshTokens: createRefreshTokenQueries(prisma),
        sessions: {
          end: sessions.end,
          async touch(sessionId, owner) {
            touches += 1;
            if (touches === 1) await held;
            return sessions.touch(sessionId, owner);
          },
        },
        tenants: registryClient,
        tokens,
        ttlSeconds: refreshTtlSeconds,
        audit,
        logger,
      });
      const session = await openSession();
      const settle = (call: Promise<unknown>) =>
        call.then(
          (value) => value,
          (error: unknown) => error,
        );
      const first = settle(slow.refresh(session.refreshToken));
      let second: Promise<unknown> | undefined;
      try {
        await pollUntil(() => (touches === 1 ? true : undefined), { what: 'the first refresh to spend the token' });
        second = settle(slow.refresh(session.refreshToken));
        // The second refresh must be stuck on the spent row's lock, not past it.
        await pollUntil(
          () =>
            withPg(db.ownerUrl, async (c) => {
              const { rows } = await c.query<{ n: number }>(
                `SELECT count(*)::int AS n FROM pg_stat_activity
                  WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%UPDATE refresh_tokens SET used_at%'`,
              );
              return rows[0]?.n === 1 ? true : undefined;
            }),
          { what: 'the second refresh to wait for the row lock' },
        );
      } finally {
        holdUp?.();
      }
      expect(await first).toMatchObject({ sessionId: session.sessionId });
      expect(await second).toMatchObject({ code: 'UNAUTHENTICATED', message: REUSE_MESSAGE });
      expect(await refreshRows(session.sessionId)).toHaveLength(2);
    });

    it('refuses unknown, malformed and expired refresh tokens', async () => {
      for (const refreshToken of [randomBytes(32).toString('base64url'), 'garbage', '']) {
        const error = await rejectionOf(client.refreshTokens({ refreshToken }));
        expect({ code: error.code, message: error.message }).toEqual({
          code: 'UNAUTHENTICATED',
          message: 'invalid or expired refresh token',
        });
      }
      const session = await openSession();
      await withPg(db.ownerUrl, (c) =>
        c.query("UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1", [
          hashRefreshToken(session.refreshToken),
        ]),
      );
      const expired = await rejectionOf(client.refreshTokens({ refreshToken: session.refreshToken }));
      expect({ code: expired.code, message: expired.message }).toEqual({
        code: 'UNAUTHENTICATED',
        message: 'invalid or expired refresh token',
      });
      expect((await refreshRows(session.sessionId))[0]?.used_at).toBeNull();
    });

    it('re-checks the membership: a changed role is in the new token, a removed membership ends the session', async () => {
      const tenantGamma = randomUUID();
      const carol = await newUser('carol', [{ tenantId: tenantGamma, role: Role.ADMIN }]);
      const { loginTicket } = await client.login({ email: carol.email, password: carol.password });
      const session = await client.selectTenant({ loginTicket, tenantId: tenantGamma });
      secretsSeen.push(session.accessToken, session.refreshToken);
      expect(session.role).toBe(Role.ADMIN);

      const membership = memberships.find((m) => m.userId === carol.userId && m.tenantId === tenantGamma)!;
      membership.role = Role.USER;
      const demoted = await refreshWith(session.refreshToken);
      expect(demoted.role).toBe(Role.USER);
      expect(decodeJwt(demoted.accessToken)).toMatchObject({ role: 'user', sid: session.sessionId });

      memberships.splice(memberships.indexOf(membership), 1);
      const denied = await rejectionOf(client.refreshTokens({ refreshToken: demoted.refreshToken }));
      expect({ code: denied.code, message: denied.message }).toEqual({ code: 'PERMISSION_DENIED', message: 'not a member of this tenant' });
      expect(await redis.exists(`${keyPrefix}session:${session.sessionId}`)).toBe(0);
      expect((await refreshRows(session.sessionId)).every((row) => row.revoked_at !== null)).toBe(true);
    });

    it("lists the user's live sessions and drops ended ones from the set", async () => {
      const dave = await newUser('dave', [{ tenantId: tenantAlpha, role: Role.USER }]);
      const open = async (userAgent: string) => {
        const { loginTicket } = await client.login({ email: dave.email, password: dave.password });
        const session = await client.selectTenant({ loginTicket, tenantId: tenantAlpha, clientIp: '2001:db8::7', userAgent });
        secretsSeen.push(session.accessToken, session.refreshToken);
        return session;
      };
      const first = await open('first');
      const second = await open('second');
      // A session that expired (its key is gone) while still in the set.
      await redis.del(`${keyPrefix}session:${first.sessionId}`);
      const { sessions } = await client.listSessions({ userId: dave.userId });
      expect(sessions.map((s) => ({ sessionId: s.sessionId, tenantId: s.tenantId, clientIp: s.clientIp, userAgent: s.userAgent }))).toEqual(
        [{ sessionId: second.sessionId, tenantId: tenantAlpha, clientIp: '2001:db8::7', userAgent: 'second' }],
      );
      expect(timestampDate(sessions[0]!.createdAt!).getTime()).toBeGreaterThan(Date.now() - 60_000);
      expect(timestampDate(sessions[0]!.lastUsedAt!).getTime()).toBeGreaterThan(Date.now() - 60_000);
      expect(await redis.smembers(`${keyPrefix}user-sessions:${dave.userId}`)).toEqual([second.sessionId]);
      expect((await rejectionOf(client.listSessions({ userId: 'not-a-uuid' }))).code).toBe('INVALID_ARGUMENT');
    });

    it("revokes one session of the user's own — never another user's — at once and for good", async () => {
      const erin = await newUser('erin', [{ tenantId: tenantAlpha, role: Role.USER }]);
      const { loginTicket } = await client.login({ email: erin.email, password: erin.password });
      const erinSession = await client.selectTenant({ loginTicket, tenantId: tenantAlpha });
      secretsSeen.push(erinSession.accessToken, erinSession.refreshToken);
      const mine = await openSession();

      const notYours = await rejectionOf(client.revokeSession({ userId, sessionId: erinSession.sessionId }));
      expect({ code: notYours.code, message: notYours.message }).toEqual({ code: 'NOT_FOUND', message: 'session not found' });
      expect(await redis.exists(`${keyPrefix}session:${erinSession.sessionId}`)).toBe(1);
      expect((await refreshRows(erinSession.sessionId))[0]?.revoked_at).toBeNull();

      await client.revokeSession({ userId, sessionId: mine.sessionId });
      expect(await redis.exists(`${keyPrefix}session:${mine.sessionId}`)).toBe(0);
      expect((await refreshRows(mine.sessionId))[0]?.revoked_at).toEqual(expect.any(Date));
      expect((await rejectionOf(client.refreshTokens({ refreshToken: mine.refreshToken }))).code).toBe('UNAUTHENTICATED');
      expect((await rejectionOf(client.revokeSession({ userId, sessionId: mine.sessionId }))).code).toBe('NOT_FOUND');
      expect((await rejectionOf(client.revokeSession({ userId, sessionId: 'x' }))).code).toBe('INVALID_ARGUMENT');
      // Erin's session still refreshes.
      await expect(refreshWith(erinSession.refreshToken)).resolves.toMatchObject({ sessionId: erinSession.sessionId });
    });

    it('revokes every session of the user and says how many', async () => {
      const frank = await newUser('frank', [
        { tenantId: tenantAlpha, role: Role.USER },
        { tenantId: tenantBeta, role: Role.OWNER },
      ]);
      const opened = [];
      for (const tenantId of [tenantAlpha, tenantBeta, tenantAlpha]) {
        const { loginTicket } = await client.login({ email: frank.email, password: frank.password });
        const session = await client.selectTenant({ loginTicket, tenantId });
        secretsSeen.push(session.accessToken, session.refreshToken);
        opened.push(session);
      }
      const mine = await openSession();
      await expect(client.revokeAllSessions({ userId: frank.userId })).resolves.toMatchObject({ revoked: 3 });
      for (const session of opened) {
        expect(await redis.exists(`${keyPrefix}session:${session.sessionId}`)).toBe(0);
        expect((await refreshRows(session.sessionId)).every((row) => row.revoked_at !== null)).toBe(true);
        expect((await rejectionOf(client.refreshTokens({ refreshToken: session.refreshToken }))).code).toBe('UNAUTHENTICATED');
      }
      await expect(client.listSessions({ userId: frank.userId })).resolves.toMatchObject({ sessions: [] });
      await expect(client.revokeAllSessions({ userId: frank.userId })).resolves.toMatchObject({ revoked: 0 });
      // Someone else's session is untouched.
      expect(await redis.exists(`${keyPrefix}session:${mine.sessionId}`)).toBe(1);
    });
  });

  describe('sign-in throttling', () => {
    const clientIp = '203.0.113.7';

    it('refuses the right password after 5 failures; another account from the same address only at the address cap', async () => {
      const grace = await newUser('grace');
      const heidi = await newUser('heidi');
      const attempt = (who: { email: string }, pw: string, ip = clientIp) => client.login({ email: who.email, password: pw, clientIp: ip });

      for (let failure = 0; failure < maxFailuresPerAccount; failure += 1) {
        expect((await rejectionOf(attempt(grace, 'wrong password!!'))).code).toBe('UNAUTHENTICATED');
      }
      const refused = await rejectionOf(attempt(grace, grace.password));
      expect(refused.code).toBe('RATE_LIMITED');
      expect(refused.message).toMatch(/^too many failed sign-ins; try again in \d+ seconds$/);
      const accountKey = `${keyPrefix}login-failures:account:${accountThrottleKey(grace.email)}`;
      const ttl = await redis.ttl(accountKey);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(900);
      // Keys carry a hash, never the email.
      expect((await redis.keys(`${keyPrefix}login-failures:*`)).some((key) => key.includes('@'))).toBe(false);

      // Same address, other account: not blocked by grace's lock.
      await expect(attempt(heidi, heidi.password)).resolves.toMatchObject({ userId: heidi.userId });
      expect(await redis.get(`${keyPrefix}login-failures:ip:${clientIp}`)).toBe(String(maxFailuresPerAccount));
      // Up to the address cap (8 failures from this address), then heidi is refused too.
      for (let failure = maxFailuresPerAccount; failure < maxFailuresPerIp; failure += 1) {
        expect((await rejectionOf(attempt(heidi, 'wrong password!!'))).code).toBe('UNAUTHENTICATED');
      }
      expect((await rejectionOf(attempt(heidi, heidi.password))).code).toBe('RATE_LIMITED');
      // From another address heidi (3 failures, below her own cap) gets in.
      await expect(attempt(heidi, heidi.password, '198.51.100.20')).resolves.toMatchObject({ userId: heidi.userId });
      // Grace stays locked out from anywhere.
      expect((await rejectionOf(attempt(grace, grace.password, '198.51.100.21'))).code).toBe('RATE_LIMITED');
    });

    it('resets the account count after a successful sign-in', async () => {
      const ivan = await newUser('ivan');
      for (let round = 0; round < 2; round += 1) {
        for (let failure = 0; failure < maxFailuresPerAccount - 1; failure += 1) {
          expect((await rejectionOf(client.login({ email: ivan.email, password: 'wrong password!!' }))).code).toBe('UNAUTHENTICATED');
        }
        await expect(client.login({ email: ivan.email, password: ivan.password })).resolves.toMatchObject({ userId: ivan.userId });
        expect(await redis.exists(`${keyPrefix}login-failures:account:${accountThrottleKey(ivan.email)}`)).toBe(0);
      }
    });

    it('refuses a malformed client address', async () => {
      expect((await rejectionOf(client.login({ email, password, clientIp: 'somewhere' }))).code).toBe('INVALID_ARGUMENT');
    });

    it('fails closed with DEPENDENCY_UNAVAILABLE when Redis is unreachable', async () => {
      const unreachable = new Redis('redis://127.0.0.1:1', { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false });
      try {
        const isolated = createSignIn({
          accounts: createAccounts({ users: createUserQueries(prisma), passwords: createPasswordHasher(), logger }),
          throttle: createLoginThrottle({
            ...createRedisFailureCounters({ redis: unreachable, keyPrefix, windowSeconds: 900, maxPerAccount: 5, maxPerIp: 50 }),
            logger,
          }),
          tickets: createLoginTickets({ store: redis, keyPrefix, ttlSeconds: 300 }),
          tenants: registryClient,
          sessions: { open: () => Promise.reject(new Error('unused')), end: () => Promise.reject(new Error('unused')) },
          tokens: { issue: () => Promise.reject(new Error('unused')) },
          audit,
          logger,
        });
        const error = await rejectionOf(isolated.login({ email, password, clientIp: '192.0.2.99' }));
        expect({ code: error.code, message: error.message }).toEqual({
          code: 'DEPENDENCY_UNAVAILABLE',
          message: 'sign-in is unavailable right now',
        });
      } finally {
        unreachable.disconnect();
      }
    });
  });

  describe('phone verification', () => {
    const codeKey = deriveCodeKey(secret);
    const codesSent: string[] = [];

    /** A new account with its own phone number, and a login ticket for it. */
    const accountWithTicket = async (label: string) => {
      const user = await newUser(`${label}-${randomBytes(3).toString('hex')}`);
      const { loginTicket } = await client.login({ email: user.email, password: user.password });
      secretsSeen.push(loginTicket);
      return { ...user, loginTicket };
    };
    const start = async (loginTicket: string) => {
      const started = await client.startPhoneVerification({ loginTicket });
      const code = smsOutbox.at(-1)?.code ?? '';
      codesSent.push(code);
      return { started, code };
    };
    const wrongCodeFor = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');
    const verifiedAt = (id: string) =>
      withPg(
        db.ownerUrl,
        async (c) =>
          (await c.query<{ phone_verified_at: Date | null }>('SELECT phone_verified_at FROM users WHERE id = $1', [id])).rows[0]
            ?.phone_verified_at,
      );
    const expire = async (key: string) => {
      await redis.pexpire(key, 1);
      await pollUntil(async () => ((await redis.exists(key)) === 0 ? true : undefined), { what: `${key} to expire` });
    };

    it('sends a 6-digit code to the account phone, keeps only its HMAC for the TTL, and verifies once', async () => {
      const user = await accountWithTicket('phone-ok');
      expect(await client.inspectLoginTicket({ loginTicket: user.loginTicket })).toMatchObject({
        userId: user.userId,
        phoneVerified: false,
      });

      const { started, code } = await start(user.loginTicket);
      expect(started).toMatchObject({ codeExpiresInSeconds: phoneCodeTtlSeconds, resendAfterSeconds: phoneResendSeconds });
      expect(started.phoneMasked).toBe(`+86${'*'.repeat(7)}${user.phone.slice(-4)}`);
      expect(smsOutbox.at(-1)).toEqual({ phone: user.phone, code: expect.stringMatching(/^\d{6}$/) });

      const stored = await redis.hgetall(phoneCodeKey(keyPrefix, user.userId));
      expect(stored).toEqual({ hash: hashCode(codeKey, user.userId, user.phone, code), phone: user.phone, attempts: '0' });
      expect(JSON.stringify(stored)).not.toContain(code);
      const ttl = await redis.pttl(phoneCodeKey(keyPrefix, user.userId));
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(phoneCodeTtlSeconds * 1000);

      await expect(client.verifyPhone({ loginTicket: user.loginTicket, code })).resolves.toMatchObject({ phoneVerified: true });
      expect(await verifiedAt(user.userId)).toBeInstanceOf(Date);
      expect(await redis.exists(phoneCodeKey(keyPrefix, user.userId))).toBe(0);
      // The ticket authenticated both calls and is still unspent.
      expect(await client.inspectLoginTicket({ loginTicket: user.loginTicket })).toMatchObject({ phoneVerified: true });
      expect((await client.login({ email: user.email, password: user.password })).phoneVerified).toBe(true);

      // Single use, and nothing more to verify.
      expect((await rejectionOf(client.verifyPhone({ loginTicket: user.loginTicket, code }))).code).toBe('FAILED_PRECONDITION');
      expect((await rejectionOf(client.startPhoneVerification({ loginTicket: user.loginTicket }))).code).toBe('FAILED_PRECONDITION');
    });

    it('counts wrong codes and kills the code at the attempt cap, even for the right code afterwards', async () => {
      const user = await accountWithTicket('phone-cap');
      const { code } = await start(user.loginTicket);
      for (let attempt = 1; attempt < phoneMaxAttempts; attempt += 1) {
        const error = await rejectionOf(client.verifyPhone({ loginTicket: user.loginTicket, code: wrongCodeFor(code) }));
        expect(error.code).toBe('INVALID_ARGUMENT');
        expect(await redis.hget(phoneCodeKey(keyPrefix, user.userId), 'attempts')).toBe(String(attempt));
      }
      const last = await rejectionOf(client.verifyPhone({ loginTicket: user.loginTicket, code: wrongCodeFor(code) }));
      expect(last).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('no longer valid') });
      expect(await redis.exists(phoneCodeKey(keyPrefix, user.userId))).toBe(0);
      expect((await rejectionOf(client.verifyPhone({ loginTicket: user.loginTicket, code }))).code).toBe('FAILED_PRECONDITION');
      expect(await verifiedAt(user.userId)).toBeNull();

      // A new code (once the resend window is over) works.
      await expire(phoneResendKey(keyPrefix, user.userId));
      const fresh = await start(user.loginTicket);
      await expect(client.verifyPhone({ loginTicket: user.loginTicket, code: fresh.code })).resolves.toMatchObject({ phoneVerified: true });
    });

    it('counts daily sends atomically on Redis: all counters or none, with the time until the cap frees', async () => {
      const store = createPhoneCodeQueries(redis, keyPrefix);
      const counters = [`user:daily-${randomBytes(4).toString('hex')}`, `phone:daily-${randomBytes(4).toString('hex')}`];
      const limited = (keys: string[], limits: number[]) => keys.map((key, i) => ({ key, limit: limits[i] ?? 0 }));
      const other = [counters[0] ?? '', `phone:other-${randomBytes(4).toString('hex')}`];
      await expect(store.takeDailySend(limited(counters, [2, 5]), 86_400)).resolves.toEqual({ taken: true });
      await expect(store.takeDailySend(limited(other, [2, 5]), 86_400)).resolves.toEqual({ taken: true });
      // The user counter is full: nothing is counted, not even on the fresh phone counter.
      const fresh = `phone:fresh-${randomBytes(4).toString('hex')}`;
      const refused = await store.takeDailySend(limited([counters[0] ?? '', fresh], [2, 5]), 86_400);
      expect(refused).toEqual({ taken: false, retryAfterMs: expect.any(Number) });
      expect(refused.taken ? 0 : refused.retryAfterMs).toBeGreaterThan(86_000_000);
      expect(await redis.exists(`${keyPrefix}phone-sends:${fresh}`)).toBe(0);
      expect(await redis.get(`${keyPrefix}phone-sends:${counters[1] ?? ''}`)).toBe('1');
      // Each counter has its own limit: the phone counter (limit 1 here) refuses on its own.
      await expect(
        store.takeDailySend(limited([`user:${randomBytes(4).toString('hex')}`, counters[1] ?? ''], [2, 1]), 86_400),
      ).resolves.toMatchObject({
        taken: false,
      });
      expect(await redis.pttl(`${keyPrefix}phone-sends:${counters[0] ?? ''}`)).toBeGreaterThan(0);

      const userId = `failures-${randomBytes(4).toString('hex')}`;
      await expect(store.failures(userId)).resolves.toMatchObject({ count: 0 });
      await expect(store.countFailure(userId, 86_400)).resolves.toBe(1);
      await expect(store.countFailure(userId, 86_400)).resolves.toBe(2);
      await expect(store.failures(userId)).resolves.toEqual({ count: 2, retryAfterMs: expect.any(Number) });
    });

    it('refuses an expired code', async () => {
      const user = await accountWithTicket('phone-expired');
      const { code } = await start(user.loginTicket);
      await expire(phoneCodeKey(keyPrefix, user.userId));
      const error = await rejectionOf(client.verifyPhone({ loginTicket: user.loginTicket, code }));
      expect(error).toMatchObject({ code: 'FAILED_PRECONDITION', message: expect.stringContaining('request a new one') });
      expect(await verifiedAt(user.userId)).toBeNull();
    });

    it('throttles resends; a new code replaces the previous one', async () => {
      const user = await accountWithTicket('phone-resend');
      const first = await start(user.loginTicket);
      const sentBefore = smsOutbox.length;
      const throttled = await rejectionOf(client.startPhoneVerification({ loginTicket: user.loginTicket }));
      expect(throttled.code).toBe('RATE_LIMITED');
      expect(throttled.message).toMatch(/in \d+ seconds/);
      expect(smsOutbox).toHaveLength(sentBefore);

      await expire(phoneResendKey(keyPrefix, user.userId));
      const second = await start(user.loginTicket);
      if (second.code !== first.code) {
        expect((await rejectionOf(client.verifyPhone({ loginTicket: user.loginTicket, code: first.code }))).code).toBe('INVALID_ARGUMENT');
      }
      await expect(client.verifyPhone({ loginTicket: user.loginTicket, code: second.code })).resolves.toMatchObject({
        phoneVerified: true,
      });
    });

    it('lets exactly one of simultaneous right answers through', async () => {
      const user = await accountWithTicket('phone-race');
      const { code } = await start(user.loginTicket);
      const results = await Promise.allSettled(
        Array.from({ length: 5 }, () => client.verifyPhone({ loginTicket: user.loginTicket, code })),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(await verifiedAt(user.userId)).toBeInstanceOf(Date);
    });

    it('keeps no code and frees the resend slot when the provider fails', async () => {
      const user = await accountWithTicket('phone-down');
      smsFailure = new AppError('UPSTREAM_FAILED', 'the SMS provider refused the message');
      try {
        expect((await rejectionOf(client.startPhoneVerification({ loginTicket: user.loginTicket }))).code).toBe('UPSTREAM_FAILED');
      } finally {
        smsFailure = undefined;
      }
      expect(await redis.exists(phoneCodeKey(keyPrefix, user.userId), phoneResendKey(keyPrefix, user.userId))).toBe(0);
      const { code } = await start(user.loginTicket);
      await expect(client.verifyPhone({ loginTicket: user.loginTicket, code })).resolves.toMatchObject({ phoneVerified: true });
    });

    it('needs a valid login ticket and a 6-digit code', async () => {
      const bogus = randomBytes(32).toString('base64url');
      expect((await rejectionOf(client.startPhoneVerification({ loginTicket: bogus }))).code).toBe('UNAUTHENTICATED');
      expect((await rejectionOf(client.verifyPhone({ loginTicket: bogus, code: '123456' }))).code).toBe('UNAUTHENTICATED');
      const user = await accountWithTicket('phone-shape');
      expect((await rejectionOf(client.verifyPhone({ loginTicket: user.loginTicket, code: '12345' }))).code).toBe('INVALID_ARGUMENT');
    });

    it('never writes a code to the log', () => {
      const log = logLines.join('');
      expect(log).toContain('phone verification code sent');
      expect(codesSent.length).toBeGreaterThan(3);
      for (const code of codesSent) expect(log).not.toMatch(new RegExp(`(?<!\\d)${code}(?!\\d)`));
    });
  });

  describe('signing-key rotation', () => {
    it('backfills activates_at = created_at for keys that existed before the migration', async () => {
      const initOnly = await mkdtemp(join(tmpdir(), 'auth-migrations-'));
      const database = `pc_${testRunId}_auth_backfill_${randomBytes(2).toString('hex')}`;
      const adminUrl = new URL(infra.postgresAdminUrl);
      const appUrl = new URL(infra.postgresAdminUrl);
      appUrl.pathname = `/${database}`;
      appUrl.username = testAppRole;
      appUrl.password = '';
      const ownerUrl = new URL(infra.postgresAdminUrl);
      ownerUrl.pathname = `/${database}`;
      const silent = createLogger({ name: 'migrate', level: 'silent' });
      try {
        await cp(join(migrationsDir, '20261123000000_init'), join(initOnly, '20261123000000_init'), { recursive: true });
        await migrate({ adminUrl: adminUrl.toString(), appUrl: appUrl.toString(), migrationsDir: initOnly, logger: silent });
        await withPg(ownerUrl.toString(), (c) =>
          c.query(
            `INSERT INTO signing_keys (kid, alg, public_jwk, private_key_encrypted, created_at)
             VALUES ('old-kid', 'ES256', '{"kty":"EC"}', 'v1.x.y.z', '2026-01-02T03:04:05Z')`,
          ),
        );
        await migrate({ adminUrl: adminUrl.toString(), appUrl: appUrl.toString(), migrationsDir, logger: silent });
        const row = await withPg(
          ownerUrl.toString(),
          async (c) =>
            (await c.query<{ activates_at: Date; created_at: Date }>('SELECT activates_at, created_at FROM signing_keys')).rows[0],
        );
        expect(row?.activates_at).toEqual(new Date('2026-01-02T03:04:05Z'));
        expect(row?.activates_at).toEqual(row?.created_at);
      } finally {
        await rm(initOnly, { recursive: true, force: true });
        await withPg(infra.postgresAdminUrl, (c) => c.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`));
      }
    });

    it('with an injected clock: the old key signs until activation, both are published, the old one leaves after its tokens expired', async () => {
      const fresh = await createTestDatabase('auth_rotation', migrationsDir);
      const replicaA = new PrismaClient({ adapter: new PrismaPg({ connectionString: fresh.appUrl }) });
      const replicaB = new PrismaClient({ adapter: new PrismaPg({ connectionString: fresh.appUrl }) });
      let now = Date.now();
      const ring = (prismaClient: PrismaClient) =>
        createSigningKeys({
          store: createSigningKeyQueries(prismaClient),
          encryption: createKeyEncryption(secret),
          refreshMs: 10_000,
          ...keySchedule,
          now: () => now,
        });
      try {
        const rotating = ring(replicaA);
        const other = ring(replicaB);
        const { kid: oldKid } = await rotating.ensureActiveKey();
        await other.ensureActiveKey();
        const tokensOf = (keys: ReturnType<typeof ring>) => createAccessTokens({ keys, issuer, audience, ttlSeconds: 900, now: () => now });
        const kidsOf = async (keys: ReturnType<typeof ring>) => (await keys.publicJwks()).keys.map((key) => key.kid);
        const sign = async (keys: ReturnType<typeof ring>) =>
          (await tokensOf(keys).issue({ userId, tenantId: tenantAlpha, role: 'user', sessionId: randomUUID() })).token;

        const { kid: newKid, signingFrom } = await rotating.rotate();
        expect(signingFrom.getTime()).toBe(now + 60_000);
        const stored = await withPg(
          fresh.ownerUrl,
          async (c) =>
            (
              await c.query<{ kid: string; activates_at: Date; retired_at: Date | null }>(
                'SELECT kid, activates_at, retired_at FROM signing_keys ORDER BY activates_at',
              )
            ).rows,
        );
        expect(stored).toEqual([
          { kid: oldKid, activates_at: expect.any(Date), retired_at: new Date(signingFrom.getTime() + (900 + 60) * 1000) },
          { kid: newKid, activates_at: signingFrom, retired_at: null },
        ]);

        // Before activation: old key signs; both are published (the other replica after its refresh).
        expect(decodeProtectedHeader(await sign(rotating)).kid).toBe(oldKid);
        expect(await kidsOf(rotating)).toEqual([newKid, oldKid]);
        now += 10_000;
        expect(await kidsOf(other)).toEqual([newKid, oldKid]);
        expect(decodeProtectedHeader(await sign(other)).kid).toBe(oldKid);
        const signedByOld = await sign(other);

        // After activation: the new key signs on every replica; the old one is still published.
        now = signingFrom.getTime();
        for (const keys of [rotating, other]) expect(decodeProtectedHeader(await sign(keys)).kid).toBe(newKid);
        const jwks = createLocalJWKSet(await other.publicJwks());
        await expect(jwtVerify(signedByOld, jwks, { issuer, audience, currentDate: new Date(now) })).resolves.toBeDefined();

        // After the retirement time the old key is gone from the JWKS (read fresh from Postgres).
        now = signingFrom.getTime() + (900 + 60) * 1000 + 1;
        expect(await kidsOf(rotating)).toEqual([newKid]);
        const fromDatabase = await createSigningKeyQueries(replicaA).listPublished(new Date(now));
        expect(fromDatabase.map((key) => key.kid)).toEqual([newKid]);
        // A restart finds the new key active and creates nothing.
        await expect(ring(replicaB).ensureActiveKey()).resolves.toEqual({ created: false, kid: newKid });
      } finally {
        await replicaA.$disconnect();
        await replicaB.$disconnect();
        await fresh.drop();
      }
    });

    it('RotateSigningKey publishes the new key at once and keeps signing with the old one until it activates', async () => {
      const { keys: before } = (await (await fetch(jwksUrl)).json()) as { keys: JWK[] };
      expect(before).toHaveLength(1);
      const oldKid = before[0]?.kid;
      const { kid, signingFrom } = await client.rotateSigningKey({});
      expect(kid).not.toBe(oldKid);
      const from = timestampDate(signingFrom!).getTime();
      expect(from).toBeGreaterThan(Date.now() + 30_000);
      expect(from).toBeLessThanOrEqual(Date.now() + 60_000);
      const { keys: after } = (await (await fetch(jwksUrl)).json()) as { keys: JWK[] };
      expect(after.map((key) => key.kid)).toEqual([kid, oldKid]);
      const session = await openSession();
      expect(decodeProtectedHeader(session.accessToken).kid).toBe(oldKid);
      await expect(jwtVerify(session.accessToken, createRemoteJWKSet(jwksUrl), { issuer, audience })).resolves.toBeDefined();
    });
  });

  describe('audit events on JetStream', () => {
    const person: Principal = {
      $typeName: 'portcullis.common.v1.Principal',
      kind: PrincipalKind.USER,
      id: '',
      tenantId: tenantAlpha,
      role: Role.UNSPECIFIED,
      actingUserId: '',
      teamIds: [],
    };
    const inAlpha = (event: AuditEvent) => event.tenantId === tenantAlpha && event.principal?.id === userId;

    it('records a sign-in, a refresh, a detected reuse and a sign-out in the tenant, after each is stored', async () => {
      const session = await openSession(tenantAlpha, { clientIp: '192.0.2.61' });
      const ofSession = (event: AuditEvent) => inAlpha(event) && event.attributes['session_id'] === session.sessionId;
      const signin = await auditedEvent('auth.signin', ofSession);
      expect(signin).toMatchObject({
        object: 'sessions',
        action: 'create',
        outcome: Outcome.SUCCESS,
        principal: { kind: PrincipalKind.USER, id: userId, tenantId: tenantAlpha, role: Role.ADMIN },
        attributes: { role: 'admin', client_ip: '192.0.2.61' },
        eventId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      });
      expect(signin.occurredAt).toBeDefined();

      const refreshed = await refreshWith(session.refreshToken);
      await auditedEvent('auth.token_refreshed', ofSession);
      await expect(client.refreshTokens({ refreshToken: session.refreshToken })).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
      const reuse = await auditedEvent('auth.token_reuse', ofSession);
      expect(reuse).toMatchObject({ outcome: Outcome.FAILURE, reason: expect.stringContaining('family revoked') });

      const other = await openSession(tenantAlpha);
      await client.revokeSession({ userId, sessionId: other.sessionId });
      const revoked = await auditedEvent(
        'auth.session_revoked',
        (event) => inAlpha(event) && event.attributes['session_id'] === other.sessionId,
      );
      expect(revoked).toMatchObject({ object: 'sessions', action: 'revoke', reason: 'signed out' });

      const text = JSON.stringify(
        recorder.events.filter((event) => event.tenantId === tenantAlpha),
        (_key, value: unknown) => (typeof value === 'bigint' ? String(value) : value),
      );
      for (const secretValue of [session.accessToken, session.refreshToken, refreshed.refreshToken, refreshed.accessToken]) {
        expect(text).not.toContain(secretValue);
      }
    });

    it('records the life of an API key by the acting person: created, rotated, revoked — never the key', async () => {
      const actor = { ...person, id: userId };
      const created = await client.createApiKey({
        tenantId: tenantAlpha,
        actor,
        kind: ApiKeyKind.TENANT,
        name: 'audited',
        scopes: ['audit:read'],
      });
      secretsSeen.push(created.key);
      const keyId = created.apiKey?.keyId ?? '';
      const rotated = await client.rotateApiKey({ tenantId: tenantAlpha, actor, keyId, graceSeconds: 0 });
      secretsSeen.push(rotated.key);
      const newKeyId = rotated.apiKey?.keyId ?? '';
      await client.revokeApiKey({ tenantId: tenantAlpha, actor, keyId: newKeyId });

      const ofKey = (id: string) => (event: AuditEvent) => inAlpha(event) && event.attributes['key_id'] === id;
      await expect(auditedEvent('apikey.created', ofKey(keyId))).resolves.toMatchObject({
        object: 'apikeys',
        action: 'create',
        attributes: { key_prefix: `pck_${keyId}`, key_kind: 'tenant', scopes: 'audit:read' },
      });
      await expect(auditedEvent('apikey.rotated', ofKey(newKeyId))).resolves.toMatchObject({ attributes: { rotated_from: keyId } });
      await auditedEvent('apikey.revoked', ofKey(newKeyId));
      const text = JSON.stringify(recorder.events.filter((event) => event.kind.startsWith('apikey.')).map((event) => event.attributes));
      for (const key of [created.key, rotated.key]) expect(text).not.toContain(key.slice(21));
    });
  });

  describe('API keys', () => {
    const actorOf = (id: string, tenantId = tenantAlpha): Principal => ({
      $typeName: 'portcullis.common.v1.Principal',
      kind: PrincipalKind.USER,
      id,
      tenantId,
      role: Role.UNSPECIFIED,
      actingUserId: '',
      teamIds: [],
    });
    const keyRow = (id: string) =>
      withPg(
        db.ownerUrl,
        async (c) =>
          (
            await c.query<{ secret_hash: string; last_used_at: Date | null; revoked_at: Date | null; grace_until: Date | null }>(
              'SELECT secret_hash, last_used_at, revoked_at, grace_until FROM api_keys WHERE id = $1',
              [id],
            )
          ).rows[0],
      );
    const createKey = async (actorId: string, kind: ApiKeyKind, scopes = ['tools:invoke']) => {
      const created = await client.createApiKey({ tenantId: tenantAlpha, actor: actorOf(actorId), kind, name: 'ci', scopes });
      secretsSeen.push(created.key);
      if (!created.apiKey) throw new Error('no api key in the answer');
      return { key: created.key, apiKey: created.apiKey };
    };

    it('creates a key shown once, stores only the SHA-256 of its secret, and verifies it (recording the use)', async () => {
      const { key, apiKey } = await createKey(userId, ApiKeyKind.TENANT, ['tools:invoke', 'audit:read', 'tools:invoke']);
      expect(key).toMatch(/^pck_[a-z0-9]{16}_[A-Za-z0-9_-]{43}$/);
      expect(apiKey).toMatchObject({ kind: ApiKeyKind.TENANT, userId: '', createdBy: userId, scopes: ['audit:read', 'tools:invoke'] });
      const secretPart = key.slice(21);
      const row = await keyRow(apiKey.keyId);
      expect(row?.secret_hash).toBe(hashSecret(secretPart));
      expect(row?.last_used_at).toBeNull();

      const verified = await client.verifyApiKey({ key });
      expect(verified).toMatchObject({
        keyId: apiKey.keyId,
        tenantId: tenantAlpha,
        kind: ApiKeyKind.TENANT,
        scopes: ['audit:read', 'tools:invoke'],
      });
      expect((await keyRow(apiKey.keyId))?.last_used_at).toBeInstanceOf(Date);

      const listed = await client.listApiKeys({ tenantId: tenantAlpha, actor: actorOf(userId) });
      const mine = listed.apiKeys.find((k) => k.keyId === apiKey.keyId);
      expect(mine?.lastUsedAt).toBeDefined();
      expect(JSON.stringify(listed, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))).not.toContain(secretPart);
    });

    it('keeps api_keys under row-level security: the app role sees no key without its tenant', async () => {
      const { apiKey } = await createKey(userId, ApiKeyKind.USER);
      const seen = await withPg(db.appUrl, async (c) => (await c.query('SELECT id FROM api_keys WHERE id = $1', [apiKey.keyId])).rowCount);
      expect(seen).toBe(0);
      const other = await withPg(db.appUrl, async (c) => {
        await c.query('BEGIN');
        await c.query("SELECT set_config('app.tenant_id', $1, true)", [tenantBeta]);
        const count = (await c.query('SELECT id FROM api_keys WHERE id = $1', [apiKey.keyId])).rowCount;
        await c.query('ROLLBACK');
        return count;
      });
      expect(other).toBe(0);
    });

    it('refuses tenant keys to plain users, lets them create user keys, and hides other keys from them', async () => {
      const plain = await newUser('apikey-user', [{ tenantId: tenantAlpha, role: Role.USER }]);
      const refused = await rejectionOf(createKey(plain.userId, ApiKeyKind.TENANT));
      expect(refused.code).toBe('PERMISSION_DENIED');
      const own = await createKey(plain.userId, ApiKeyKind.USER);
      expect(own.apiKey).toMatchObject({ kind: ApiKeyKind.USER, userId: plain.userId });
      const listed = await client.listApiKeys({ tenantId: tenantAlpha, actor: actorOf(plain.userId) });
      expect(listed.apiKeys.map((k) => k.keyId)).toEqual([own.apiKey.keyId]);
      const adminKey = await createKey(userId, ApiKeyKind.TENANT);
      expect(
        (await rejectionOf(client.revokeApiKey({ tenantId: tenantAlpha, actor: actorOf(plain.userId), keyId: adminKey.apiKey.keyId })))
          .code,
      ).toBe('NOT_FOUND');
      const outsider = await newUser('apikey-outsider');
      expect((await rejectionOf(createKey(outsider.userId, ApiKeyKind.USER))).code).toBe('PERMISSION_DENIED');
      expect(
        (
          await rejectionOf(
            client.createApiKey({
              tenantId: tenantAlpha,
              actor: actorOf(userId, tenantBeta),
              kind: ApiKeyKind.USER,
              name: 'x',
              scopes: ['tools:invoke'],
            }),
          )
        ).code,
      ).toBe('CROSS_TENANT');
    });

    it('rejects revoked, expired and rotated-out keys with UNAUTHENTICATED', async () => {
      const revoked = await createKey(userId, ApiKeyKind.TENANT);
      await client.revokeApiKey({ tenantId: tenantAlpha, actor: actorOf(userId), keyId: revoked.apiKey.keyId });
      expect((await rejectionOf(client.verifyApiKey({ key: revoked.key }))).code).toBe('UNAUTHENTICATED');

      const expired = await createKey(userId, ApiKeyKind.TENANT);
      await withPg(db.ownerUrl, (c) =>
        c.query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", [expired.apiKey.keyId]),
      );
      expect((await rejectionOf(client.verifyApiKey({ key: expired.key }))).code).toBe('UNAUTHENTICATED');

      const old = await createKey(userId, ApiKeyKind.TENANT);
      const rotated = await client.rotateApiKey({
        tenantId: tenantAlpha,
        actor: actorOf(userId),
        keyId: old.apiKey.keyId,
        graceSeconds: 3_600,
      });
      secretsSeen.push(rotated.key);
      expect(rotated.apiKey?.rotatedFrom).toBe(old.apiKey.keyId);
      // During the grace period both work.
      expect((await client.verifyApiKey({ key: old.key })).keyId).toBe(old.apiKey.keyId);
      expect((await client.verifyApiKey({ key: rotated.key })).keyId).toBe(rotated.apiKey?.keyId);
      expect(
        (
          await rejectionOf(
            client.rotateApiKey({ tenantId: tenantAlpha, actor: actorOf(userId), keyId: old.apiKey.keyId, graceSeconds: 0 }),
          )
        ).code,
      ).toBe('FAILED_PRECONDITION');
      await withPg(db.ownerUrl, (c) =>
        c.query("UPDATE api_keys SET grace_until = now() - interval '1 second' WHERE id = $1", [old.apiKey.keyId]),
      );
      expect((await rejectionOf(client.verifyApiKey({ key: old.key }))).code).toBe('UNAUTHENTICATED');
      expect((await client.verifyApiKey({ key: rotated.key })).keyId).toBe(rotated.apiKey?.keyId);

      const tampered = `${rotated.key.slice(0, -1)}${rotated.key.endsWith('A') ? 'B' : 'A'}`;
      expect((await rejectionOf(client.verifyApiKey({ key: tampered }))).code).toBe('UNAUTHENTICATED');
      expect((await rejectionOf(client.verifyApiKey({ key: 'pck_nope' }))).code).toBe('UNAUTHENTICATED');
    });

    it('revoking a rotated key also ends the grace of the key it replaced', async () => {
      const old = await createKey(userId, ApiKeyKind.TENANT);
      const rotated = await client.rotateApiKey({
        tenantId: tenantAlpha,
        actor: actorOf(userId),
        keyId: old.apiKey.keyId,
        graceSeconds: 3_600,
      });
      secretsSeen.push(rotated.key);
      await client.revokeApiKey({ tenantId: tenantAlpha, actor: actorOf(userId), keyId: rotated.apiKey?.keyId ?? '' });
      expect((await rejectionOf(client.verifyApiKey({ key: old.key }))).code).toBe('UNAUTHENTICATED');
      expect((await keyRow(old.apiKey.keyId))?.revoked_at).toBeInstanceOf(Date);
    });

    it('rotation with no grace stops the old key at once', async () => {
      const old = await createKey(userId, ApiKeyKind.USER);
      const rotated = await client.rotateApiKey({
        tenantId: tenantAlpha,
        actor: actorOf(userId),
        keyId: old.apiKey.keyId,
        graceSeconds: 0,
      });
      secretsSeen.push(rotated.key);
      expect((await rejectionOf(client.verifyApiKey({ key: old.key }))).code).toBe('UNAUTHENTICATED');
      expect((await client.verifyApiKey({ key: rotated.key })).userId).toBe(userId);
    });

    it('ends the keys of a person who leaves the tenant, for good: adding them again does not revive them', async () => {
      const leaver = await newUser('apikey-leaver', [{ tenantId: tenantAlpha, role: Role.ADMIN }]);
      const userKey = await createKey(leaver.userId, ApiKeyKind.USER);
      const tenantKey = await createKey(leaver.userId, ApiKeyKind.TENANT);
      // Made an hour ago, as far as the stored rows say.
      await withPg(db.ownerUrl, (c) =>
        c.query("UPDATE api_keys SET created_at = created_at - interval '1 hour' WHERE id = ANY($1)", [
          [userKey.apiKey.keyId, tenantKey.apiKey.keyId],
        ]),
      );
      for (const { key } of [userKey, tenantKey]) {
        await expect(client.verifyApiKey({ key })).resolves.toMatchObject({ createdByUserId: leaver.userId });
      }
      const lastUsed = (await keyRow(userKey.apiKey.keyId))?.last_used_at;
      expect(lastUsed).toBeInstanceOf(Date);

      const membership = memberships.find((m) => m.userId === leaver.userId && m.tenantId === tenantAlpha)!;
      memberships.splice(memberships.indexOf(membership), 1);
      const gone = { code: 'UNAUTHENTICATED', message: 'the person behind this API key no longer belongs to this tenant' };
      for (const { key } of [userKey, tenantKey]) expect(await rejectionOf(client.verifyApiKey({ key }))).toMatchObject(gone);

      // Added again now, with the same role: a new membership.
      memberships.push({ ...membership, memberSince: timestampFromDate(new Date()) });
      for (const { key } of [userKey, tenantKey]) expect(await rejectionOf(client.verifyApiKey({ key }))).toMatchObject(gone);
      // Refused uses are not recorded.
      expect((await keyRow(userKey.apiKey.keyId))?.last_used_at).toEqual(lastUsed);

      const fresh = await createKey(leaver.userId, ApiKeyKind.USER);
      await expect(client.verifyApiKey({ key: fresh.key })).resolves.toMatchObject({ keyId: fresh.apiKey.keyId, userId: leaver.userId });
      // A key rotated in the new membership counts from its rotation, though its predecessor is older.
      const rotated = await client.rotateApiKey({
        tenantId: tenantAlpha,
        actor: actorOf(leaver.userId),
        keyId: fresh.apiKey.keyId,
        graceSeconds: 60,
      });
      secretsSeen.push(rotated.key);
      await expect(client.verifyApiKey({ key: rotated.key })).resolves.toMatchObject({ userId: leaver.userId });
    });

    it('denies with DEPENDENCY_UNAVAILABLE, recording nothing, when tenant-registry is unreachable or leaves member_since unset', async () => {
      const person = await newUser('apikey-unset', [{ tenantId: tenantAlpha, role: Role.USER }]);
      const { key, apiKey } = await createKey(person.userId, ApiKeyKind.USER);
      const unreachable = createGrpcClient(TenantRegistryService, {
        address: '127.0.0.1:1',
        deadlineMs: 2_000,
        credential: identities.auth.credentialFor('tenant-registry'),
      });
      try {
        const cut = createApiKeys({ store: createApiKeyQueries(prisma), tenants: unreachable, audit, logger });
        expect((await rejectionOf(cut.verify(key))).code).toBe('DEPENDENCY_UNAVAILABLE');
      } finally {
        unreachable.close();
      }
      const membership = memberships.find((m) => m.userId === person.userId && m.tenantId === tenantAlpha)!;
      membership.memberSince = undefined;
      expect((await rejectionOf(client.verifyApiKey({ key }))).code).toBe('DEPENDENCY_UNAVAILABLE');
      expect((await keyRow(apiKey.keyId))?.last_used_at).toBeNull();
    });
  });

  it('keeps identity tables global: no row-level security, readable by the app role without a tenant', async () => {
    const flags = await withPg(
      db.ownerUrl,
      async (c) =>
        (
          await c.query<{ relname: string; relrowsecurity: boolean }>(
            "SELECT relname, relrowsecurity FROM pg_class WHERE relname IN ('users', 'signing_keys', 'refresh_tokens') ORDER BY relname",
          )
        ).rows,
    );
    expect(flags).toEqual([
      { relname: 'refresh_tokens', relrowsecurity: false },
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
