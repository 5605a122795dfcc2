import { PrismaPg } from '@prisma/adapter-pg';
import {
  connectNats,
  createChangeAuditPublisher,
  createGrpcClient,
  loadConfig,
  startStoredAuditPublisher,
  runService,
  startPeriodicTask,
  type Logger,
} from '@portcullis/kit';
import { TenantRegistryService } from '@portcullis/proto/tenant';
import { Redis } from 'ioredis';
import { configSchema } from './config.js';
import { PrismaClient } from './generated/prisma/client.js';
import { createAuthService } from './grpc/auth-service.js';
import { createJwksServer } from './http/jwks-server.js';
import { createAccessTokens } from './libraries/access-tokens.js';
import { createAccounts } from './libraries/accounts.js';
import { createApiKeys } from './libraries/api-keys.js';
import { createAliyunSmsSender } from './libraries/aliyun-sms.js';
import { createKeyEncryption } from './libraries/key-encryption.js';
import { createLoginThrottle, createRedisFailureCounters } from './libraries/login-throttle.js';
import { createLoginTickets } from './libraries/login-tickets.js';
import { callbackUrl, createGithubProvider, createGoogleProvider, type OAuthProviderClient } from './libraries/oauth-providers.js';
import { createOAuthSignIn } from './libraries/oauth-sign-in.js';
import { createStateSigner, deriveStateKey, type OAuthProviderName } from './libraries/oauth-state.js';
import { createPasswordHasher } from './libraries/passwords.js';
import { createPhoneVerification, deriveCodeKey } from './libraries/phone-verification.js';
import { createRobotTokens } from './libraries/robot-tokens.js';
import { createRobots } from './libraries/robots.js';
import { createServiceTokens } from './libraries/service-tokens.js';
import { purgeExpiredRefreshTokens } from './libraries/refresh-tokens.js';
import { createSessions } from './libraries/sessions.js';
import { createSignIn } from './libraries/sign-in.js';
import { createSigningKeys } from './libraries/signing-keys.js';
import { createFileSmsSender, type SmsSender } from './libraries/sms-senders.js';
import { createTokenRefresh } from './libraries/token-refresh.js';
import { createApiKeyQueries } from './queries/api-keys.js';
import { createPhoneCodeQueries } from './queries/phone-codes.js';
import { createRefreshTokenQueries } from './queries/refresh-tokens.js';
import { createRobotQueries, createVerificationKeyQueries } from './queries/robots.js';
import { createSessionQueries } from './queries/sessions.js';
import { createSigningKeyQueries } from './queries/signing-keys.js';
import { createTicketIndexQueries } from './queries/login-tickets.js';
import { createOAuthAccountQueries } from './queries/oauth-identities.js';
import { createUserQueries } from './queries/users.js';

/** How often expired refresh tokens are purged. */
const REFRESH_TOKEN_PURGE_EVERY_MS = 3_600_000;

/** How long a replica trusts its copy of the active signing keys (matches the JWKS max-age). */
const SIGNING_KEY_REFRESH_MS = 60_000;

/** Audit events in memory (neither acknowledged nor spooled), at most; beyond it the changes they record answer 503. */

const config = loadConfig(configSchema, process.env);

function smsSender(): SmsSender {
  if (config.SMS_PROVIDER === 'file') return createFileSmsSender({ file: config.SMS_OUTBOX_FILE });
  const { ALIYUN_SMS_ACCESS_KEY_ID, ALIYUN_SMS_ACCESS_KEY_SECRET, ALIYUN_SMS_SIGN_NAME, ALIYUN_SMS_TEMPLATE_CODE } = config;
  // The config schema requires all four when the provider is aliyun.
  if (!ALIYUN_SMS_ACCESS_KEY_ID || !ALIYUN_SMS_ACCESS_KEY_SECRET || !ALIYUN_SMS_SIGN_NAME || !ALIYUN_SMS_TEMPLATE_CODE) {
    throw new Error('aliyun SMS settings missing');
  }
  return createAliyunSmsSender({
    accessKeyId: ALIYUN_SMS_ACCESS_KEY_ID,
    accessKeySecret: ALIYUN_SMS_ACCESS_KEY_SECRET,
    signName: ALIYUN_SMS_SIGN_NAME,
    templateCode: ALIYUN_SMS_TEMPLATE_CODE,
    endpoint: config.ALIYUN_SMS_ENDPOINT,
  });
}

