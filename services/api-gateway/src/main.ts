import type { Server } from 'node:http';
import { Redis } from 'ioredis';
import { createRemoteJWKSet } from 'jose';
import {
  AppError,
  connectNats,
  createAuditPublisher,
  createGrpcClient,
  loadConfig,
  runService,
  subscribeTenantChanges,
} from '@portcullis/kit';
import { AuditService } from '@portcullis/proto/audit';
import { AuthService } from '@portcullis/proto/auth';
import { DeviceEnrollmentService } from '@portcullis/proto/devices';
import { PolicyService } from '@portcullis/proto/policy';
import { TenantRegistryService } from '@portcullis/proto/tenant';
import { ToolGatewayService } from '@portcullis/proto/tools';
import { createApp } from './app.js';
import { configSchema } from './config.js';
import { createAccessTokenVerifier } from './libraries/access-tokens.js';
import { createApiKeyVerifier } from './libraries/api-keys.js';
import { createContextCache, invalidatingContextWrites } from './libraries/context-cache.js';
import { createRobotTokenVerifier } from './libraries/robot-tokens.js';
import { createSessionCheck } from './libraries/sessions.js';
import { createDecisionAuditor } from './pipeline/audit-decision.js';
import { createPipeline } from './pipeline/index.js';
import { createAccessRoutes } from './routes/access-routes.js';
import { createApiKeyRoutes } from './routes/api-key-routes.js';
import { createRobotRoutes } from './routes/robot-routes.js';
import { createAuditRoutes } from './routes/audit-routes.js';
import { createDeviceRoutes } from './routes/device-routes.js';
import { createPublicRoutes } from './routes/public-routes.js';
import { createSessionRoutes } from './routes/session-routes.js';
import { createTenantRoutes } from './routes/tenant-routes.js';
import { createServiceTokenRoutes } from './routes/service-token-routes.js';
import { createToolRoutes } from './routes/tool-routes.js';

const config = loadConfig(configSchema, process.env);

await runService({
  name: 'api-gateway',
  config,
  async start({ logger, lifecycle, identity }) {
    const client = <S extends Parameters<typeof createGrpcClient>[0]>(service: S, address: string, audience: string) => {
      const c = createGrpcClient(service, { address, deadlineMs: config.GRPC_DEADLINE_MS, credential: identity.credentialFor(audience) });
      lifecycle.onShutdown(`${service.typeName} client`, () => c.close());
      return c;
    };
    const auth = client(AuthService, config.AUTH_ADDRESS, 'auth');
    const tenants = client(TenantRegistryService, config.TENANT_REGISTRY_ADDRESS, 'tenant-registry');
    const policy = client(PolicyService, config.POLICY_ADDRESS, 'policy');
    const tools = client(ToolGatewayService, config.TOOL_GATEWAY_ADDRESS, 'tool-gateway');
    const devices = client(DeviceEnrollmentService, config.DEVICE_ENROLLMENT_ADDRESS, 'device-enrollment');
    const audit = client(AuditService, config.AUDIT_ADDRESS, 'audit');

    const nc = await connectNats({ servers: config.NATS_URL, name: 'api-gateway', logger });
    lifecycle.onShutdown('nats', () => nc.drain());
    const auditPublisher = createAuditPublisher({ nc, subjectPrefix: config.NATS_SUBJECT_PREFIX });
    await auditPublisher.ensureStream();

    // No offline queue: while Redis is unreachable a session check fails at once and the
    // request is denied with 503, instead of waiting.
    const redis = new Redis(config.REDIS_URL, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: config.GRPC_DEADLINE_MS,
    });
    redis.on('error', (error: Error) => logger.warn({ err: error }, 'redis connection error'));
    lifecycle.onShutdown('redis', () => redis.quit());

    // Context resolution (steps 1 and 2) goes through the two-level cache; tenant-registry's
    // change notices drop stale entries on every replica (see src/libraries/context-cache.ts).
    const contexts = createContextCache({
      registry: tenants,
      store: redis,
      keyPrefix: config.REDIS_KEY_PREFIX,
      localTtlMs: config.CONTEXT_CACHE_LOCAL_TTL_MS,
      remoteTtlMs: config.CONTEXT_CACHE_REDIS_TTL_MS,
      refusalTtlMs: config.CONTEXT_CACHE_REFUSAL_TTL_MS,
      maxEntries: config.CONTEXT_CACHE_MAX_ENTRIES,
      logger,
    });
    subscribeTenantChanges({
      nc,
      subjectPrefix: config.NATS_SUBJECT_PREFIX,
      logger,
      onChange: ({ tenantId }) => void contexts.invalidate(tenantId),
      onReconnect: () => contexts.reset(),
    });
    await nc.flush();

    const jwksUrl = new URL(config.AUTH_JWKS_URL);
    const pipeline = createPipeline({
      tenants: contexts,
      platformHosts: config.PLATFORM_HOSTS,
      verifyAccessToken: createAccessTokenVerifier({
        keys: createRemoteJWKSet(jwksUrl, { timeoutDuration: config.GRPC_DEADLINE_MS, cooldownDuration: 30_000, cacheMaxAge: 600_000 }),
        issuer: config.AUTH_ISSUER,
        audience: config.AUTH_AUDIENCE,
      }),
      verifyApiKey: createApiKeyVerifier({ auth }),
      verifyRobotToken: createRobotTokenVerifier({ auth }),
      isSessionActive: createSessionCheck({ store: redis, keyPrefix: config.REDIS_KEY_PREFIX }),
      auditDecision: createDecisionAuditor(auditPublisher),
      policy,
    });

    const fetchJwks = async (): Promise<unknown> => {
      const response = await fetch(jwksUrl, { signal: AbortSignal.timeout(config.GRPC_DEADLINE_MS) }).catch((error: unknown) => {
        throw new AppError('DEPENDENCY_UNAVAILABLE', 'key set is unavailable', { cause: error });
      });
      if (!response.ok) throw new AppError('DEPENDENCY_UNAVAILABLE', 'key set is unavailable');
      return response.json();
    };

    const app = createApp({
      logger,
      pipeline,
      bodyLimitBytes: config.BODY_LIMIT_BYTES,
      publicRoutes: createPublicRoutes({ auth, tenants, devices, fetchJwks, secureCookies: config.COOKIE_SECURE }),
      protectedRoutes: [
        ...createSessionRoutes({ auth }),
        ...createApiKeyRoutes({ auth, policy }),
        ...createRobotRoutes({ auth }),
        ...createServiceTokenRoutes({ auth }),
        ...createAccessRoutes({ policy, tenants: { resolveContext: contexts.resolveContext, getMembership: tenants.getMembership } }),
        ...createTenantRoutes({ tenants: invalidatingContextWrites(tenants, contexts) }),
        ...createToolRoutes({ tools }),
        ...createDeviceRoutes({ devices }),
        ...createAuditRoutes({ audit }),
      ],
    });

    const server = await new Promise<Server>((resolve, reject) => {
      const listening = app.listen(config.HTTP_PORT, config.LISTEN_HOST, (error?: Error) => (error ? reject(error) : resolve(listening)));
    });
    lifecycle.onShutdown('http', () => new Promise<void>((resolve) => server.close(() => resolve())));
    logger.info({ httpPort: config.HTTP_PORT }, 'gateway HTTP listening');
    return { isReady: () => !nc.isClosed() && server.listening && redis.status === 'ready' };
  },
});
