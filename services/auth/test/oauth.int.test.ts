// Google and GitHub sign-in through the real AuthService over gRPC, against Postgres and Redis,
// a real OpenID provider (oidc-provider, standing in for Google) and a GitHub-style OAuth server,
// with a scripted browser following the redirects.
import { createHash, randomBytes, randomInt, randomUUID } from 'node:crypto';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PrismaPg } from '@prisma/adapter-pg';
import {
  AppError,
  createGrpcClient,
  createGrpcServer,
  createTrustedIdentities,
  createLogger,
  implement,
  type GrpcClient,
  type GrpcServer,
  type ServiceHandlers,
} from '@portcullis/kit';
import { ApiKeyKind, AuthService, OAuthProvider } from '@portcullis/proto/auth';
import { PrincipalKind, Role, type Principal } from '@portcullis/proto/common';
import { TenantRegistryService, type Membership } from '@portcullis/proto/tenant';
import {
  createTestBrowser,
  createTestDatabase,
  infra,
  startGithubOAuthServer,
  startOidcProvider,
  testRunId,
  withPg,
  type TestBrowser,
  type TestDatabase,
  type TestGithubServer,
  type TestOidcProvider,
} from '@portcullis/test';
import { Redis } from 'ioredis';
import { PrismaClient } from '../src/generated/prisma/client.js';
import { createAuthService } from '../src/grpc/auth-service.js';
import { createAccessTokens } from '../src/libraries/access-tokens.js';
import { createAccounts } from '../src/libraries/accounts.js';
import { createApiKeys } from '../src/libraries/api-keys.js';
import { createKeyEncryption } from '../src/libraries/key-encryption.js';
import { createLoginThrottle, createRedisFailureCounters } from '../src/libraries/login-throttle.js';
import { createLoginTickets } from '../src/libraries/login-tickets.js';
import { callbackUrl, createGithubProvider, createGoogleProvider } from '../src/libraries/oauth-providers.js';
import { createOAuthSignIn, oauthStateKey } from '../src/libraries/oauth-sign-in.js';
import { createStateSigner, deriveStateKey } from '../src/libraries/oauth-state.js';
import { createPasswordHasher } from '../src/libraries/passwords.js';
import { createPhoneVerification, deriveCodeKey } from '../src/libraries/phone-verification.js';
import { createRobotTokens } from '../src/libraries/robot-tokens.js';
import { createRobots } from '../src/libraries/robots.js';
import { createServiceTokens } from '../src/libraries/service-tokens.js';
import { createSessions } from '../src/libraries/sessions.js';
import { createSignIn } from '../src/libraries/sign-in.js';
import { createSigningKeys } from '../src/libraries/signing-keys.js';
import { createTokenRefresh } from '../src/libraries/token-refresh.js';
import { createApiKeyQueries } from '../src/queries/api-keys.js';
import { createTicketIndexQueries, userTicketsKey } from '../src/queries/login-tickets.js';
import { createOAuthAccountQueries } from '../src/queries/oauth-identities.js';
import { createPhoneCodeQueries } from '../src/queries/phone-codes.js';
import { createRefreshTokenQueries } from '../src/queries/refresh-tokens.js';
import { createRobotQueries, createVerificationKeyQueries } from '../src/queries/robots.js';
import { createSessionQueries, sessionKey } from '../src/queries/sessions.js';
import { createSigningKeyQueries } from '../src/queries/signing-keys.js';
import { createUserQueries } from '../src/queries/users.js';
import { recordingAudit } from '../src/test-support/audit-events.js';
import { rejectionOf } from '../src/test-support/rejections.js';

const serviceIdentities = createTrustedIdentities();

const migrationsDir = new URL('../prisma/migrations', import.meta.url).pathname;
const keyPrefix = `${testRunId}:auth-oauth:`;
const stateTtlSeconds = 600;
/** The gateway's public base URL as the providers know it; the scripted browser stops there. */
const redirectBase = 'https://console.portcullis.test';
const googleCallback = callbackUrl(redirectBase, 'google');
const githubCallback = callbackUrl(redirectBase, 'github');

const logLines: string[] = [];
const logger = createLogger({
  name: 'auth-oauth-test',
  level: 'debug',
  destination: {
    write(line: string) {
      logLines.push(line);
    },
  },
});

/** A team of the fake tenant-registry and its members. */
interface TeamFixture {
  id: string;
  tenantId: string;
  members: string[];
}