/** Timeout of each request to Google or GitHub. */
const OAUTH_PROVIDER_TIMEOUT_SECONDS = 10;

/** The configured sign-in providers (a provider is enabled when its client id and secret are set). */
function oauthProviders(logger: Logger): Partial<Record<OAuthProviderName, OAuthProviderClient>> {
  const base = config.OAUTH_REDIRECT_BASE_URL;
  // The config schema requires the base URL once a provider is configured.
  if (base === undefined) return {};
  const common = { allowInsecureLoopback: config.OAUTH_ALLOW_INSECURE_LOOPBACK, timeoutSeconds: OAUTH_PROVIDER_TIMEOUT_SECONDS, logger };
  const providers: Partial<Record<OAuthProviderName, OAuthProviderClient>> = {};
  if (config.GOOGLE_CLIENT_ID !== undefined && config.GOOGLE_CLIENT_SECRET !== undefined) {
    providers.google = createGoogleProvider({
      ...common,
      clientId: config.GOOGLE_CLIENT_ID,
      clientSecret: config.GOOGLE_CLIENT_SECRET,
      redirectUri: callbackUrl(base, 'google'),
      issuer: config.GOOGLE_ISSUER,
    });
  }
  if (config.GITHUB_CLIENT_ID !== undefined && config.GITHUB_CLIENT_SECRET !== undefined) {
    providers.github = createGithubProvider({
      ...common,
      clientId: config.GITHUB_CLIENT_ID,
      clientSecret: config.GITHUB_CLIENT_SECRET,
      redirectUri: callbackUrl(base, 'github'),
      authorizeUrl: config.GITHUB_AUTHORIZE_URL,
      tokenUrl: config.GITHUB_TOKEN_URL,
      apiUrl: config.GITHUB_API_URL,
    });
  }
  return providers;
}

await runService({
  name: 'auth',
  config,
  migrationsDir: new URL('../../prisma/migrations', import.meta.url).pathname,
  async start({ logger, lifecycle, identity }) {
    const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: config.DATABASE_URL }) });
    lifecycle.onShutdown('postgres', () => prisma.$disconnect());
    const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 2 });
    lifecycle.onShutdown('redis', () => redis.quit());
    const tenantRegistry = createGrpcClient(TenantRegistryService, {
      address: config.TENANT_REGISTRY_ADDRESS,
      deadlineMs: config.GRPC_DEADLINE_MS,
      credential: identity.credentialFor('tenant-registry'),
    });
    lifecycle.onShutdown('tenant-registry client', () => tenantRegistry.close());
    const nc = await connectNats({ servers: config.NATS_URL, name: 'auth', logger });
    lifecycle.onShutdown('nats', () => nc.drain());
    // Sign-ins, token events, API-key and robot changes are published once stored; one that is
    // neither acknowledged nor spooled is logged and answered DEPENDENCY_UNAVAILABLE, and the
    // credentials it would have handed out are not (README: "Audit events").
    const backgroundAudit = await startStoredAuditPublisher({ nc, config, service: 'auth', logger, lifecycle });
    const audit = createChangeAuditPublisher({ publisher: backgroundAudit, logger });

    const signingKeys = createSigningKeys({
      store: createSigningKeyQueries(prisma),
      encryption: createKeyEncryption(config.AUTH_SIGNING_KEY_SECRET),
      refreshMs: SIGNING_KEY_REFRESH_MS,
      propagationSeconds: config.SIGNING_KEY_PROPAGATION_SECONDS,
      accessTokenTtlSeconds: config.ACCESS_TOKEN_TTL_SECONDS,
    });
    const { created, kid } = await signingKeys.ensureActiveKey();
    logger.info({ kid, created }, 'signing key ready');

    const jwks = createJwksServer({ keys: signingKeys, logger });
    const jwksPort = await jwks.listen(config.LISTEN_HOST, config.JWKS_PORT);
    lifecycle.onShutdown('jwks', () => jwks.close());
    logger.info({ jwksPort }, 'JWKS endpoint listening');

    const users = createUserQueries(prisma);
    const accounts = createAccounts({ users, passwords: createPasswordHasher(), logger });
    const tokens = createAccessTokens({
      keys: signingKeys,
      issuer: config.AUTH_ISSUER,
      audience: config.AUTH_AUDIENCE,
      ttlSeconds: config.ACCESS_TOKEN_TTL_SECONDS,
    });
    const refreshTokens = createRefreshTokenQueries(prisma);
    startPeriodicTask({
      name: 'refresh-token purge',
      everyMs: REFRESH_TOKEN_PURGE_EVERY_MS,
      firstRunMs: 60_000,
      logger,
      lifecycle,
      async run() {
        const purged = await purgeExpiredRefreshTokens(refreshTokens, { retainSeconds: config.REFRESH_TOKEN_RETENTION_SECONDS });
        if (purged > 0) logger.info({ purged }, 'expired refresh tokens purged');
      },
    });
    const sessions = createSessions({
      store: createSessionQueries(redis, config.REDIS_KEY_PREFIX),
      refreshTokens,
      ttlSeconds: config.REFRESH_TOKEN_TTL_SECONDS,
      audit,
      logger,
    });
    const tickets = createLoginTickets({
      store: redis,
      index: createTicketIndexQueries(redis, config.REDIS_KEY_PREFIX),
      keyPrefix: config.REDIS_KEY_PREFIX,
      ttlSeconds: config.LOGIN_TICKET_TTL_SECONDS,
    });
    const phone = createPhoneVerification({
      tickets,
      users,
      codes: createPhoneCodeQueries(redis, config.REDIS_KEY_PREFIX),
      sender: smsSender(),
      codeKey: deriveCodeKey(config.AUTH_SIGNING_KEY_SECRET),
      ttlSeconds: config.PHONE_CODE_TTL_SECONDS,
      resendSeconds: config.PHONE_CODE_RESEND_SECONDS,
      maxAttempts: config.PHONE_CODE_MAX_ATTEMPTS,
      maxSendsPerDay: config.PHONE_CODE_MAX_SENDS_PER_DAY,
      maxSendsPerNumberPerDay: config.PHONE_CODE_MAX_SENDS_PER_NUMBER_PER_DAY,
      maxFailuresPerDay: config.PHONE_CODE_MAX_FAILURES_PER_DAY,
      logger,
    });
    logger.info({ smsProvider: config.SMS_PROVIDER }, 'SMS provider selected');
    const signIn = createSignIn({
      accounts,
      throttle: createLoginThrottle({
        ...createRedisFailureCounters({
          redis,
          keyPrefix: config.REDIS_KEY_PREFIX,
          windowSeconds: config.LOGIN_FAILURE_WINDOW_SECONDS,
          maxPerAccount: config.LOGIN_MAX_FAILURES_PER_ACCOUNT,
          maxPerIp: config.LOGIN_MAX_FAILURES_PER_IP,
        }),
        logger,
      }),
      tickets,
      tenants: tenantRegistry,
      sessions,
      tokens,
      audit,
      logger,
    });
    const refresh = createTokenRefresh({
      refreshTokens,
      sessions,
      tenants: tenantRegistry,
      tokens,
      ttlSeconds: config.REFRESH_TOKEN_TTL_SECONDS,
      audit,
      logger,
    });
    const providers = oauthProviders(logger);
    logger.info({ oauthProviders: Object.keys(providers) }, 'OAuth sign-in providers configured');
    const oauth = createOAuthSignIn({
      providers,
      signer: createStateSigner({ key: deriveStateKey(config.AUTH_SIGNING_KEY_SECRET) }),
      states: redis,
      keyPrefix: config.REDIS_KEY_PREFIX,
      stateTtlSeconds: config.OAUTH_STATE_TTL_SECONDS,
      accounts: createOAuthAccountQueries(prisma),
      sessions,
      tickets,
      signIn,
      audit,
      logger,
    });

    return {
      services: [
        createAuthService({
          accounts,
          signIn,
          refresh,
          sessions,
          signingKeys,
          phone,
          apiKeys: createApiKeys({ store: createApiKeyQueries(prisma), tenants: tenantRegistry, audit, logger }),
          robots: createRobots({
            store: createRobotQueries(prisma),
            tokens: createRobotTokens({
              signer: signingKeys,
              verificationKeys: createVerificationKeyQueries(prisma),
              issuer: config.AUTH_ISSUER,
              audience: config.AUTH_AUDIENCE,
              keyRefreshMs: SIGNING_KEY_REFRESH_MS,
            }),
            tenants: tenantRegistry,
            audit,
            logger,
          }),
          serviceTokens: createServiceTokens({ identity, ttlSeconds: config.SERVICE_TOKEN_TTL_SECONDS }),
          oauth,
        }),
      ],
      isReady: () => redis.status === 'ready' && !nc.isClosed(),
    };
  },
});