function fakeTenantRegistry(memberships: Omit<Membership, '$typeName'>[], teams: TeamFixture[]) {
  const absent = async (): Promise<never> => {
    throw new AppError('FAILED_PRECONDITION', 'not served by the fake tenant-registry');
  };
  const handlers: ServiceHandlers<typeof TenantRegistryService> = new Proxy(
    {
      async listUserTenants({ userId }: { userId: string }) {
        return { memberships: memberships.filter((m) => m.userId === userId) };
      },
      async getMembership({ tenantId, userId }: { tenantId: string; userId: string }) {
        const membership = memberships.find((m) => m.tenantId === tenantId && m.userId === userId);
        if (!membership) throw new AppError('NOT_FOUND', 'membership not found');
        // Every fixture membership began before this test run, so before any credential made in it.
        return { membership: { memberSince: timestampFromDate(runStarted), ...membership } };
      },
      async listTeams({ tenantId }: { tenantId: string }) {
        return { teams: teams.filter((t) => t.tenantId === tenantId).map(({ id }) => ({ id, tenantId, name: `team ${id.slice(0, 4)}` })) };
      },
      async listUserTeams({ tenantId, userId }: { tenantId: string; userId: string }) {
        if (!memberships.some((m) => m.tenantId === tenantId && m.userId === userId)) {
          throw new AppError('NOT_FOUND', 'membership not found');
        }
        return {
          teams: teams
            .filter((t) => t.tenantId === tenantId && t.members.includes(userId))
            .map(({ id }) => ({ id, tenantId, name: `team ${id.slice(0, 4)}` })),
        };
      },
    },
    { get: (target, name) => (name in target ? target[name as keyof typeof target] : absent) },
  ) as unknown as ServiceHandlers<typeof TenantRegistryService>;
  return createGrpcServer({
    identity: serviceIdentities['tenant-registry'],
    logger,
    services: [implement(TenantRegistryService, handlers)],
  });
}

const runStarted = new Date(Date.now() - 60_000);

const sha256 = (value: string) => createHash('sha256').update(value).digest('base64url');

describe('Google and GitHub sign-in against real providers, Postgres and Redis', () => {
  const secret = randomBytes(32);
  const memberships: Omit<Membership, '$typeName'>[] = [];
  const teams: TeamFixture[] = [];
  const secretsSeen: string[] = [];

  let db: TestDatabase;
  let prisma: PrismaClient;
  let redis: Redis;
  let registry: GrpcServer;
  let registryClient: GrpcClient<typeof TenantRegistryService>;
  let server: GrpcServer;
  let client: GrpcClient<typeof AuthService>;
  let google: TestOidcProvider;
  let github: TestGithubServer;

  /** A browser with its binding cookie: SHA-256 of the cookie is what the gateway passes as the binding. */
  const newBrowser = () => {
    const cookie = randomBytes(32).toString('base64url');
    return { browser: createTestBrowser(), binding: sha256(cookie) };
  };

  /**
   * Starts a sign-in and lets the browser run through the provider until it is sent to the
   * callback; returns the callback query and a function delivering it (to any binding).
   */
  const startAndAuthorize = async (provider: 'google' | 'github', from: { browser: TestBrowser; binding: string } = newBrowser()) => {
    const providerEnum = provider === 'google' ? OAuthProvider.GOOGLE : OAuthProvider.GITHUB;
    const callback = provider === 'google' ? googleCallback : githubCallback;
    const started = await client.startOAuth({ provider: providerEnum, browserBinding: from.binding });
    const landed = await from.browser.followUntil(started.authorizationUrl, (url) => `${url.origin}${url.pathname}` === callback);
    const callbackQuery = landed.search.slice(1);
    secretsSeen.push(landed.searchParams.get('code') ?? '');
    const complete = async (binding = from.binding, query = callbackQuery) => {
      const result = await client.completeOAuth({
        provider: providerEnum,
        browserBinding: binding,
        callbackQuery: query,
        clientIp: '203.0.113.7',
      });
      secretsSeen.push(result.loginTicket);
      return result;
    };
    return { started, callbackQuery, landed, complete, ...from };
  };

  const userRow = (email: string) =>
    withPg(
      db.ownerUrl,
      async (c) =>
        (
          await c.query<{
            id: string;
            password_hash: string | null;
            email_verified_at: Date | null;
            display_name: string;
            phone: string | null;
          }>('SELECT id, password_hash, email_verified_at, display_name, phone FROM users WHERE email = $1', [email])
        ).rows[0],
    );
  const identities = (userId: string) =>
    withPg(
      db.ownerUrl,
      async (c) =>
        (
          await c.query<{ provider: string; subject: string; email: string }>(
            'SELECT provider, subject, email FROM oauth_identities WHERE user_id = $1 ORDER BY provider',
            [userId],
          )
        ).rows,
    );
  const stateKeys = () => redis.keys(`${keyPrefix}oauth:*`);

  beforeAll(async () => {
    db = await createTestDatabase('auth', migrationsDir);
    prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.appUrl }) });
    redis = new Redis(infra.redisUrl);
    google = await startOidcProvider({ redirectUri: googleCallback });
    github = await startGithubOAuthServer({ redirectUri: githubCallback });

    registry = fakeTenantRegistry(memberships, teams);
    const registryPort = await registry.listen('127.0.0.1', 0);
    registry.setServing(true);
    registryClient = createGrpcClient(TenantRegistryService, {
      address: `127.0.0.1:${registryPort}`,
      deadlineMs: 3_000,
      credential: serviceIdentities.auth.credentialFor('tenant-registry'),
    });

    const signingKeys = createSigningKeys({
      store: createSigningKeyQueries(prisma),
      encryption: createKeyEncryption(secret),
      refreshMs: 60_000,
      propagationSeconds: 60,
      accessTokenTtlSeconds: 900,
    });
    await signingKeys.ensureActiveKey();
    const users = createUserQueries(prisma);
    const accounts = createAccounts({ users, passwords: createPasswordHasher(), logger });
    const tokens = createAccessTokens({ keys: signingKeys, issuer: 'oauth-test', audience: 'oauth-test', ttlSeconds: 900 });
    const refreshTokens = createRefreshTokenQueries(prisma);
    // Audit events are checked where they are published (unit tests, auth.int.test.ts); here they are only recorded.
    const { audit } = recordingAudit();
    const sessions = createSessions({ store: createSessionQueries(redis, keyPrefix), refreshTokens, ttlSeconds: 3_600, audit, logger });
    const tickets = createLoginTickets({ store: redis, index: createTicketIndexQueries(redis, keyPrefix), keyPrefix, ttlSeconds: 300 });
    const phone = createPhoneVerification({
      tickets,
      users,
      codes: createPhoneCodeQueries(redis, keyPrefix),
      sender: { send: () => Promise.resolve() },
      codeKey: deriveCodeKey(secret),
      ttlSeconds: 300,
      resendSeconds: 60,
      maxAttempts: 5,
      maxSendsPerDay: 10,
      maxSendsPerNumberPerDay: 20,
      maxFailuresPerDay: 20,
      logger,
    });
    const signIn = createSignIn({
      accounts,
      throttle: createLoginThrottle({
        ...createRedisFailureCounters({ redis, keyPrefix, windowSeconds: 900, maxPerAccount: 5, maxPerIp: 50 }),
        logger,
      }),
      tickets,
      tenants: registryClient,
      sessions,
      tokens,
      audit,
      logger,
    });
    const common = { allowInsecureLoopback: true, timeoutSeconds: 5, logger };
    const oauth = createOAuthSignIn({
      providers: {
        google: createGoogleProvider({
          ...common,
          issuer: google.issuer,
          clientId: google.clientId,
          clientSecret: google.clientSecret,
          redirectUri: googleCallback,
        }),
        github: createGithubProvider({
          ...common,
          clientId: github.clientId,
          clientSecret: github.clientSecret,
          redirectUri: githubCallback,
          authorizeUrl: github.authorizeUrl,
          tokenUrl: github.tokenUrl,
          apiUrl: github.apiUrl,
        }),
      },
      signer: createStateSigner({ key: deriveStateKey(secret) }),
      states: redis,
      keyPrefix,
      stateTtlSeconds,
      accounts: createOAuthAccountQueries(prisma),
      sessions,
      tickets,
      signIn,
      audit,
      logger,
    });

    server = createGrpcServer({
      identity: serviceIdentities.auth,
      logger,
      services: [
        createAuthService({
          accounts,
          signIn,
          refresh: createTokenRefresh({ refreshTokens, sessions, tenants: registryClient, tokens, ttlSeconds: 3_600, audit, logger }),
          sessions,
          signingKeys,
          phone,
          apiKeys: createApiKeys({ store: createApiKeyQueries(prisma), tenants: registryClient, audit, logger }),
          serviceTokens: createServiceTokens({ identity: serviceIdentities.auth, ttlSeconds: 300 }),
          // Robots have their own tests; here they are what a reclaim must revoke.
          robots: createRobots({
            store: createRobotQueries(prisma),
            tokens: createRobotTokens({
              signer: signingKeys,
              verificationKeys: createVerificationKeyQueries(prisma),
              issuer: 'oauth-test',
              audience: 'oauth-test',
              keyRefreshMs: 60_000,
            }),
            tenants: registryClient,
            audit,
            logger,
          }),
          oauth,
        }),
      ],
    });
    const port = await server.listen('127.0.0.1', 0);
    server.setServing(true);
    client = createGrpcClient(AuthService, {
      address: `127.0.0.1:${port}`,
      deadlineMs: 10_000,
      credential: serviceIdentities['api-gateway'].credentialFor('auth'),
    });
  });

  afterAll(async () => {
    client.close();
    registryClient.close();
    await server.drain(1_000);
    await registry.drain(1_000);
    await google.close();
    await github.close();
    const keys = await redis.keys(`${keyPrefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await prisma.$disconnect();
    await db.drop();
  });

  describe('Google (OpenID Connect)', () => {
    it('signs a new person up: verified email, no password, no phone, identity linked, usable ticket', async () => {
      const email = `grace.${testRunId}@example.com`;
      google.setAccount({ sub: `g-${randomUUID()}`, email: email.toUpperCase(), emailVerified: true, name: 'Grace Hopper' });
      const flow = await startAndAuthorize('google');
      const authorization = new URL(flow.started.authorizationUrl);
      expect(authorization.origin).toBe(google.issuer);
      expect(Object.fromEntries(authorization.searchParams)).toMatchObject({
        client_id: google.clientId,
        redirect_uri: googleCallback,
        scope: 'openid email profile',
        code_challenge_method: 'S256',
        nonce: expect.any(String),
      });
      expect(flow.started.expiresInSeconds).toBe(stateTtlSeconds);

      const result = await flow.complete();
      expect(result).toMatchObject({ accountCreated: true, phoneVerified: false, tenants: [], ticketExpiresInSeconds: 300 });
      const row = await userRow(email);
      expect(row).toMatchObject({ id: result.userId, password_hash: null, display_name: 'Grace Hopper', phone: null });
      expect(row?.email_verified_at).toBeInstanceOf(Date);
      expect(await identities(result.userId)).toEqual([{ provider: 'google', subject: expect.stringMatching(/^g-/), email }]);
      await expect(client.inspectLoginTicket({ loginTicket: result.loginTicket })).resolves.toMatchObject({ userId: result.userId });
    });

    it('signs the same Google account into the same user the next time', async () => {
      const sub = `g-${randomUUID()}`;
      google.setAccount({ sub, email: `again.${testRunId}@example.com`, emailVerified: true, name: 'Again' });
      const first = await (await startAndAuthorize('google')).complete();
      const second = await (await startAndAuthorize('google')).complete();
      expect(second).toMatchObject({ userId: first.userId, accountCreated: false });
    });

    it('keeps the single-use record in Redis with the state TTL, and spends it on the callback', async () => {
      const before = new Set(await stateKeys());
      const flow = await startAndAuthorize('google');
      const added = (await stateKeys()).filter((key) => !before.has(key));
      expect(added).toHaveLength(1);
      const key = added[0] ?? '';
      const ttl = await redis.ttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(stateTtlSeconds);
      expect(JSON.parse((await redis.get(key)) ?? '{}')).toMatchObject({ provider: 'google', binding: flow.binding });
      await flow.complete();
      expect(await redis.exists(key)).toBe(0);
    });

    it('refuses a replayed callback', async () => {
      google.setAccount({ sub: `g-${randomUUID()}`, email: `replay.${testRunId}@example.com`, emailVerified: true });
      const flow = await startAndAuthorize('google');
      await flow.complete();
      const error = await rejectionOf(flow.complete());
      expect(error).toMatchObject({ code: 'UNAUTHENTICATED', message: expect.stringContaining('already completed') });
    });

    it('refuses a forged or tampered state, and the genuine callback still works afterwards', async () => {
      google.setAccount({ sub: `g-${randomUUID()}`, email: `tamper.${testRunId}@example.com`, emailVerified: true });
      const flow = await startAndAuthorize('google');
      const state = flow.landed.searchParams.get('state') ?? '';
      const [payload = '', signature = ''] = state.split('.');
      const forgedPayload = Buffer.from(
        JSON.stringify({ ...(JSON.parse(Buffer.from(payload, 'base64url').toString()) as object), e: 9_999_999_999 }),
      ).toString('base64url');
      const attempts = [
        `${forgedPayload}.${signature}`,
        `${payload}.${signature.slice(0, -1)}${signature.endsWith('A') ? 'B' : 'A'}`,
        createStateSigner({ key: deriveStateKey(randomBytes(32)) }).sign(
          { provider: 'google', stateId: randomBytes(32).toString('base64url'), expiresAt: 9_999_999_999 },
          flow.binding,
        ),
      ];
      for (const bad of attempts) {
        const query = new URLSearchParams(flow.callbackQuery);
        query.set('state', bad);
        expect(await rejectionOf(flow.complete(flow.binding, query.toString()))).toMatchObject({ code: 'UNAUTHENTICATED' });
      }
      await expect(flow.complete()).resolves.toMatchObject({ accountCreated: true });
    });

    it('refuses the callback delivered in another browser, and the right browser can still finish', async () => {
      google.setAccount({ sub: `g-${randomUUID()}`, email: `binding.${testRunId}@example.com`, emailVerified: true });
      const flow = await startAndAuthorize('google');
      const attacker = newBrowser();
      expect(await rejectionOf(flow.complete(attacker.binding))).toMatchObject({ code: 'UNAUTHENTICATED' });
      await expect(flow.complete()).resolves.toMatchObject({ accountCreated: true });
    });

    it('refuses an ID token issued for another nonce, and creates nothing', async () => {
      const email = `nonce.${testRunId}@example.com`;
      google.setAccount({ sub: `g-${randomUUID()}`, email, emailVerified: true });
      const before = new Set(await stateKeys());
      const flow = await startAndAuthorize('google');
      const key = (await stateKeys()).find((candidate) => !before.has(candidate)) ?? '';
      const record = JSON.parse((await redis.get(key)) ?? '{}') as Record<string, string>;
      // The provider echoes the nonce it was sent; the service now expects another one.
      await redis.set(key, JSON.stringify({ ...record, nonce: 'a-different-nonce-value' }), 'KEEPTTL');
      const error = await rejectionOf(flow.complete());
      expect(error).toMatchObject({ code: 'UNAUTHENTICATED', message: expect.stringContaining('could not be verified') });
      expect(await userRow(email)).toBeUndefined();
      expect(google.errors).toEqual([]);
    });

    it('refuses a callback whose PKCE verifier does not match the challenge', async () => {
      google.setAccount({ sub: `g-${randomUUID()}`, email: `pkce.${testRunId}@example.com`, emailVerified: true });
      const before = new Set(await stateKeys());
      const flow = await startAndAuthorize('google');
      const key = (await stateKeys()).find((candidate) => !before.has(candidate)) ?? '';
      const record = JSON.parse((await redis.get(key)) ?? '{}') as Record<string, string>;
      await redis.set(key, JSON.stringify({ ...record, codeVerifier: randomBytes(32).toString('base64url') }), 'KEEPTTL');
      expect(await rejectionOf(flow.complete())).toMatchObject({ code: 'UNAUTHENTICATED' });
    });

    it.each([
      ['unverified', { emailVerified: false }],
      ['missing', { emailVerified: undefined }],
    ])('refuses an %s email_verified claim and creates nothing', async (_label, change) => {
      const email = `unverified.${randomBytes(3).toString('hex')}.${testRunId}@example.com`;
      google.setAccount({ sub: `g-${randomUUID()}`, email, ...change });
      const error = await rejectionOf((await startAndAuthorize('google')).complete());
      expect(error).toMatchObject({ code: 'PERMISSION_DENIED', message: expect.stringContaining('verified email') });
      expect(await userRow(email)).toBeUndefined();
    });
  });

  describe('GitHub (OAuth 2.0)', () => {
    const githubAccount = (email: string, verified = true) => ({
      id: randomInt(1, 2 ** 31),
      login: `octo-${randomBytes(3).toString('hex')}`,
      name: null,
      emails: [
        { email: `noreply.${testRunId}@users.noreply.example.com`, primary: false, verified: true },
        { email, primary: true, verified },
      ],
    });

    it('signs a new person up from the verified primary email; the numeric id is the subject', async () => {
      const email = `octo.${testRunId}@example.com`;
      const account = githubAccount(email);
      github.setAccount(account);
      const flow = await startAndAuthorize('github');
      expect(Object.fromEntries(new URL(flow.started.authorizationUrl).searchParams)).toMatchObject({
        client_id: github.clientId,
        redirect_uri: githubCallback,
        scope: 'read:user user:email',
        code_challenge_method: 'S256',
      });
      expect(new URL(flow.started.authorizationUrl).searchParams.has('nonce')).toBe(false);
      const result = await flow.complete();
      expect(result).toMatchObject({ accountCreated: true });
      expect(await userRow(email)).toMatchObject({ id: result.userId, display_name: account.login, password_hash: null });
      expect(await identities(result.userId)).toEqual([{ provider: 'github', subject: String(account.id), email }]);
    });

    it('redeems each code once: a replayed callback never reaches the token endpoint', async () => {
      github.setAccount(githubAccount(`octo-replay.${testRunId}@example.com`));
      const flow = await startAndAuthorize('github');
      const exchanges = github.tokenOutcomes.length;
      await flow.complete();
      expect(await rejectionOf(flow.complete())).toMatchObject({ code: 'UNAUTHENTICATED' });
      expect(github.tokenOutcomes.slice(exchanges)).toEqual(['issued']);
    });

    it('refuses an unverified primary email, even with another verified address', async () => {
      const email = `octo-unverified.${testRunId}@example.com`;
      github.setAccount(githubAccount(email, false));
      const error = await rejectionOf((await startAndAuthorize('github')).complete());
      expect(error).toMatchObject({ code: 'PERMISSION_DENIED' });
      expect(await userRow(email)).toBeUndefined();
    });

    it('answers a refusal at GitHub clearly and spends the sign-in', async () => {
      github.denyNext();
      const before = (await stateKeys()).length;
      const flow = await startAndAuthorize('github');
      expect((await stateKeys()).length).toBe(before + 1);
      const error = await rejectionOf(flow.complete());
      expect(error).toMatchObject({ code: 'UNAUTHENTICATED', message: 'github sign-in was not completed (access_denied); start it again' });
      expect((await stateKeys()).length).toBe(before);
    });

    it('refuses a GitHub state at the Google callback', async () => {
      github.setAccount(githubAccount(`octo-swap.${testRunId}@example.com`));
      const flow = await startAndAuthorize('github');
      const error = await rejectionOf(
        client.completeOAuth({
          provider: OAuthProvider.GOOGLE,
          browserBinding: flow.binding,
          callbackQuery: flow.callbackQuery,
          clientIp: '',
        }),
      );
      expect(error.code).toBe('UNAUTHENTICATED');
    });
  });

  describe('existing accounts', () => {
    it('links a password account by verified email: ends its sessions and tickets, removes its password', async () => {
      const email = `linked.${testRunId}@example.com`;
      const password = `pw-${randomBytes(12).toString('hex')}`;
      secretsSeen.push(password);
      const phone = `+86139${String(randomInt(0, 100_000_000)).padStart(8, '0')}`;
      const { userId } = await client.signUp({ email, password, displayName: 'Squatter?', phone });
      const tenantId = randomUUID();
      memberships.push({ tenantId, tenantName: 'Linked Co', userId, role: Role.OWNER });
      // A live session and an unused login ticket, as someone who knows the password would hold.
      const session = await client.selectTenant({ loginTicket: (await client.login({ email, password })).loginTicket, tenantId });
      const pending = await client.login({ email, password });
      expect(await redis.exists(sessionKey(keyPrefix, session.sessionId))).toBe(1);

      google.setAccount({ sub: `g-${randomUUID()}`, email, emailVerified: true, name: 'Real Owner' });
      const result = await (await startAndAuthorize('google')).complete();
      expect(result).toMatchObject({ userId, accountCreated: false });
      expect(result.tenants.map((t) => [t.tenantId, t.role])).toEqual([[tenantId, Role.OWNER]]);

      const row = await userRow(email);
      expect(row).toMatchObject({ password_hash: null, display_name: 'Squatter?' });
      expect(row?.email_verified_at).toBeInstanceOf(Date);
      expect(await redis.exists(sessionKey(keyPrefix, session.sessionId))).toBe(0);
      expect(await rejectionOf(client.refreshTokens({ refreshToken: session.refreshToken }))).toMatchObject({ code: 'UNAUTHENTICATED' });
      expect(await rejectionOf(client.selectTenant({ loginTicket: pending.loginTicket, tenantId }))).toMatchObject({
        code: 'UNAUTHENTICATED',
      });
      expect(await redis.exists(userTicketsKey(keyPrefix, userId))).toBe(1);
      // The password is gone: the same answer as a wrong one.
      expect(await rejectionOf(client.login({ email, password }))).toMatchObject({
        code: 'UNAUTHENTICATED',
        message: 'invalid email or password',
      });
      // The ticket of this sign-in works.
      await expect(client.selectTenant({ loginTicket: result.loginTicket, tenantId })).resolves.toMatchObject({ tenantId });
    });

    it("revokes the reclaimed account's API keys and robots in every tenant and clears its phone; others' stay", async () => {
      const email = `squatter.${testRunId}@example.com`;
      const password = `pw-${randomBytes(12).toString('hex')}`;
      secretsSeen.push(password);
      const newPhone = () => `+86139${String(randomInt(0, 100_000_000)).padStart(8, '0')}`;
      const { userId: squatter } = await client.signUp({ email, password, displayName: 'Squatter', phone: newPhone() });
      // The squatter's own number, verified (as an SMS code to that number would have done).
      await withPg(db.ownerUrl, (c) => c.query('UPDATE users SET phone_verified_at = now() WHERE id = $1', [squatter]));
      const bystander = randomUUID();
      const [tenantA, tenantB, teamA, teamB] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
      memberships.push(
        { tenantId: tenantA, tenantName: 'Squat Co', userId: squatter, role: Role.OWNER },
        { tenantId: tenantA, tenantName: 'Squat Co', userId: bystander, role: Role.ADMIN },
        { tenantId: tenantB, tenantName: 'Other Co', userId: squatter, role: Role.USER },
      );
      teams.push({ id: teamA, tenantId: tenantA, members: [squatter, bystander] }, { id: teamB, tenantId: tenantB, members: [squatter] });

      const actor = (id: string, tenantId: string): Principal => ({
        $typeName: 'portcullis.common.v1.Principal',
        kind: PrincipalKind.USER,
        id,
        tenantId,
        role: Role.UNSPECIFIED,
        actingUserId: '',
        teamIds: [],
      });
      const createKey = async (by: string, tenantId: string, kind: ApiKeyKind) => {
        const created = await client.createApiKey({ tenantId, actor: actor(by, tenantId), kind, name: 'ci', scopes: ['tools:invoke'] });
        secretsSeen.push(created.key);
        return { key: created.key, keyId: created.apiKey?.keyId ?? '' };
      };
      const createRobot = async (by: string, tenantId: string, teamId: string) => {
        const created = await client.createRobot({ tenantId, actor: actor(by, tenantId), name: 'pc', teamIds: [teamId] });
        secretsSeen.push(created.token);
        return { token: created.token, robotId: created.robot?.robotId ?? '' };
      };

      const squatterKeys = {
        tenantKey: await createKey(squatter, tenantA, ApiKeyKind.TENANT),
        userKeyInB: await createKey(squatter, tenantB, ApiKeyKind.USER),
        inGrace: await createKey(squatter, tenantA, ApiKeyKind.USER),
      };
      // Rotated with a grace period: the old key still works until grace_until, and must stop too.
      const rotated = await client.rotateApiKey({
        tenantId: tenantA,
        actor: actor(squatter, tenantA),
        keyId: squatterKeys.inGrace.keyId,
        graceSeconds: 3_600,
      });
      secretsSeen.push(rotated.key);
      const allSquatterKeys = [...Object.values(squatterKeys), { key: rotated.key, keyId: rotated.apiKey?.keyId ?? '' }];
      const squatterRobots = [await createRobot(squatter, tenantA, teamA), await createRobot(squatter, tenantB, teamB)];
      const bystanderKeys = [await createKey(bystander, tenantA, ApiKeyKind.TENANT), await createKey(bystander, tenantA, ApiKeyKind.USER)];
      const bystanderRobot = await createRobot(bystander, tenantA, teamA);

      for (const { key, keyId } of [...allSquatterKeys, ...bystanderKeys]) {
        await expect(client.verifyApiKey({ key })).resolves.toMatchObject({ keyId });
      }
      for (const { token, robotId } of [...squatterRobots, bystanderRobot]) {
        await expect(client.verifyRobotToken({ token })).resolves.toMatchObject({ robotId });
      }
      // A verified number cannot be replaced.
      const before = await client.login({ email, password });
      expect(await rejectionOf(client.startPhoneVerification({ loginTicket: before.loginTicket, phone: newPhone() }))).toMatchObject({
        code: 'FAILED_PRECONDITION',
        message: 'the phone number is already verified',
      });

      google.setAccount({ sub: `g-${randomUUID()}`, email, emailVerified: true, name: 'Real Owner' });
      const result = await (await startAndAuthorize('google')).complete();
      expect(result).toMatchObject({ userId: squatter, accountCreated: false, phoneVerified: false });

      for (const { key } of allSquatterKeys) {
        expect(await rejectionOf(client.verifyApiKey({ key }))).toMatchObject({
          code: 'UNAUTHENTICATED',
          message: 'invalid, expired or revoked API key',
        });
      }
      for (const { token } of squatterRobots) {
        expect(await rejectionOf(client.verifyRobotToken({ token }))).toMatchObject({
          code: 'UNAUTHENTICATED',
          message: 'invalid, expired or revoked robot token',
        });
      }
      for (const { key, keyId } of bystanderKeys) await expect(client.verifyApiKey({ key })).resolves.toMatchObject({ keyId });
      await expect(client.verifyRobotToken({ token: bystanderRobot.token })).resolves.toMatchObject({ robotId: bystanderRobot.robotId });

      const rows = await withPg(db.ownerUrl, async (c) => ({
        keys: (
          await c.query<{ id: string; revoked_at: Date | null }>('SELECT id, revoked_at FROM api_keys WHERE tenant_id = ANY($1::uuid[])', [
            [tenantA, tenantB],
          ])
        ).rows,
        robots: (
          await c.query<{ id: string; revoked_at: Date | null; revoked_by: string | null }>(
            'SELECT id::text AS id, revoked_at, revoked_by FROM robots WHERE tenant_id = ANY($1::uuid[]) ORDER BY id::text COLLATE "C"',
            [[tenantA, tenantB]],
          )
        ).rows,
      }));
      const revokedKeys = rows.keys.filter((k) => k.revoked_at !== null).map((k) => k.id);
      expect(revokedKeys.sort()).toEqual(allSquatterKeys.map((k) => k.keyId).sort());
      expect(rows.robots.filter((r) => r.revoked_at !== null)).toEqual(
        squatterRobots
          .map((r) => ({ id: r.robotId, revoked_at: expect.any(Date), revoked_by: squatter }))
          .sort((a, b) => (a.id < b.id ? -1 : 1)),
      );

      // The squatter's number is gone, and the owner can set and verify their own.
      const row = await withPg(
        db.ownerUrl,
        async (c) =>
          (
            await c.query<{ phone: string | null; phone_verified_at: Date | null }>(
              'SELECT phone, phone_verified_at FROM users WHERE id = $1',
              [squatter],
            )
          ).rows[0],
      );
      expect(row).toEqual({ phone: null, phone_verified_at: null });
      const ownersPhone = newPhone();
      await expect(client.startPhoneVerification({ loginTicket: result.loginTicket, phone: ownersPhone })).resolves.toMatchObject({
        phoneMasked: expect.stringMatching(new RegExp(`${ownersPhone.slice(-4)}$`)),
      });
      expect((await userRow(email))?.phone).toBe(ownersPhone);

      // Ids and counts in the log, never a key or token (the log test below checks the secrets).
      const revokedLine = logLines
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .find((line) => line['msg'] === 'reclaimed account: API keys and robots revoked' && line['userId'] === squatter);
      expect(revokedLine).toMatchObject({ apiKeysRevoked: allSquatterKeys.length, robotsRevoked: squatterRobots.length });
      expect(revokedLine?.['apiKeys']).toEqual(
        expect.arrayContaining(allSquatterKeys.map(({ keyId }) => ({ id: keyId, tenantId: expect.any(String) }))),
      );
    });

    it('lets only the application role execute revoke_credentials_of_user, as its owner with a fixed search_path', async () => {
      const fn = await withPg(
        db.ownerUrl,
        async (c) =>
          (
            await c.query<{ prosecdef: boolean; proconfig: string[] | null; public_can: boolean; app_can: boolean }>(
              `SELECT p.prosecdef, p.proconfig,
                      has_function_privilege('public', p.oid, 'EXECUTE') AS public_can,
                      has_function_privilege($1, p.oid, 'EXECUTE') AS app_can
                 FROM pg_proc p WHERE p.proname = 'revoke_credentials_of_user'`,
              [decodeURIComponent(new URL(db.appUrl).username)],
            )
          ).rows,
      );
      expect(fn).toEqual([{ prosecdef: true, proconfig: ['search_path=public, pg_temp'], public_can: false, app_can: true }]);
      // The app role still sees no key or robot outside a tenant scope.
      const seen = await withPg(db.appUrl, async (c) => ({
        keys: (await c.query('SELECT id FROM api_keys')).rowCount,
        robots: (await c.query('SELECT id FROM robots')).rowCount,
      }));
      expect(seen).toEqual({ keys: 0, robots: 0 });
    });

    it('links a second provider to an account whose email is verified, without ending its sessions', async () => {
      const email = `both.${testRunId}@example.com`;
      google.setAccount({ sub: `g-${randomUUID()}`, email, emailVerified: true });
      const viaGoogle = await (await startAndAuthorize('google')).complete();
      const tenantId = randomUUID();
      memberships.push({ tenantId, tenantName: 'Both Co', userId: viaGoogle.userId, role: Role.USER });
      const session = await client.selectTenant({ loginTicket: viaGoogle.loginTicket, tenantId });

      github.setAccount({ id: randomInt(1, 2 ** 31), login: 'both', name: 'Both', emails: [{ email, primary: true, verified: true }] });
      const viaGithub = await (await startAndAuthorize('github')).complete();
      expect(viaGithub).toMatchObject({ userId: viaGoogle.userId, accountCreated: false });
      expect((await identities(viaGoogle.userId)).map((i) => i.provider)).toEqual(['github', 'google']);
      expect(await redis.exists(sessionKey(keyPrefix, session.sessionId))).toBe(1);
    });

    it('refuses a password login to an account without a password, like a wrong password', async () => {
      const email = `nopassword.${testRunId}@example.com`;
      google.setAccount({ sub: `g-${randomUUID()}`, email, emailVerified: true });
      await (await startAndAuthorize('google')).complete();
      expect(await rejectionOf(client.login({ email, password: 'any long enough password' }))).toMatchObject({
        code: 'UNAUTHENTICATED',
        message: 'invalid email or password',
      });
    });
  });

  describe('requests', () => {
    it('refuses an unspecified provider and a malformed binding', async () => {
      expect(await rejectionOf(client.startOAuth({ provider: OAuthProvider.UNSPECIFIED, browserBinding: sha256('x') }))).toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      expect(await rejectionOf(client.startOAuth({ provider: OAuthProvider.GOOGLE, browserBinding: 'short' }))).toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      expect(
        await rejectionOf(
          client.completeOAuth({ provider: OAuthProvider.GOOGLE, browserBinding: '', callbackQuery: 'code=x&state=y', clientIp: '' }),
        ),
      ).toMatchObject({ code: 'UNAUTHENTICATED' });
    });

    it('never logs a code, ticket, password or PKCE verifier', async () => {
      const verifiers = await Promise.all(
        (await stateKeys()).map(async (key) => (JSON.parse((await redis.get(key)) ?? '{}') as { codeVerifier?: string }).codeVerifier),
      );
      const log = logLines.join('');
      expect(log).toContain('oauth sign-in succeeded');
      for (const secretValue of [...secretsSeen, ...verifiers].filter(
        (value): value is string => typeof value === 'string' && value.length > 0,
      )) {
        expect(log).not.toContain(secretValue);
      }
    });
  });

  it('names the Redis record after the state id', () => {
    expect(oauthStateKey(keyPrefix, 'abc')).toBe(`${keyPrefix}oauth:abc`);
  });
});
