import { Redis } from 'ioredis';
import { createRemoteJWKSet } from 'jose';
import {
  AppError,
  auditSpoolDirOf,
  connectNats,
  createAuditPublisher,
  createBackgroundAuditPublisher,
  createGrpcClient,
  loadConfig,
  openAuditSpool,
  policyChangedSubject,
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
import { cachedDocument } from './libraries/cached-document.js';
import { createApiKeyVerifier } from './libraries/api-keys.js';
import { createContextCache, invalidatingContextWrites } from './libraries/context-cache.js';
import { createCookieSessions } from './libraries/cookie-sessions.js';
import { createDecisionCache } from './libraries/decision-cache.js';
import { createRateLimiter, redisWindowLimiters } from './libraries/rate-limiter.js';
import { createRobotTokenVerifier } from './libraries/robot-tokens.js';
import { createSessionCheck } from './libraries/sessions.js';
import { createVerifiedTokenCache } from './libraries/verified-tokens.js';
import { countingRateLimitHits, createGatewayMetrics, trackDecisionSource } from './http/metrics.js';
import { createRequestErrorAuditor } from './http/audit-request-error.js';
import { startHttpServer } from './http/server.js';
import { createDecisionAuditor } from './pipeline/audit-decision.js';
import { createPipeline } from './pipeline/index.js';
import { createRoutes } from './routes/index.js';

const config = loadConfig(configSchema, process.env);

await runService({
  name: 'api-gateway',
  config,
  async start({ logger, lifecycle, identity, metrics }) {
    const gatewayMetrics = createGatewayMetrics(metrics);
    const client = <S extends Parameters<typeof createGrpcClient>[0]>(service: S, address: string, audience: string) => {
      const c = createGrpcClient(service, {
        address,
        deadlineMs: config.GRPC_DEADLINE_MS,
        credential: identity.credentialFor(audience),
        metrics,
      });
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
    const durableAudit = createAuditPublisher({ nc, subjectPrefix: config.NATS_SUBJECT_PREFIX });
    await durableAudit.ensureStream();
    // Requests do not wait for JetStream's ack; events are retried until stored, spooled to disk
    // while JetStream does not ack (replayed in order, also after a restart), and drained at
    // shutdown (registered after NATS, so it runs before NATS is drained).
    const auditPublisher = createBackgroundAuditPublisher({
      publisher: durableAudit,
      maxPending: config.AUDIT_MAX_PENDING,
      lingerMs: config.AUDIT_BATCH_LINGER_MS,
      logger,
      spool: await openAuditSpool({
        dir: auditSpoolDirOf(config, 'api-gateway'),
        maxBytes: config.AUDIT_SPOOL_MAX_BYTES,
        maxEvents: config.AUDIT_SPOOL_MAX_EVENTS,
        logger,
      }),
    });
    lifecycle.onShutdown('audit events', async () => {
      await auditPublisher.drain(config.SHUTDOWN_BUDGET_MS / 2);
    });

    // No offline queue: while Redis is unreachable a session check or a rate-limit count fails
    // at once and the request is denied with 503, instead of waiting. Commands of concurrent
    // requests leave in one pipeline.
    const redis = new Redis(config.REDIS_URL, {
      enableOfflineQueue: false,
      enableAutoPipelining: true,
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
      isRegistryAvailable: () => tenants.isConnected(),
      logger,
    });
    // Policy decisions reused briefly (src/libraries/decision-cache.ts); never while the policy
    // service is unreachable, and dropped at any policy or tenant change of their tenant.
    // The answers the cache got from the service are remembered, so decisions are counted by source.
    const decisionSource = trackDecisionSource(policy);
    const decisions = createDecisionCache({
      policy: decisionSource.policy,
      ttlMs: config.DECISION_CACHE_TTL_MS,
      maxEntries: config.DECISION_CACHE_MAX_ENTRIES,
      isPolicyAvailable: () => config.DECISION_CACHE_TTL_MS > 0 && policy.isConnected(),
    });
    subscribeTenantChanges({
      nc,
      subjectPrefix: config.NATS_SUBJECT_PREFIX,
      logger,
      onChange: ({ tenantId }) => {
        decisions.invalidate(tenantId);
        void contexts.invalidate(tenantId);
      },
      onReconnect: () => {
        decisions.reset();
        contexts.reset();
      },
    });
    subscribeTenantChanges({
      nc,
      subjectPrefix: config.NATS_SUBJECT_PREFIX,
      subject: policyChangedSubject(config.NATS_SUBJECT_PREFIX),
      logger,
      onChange: ({ tenantId }) => decisions.invalidate(tenantId),
    });
    await nc.flush();

    const cookieSessions = createCookieSessions({ secure: config.COOKIE_SECURE, csrfSecret: config.CSRF_SECRET });
    const consumeRateLimit = countingRateLimitHits(
      createRateLimiter({ limiters: redisWindowLimiters(redis), keyPrefix: config.REDIS_KEY_PREFIX }),
      gatewayMetrics.rateLimitHits,
    );

    const jwksUrl = new URL(config.AUTH_JWKS_URL);
    const pipeline = createPipeline({
      tenants: contexts,
      platformHosts: config.PLATFORM_HOSTS,
      verifyAccessToken: createVerifiedTokenCache({
        verify: createAccessTokenVerifier({
          keys: createRemoteJWKSet(jwksUrl, { timeoutDuration: config.GRPC_DEADLINE_MS, cooldownDuration: 30_000, cacheMaxAge: 600_000 }),
          issuer: config.AUTH_ISSUER,
          audience: config.AUTH_AUDIENCE,
        }),
        maxAgeMs: config.TOKEN_CACHE_MAX_AGE_MS,
        maxEntries: config.TOKEN_CACHE_MAX_ENTRIES,
      }),
      verifyApiKey: createApiKeyVerifier({ auth }),
      verifyRobotToken: createRobotTokenVerifier({ auth }),
      isSessionActive: createSessionCheck({ store: redis, keyPrefix: config.REDIS_KEY_PREFIX }),
      isValidCsrfToken: cookieSessions.isValidCsrfToken,
      consumeRateLimit,
      rateLimits: config.RATE_LIMITS,
      auditDecision: createDecisionAuditor(auditPublisher),
      policy: decisions,
      authzDecisions: gatewayMetrics.authzDecisions,
      decisionSourceOf: decisionSource.sourceOf,
    });

    // The public JWKS route serves a copy at most a minute old: a flood of requests is never a flood of fetches.
    const fetchJwks = cachedDocument(async (): Promise<unknown> => {
      const response = await fetch(jwksUrl, { signal: AbortSignal.timeout(config.GRPC_DEADLINE_MS) }).catch((error: unknown) => {
        throw new AppError('DEPENDENCY_UNAVAILABLE', 'key set is unavailable', { cause: error });
      });
      if (!response.ok) throw new AppError('DEPENDENCY_UNAVAILABLE', 'key set is unavailable');
      return response.json();
    }, 60_000);

    const { publicRoutes, protectedRoutes } = createRoutes({
      public: { auth, tenants, devices, fetchJwks, secureCookies: config.COOKIE_SECURE, cookieSessions },
      sessions: { auth, cookieSessions },
      apiKeys: { auth, policy },
      robots: { auth },
      serviceTokens: { auth },
      access: { policy, tenants: { resolveContext: contexts.resolveContext, getMembership: tenants.getMembership } },
      tenants: { tenants: invalidatingContextWrites(tenants, contexts) },
      tools: { tools },
      devices: { devices },
      audit: { audit },
      // Conversation and feedback records wait for JetStream's ack: 201 means stored, 503 means send it again.
      records: { audit: durableAudit },
    });
    const app = createApp({
      logger,
      pipeline,
      publicRoutes,
      protectedRoutes,
      bodyLimitBytes: config.BODY_LIMIT_BYTES,
      maxJsonDepth: config.MAX_JSON_DEPTH,
      corsOrigins: config.CORS_ALLOWED_ORIGINS,
      sessionCookieName: cookieSessions.names.access,
      consumeRateLimit,
      rateLimits: config.RATE_LIMITS,
      httpMetrics: { requests: gatewayMetrics.httpRequests, duration: gatewayMetrics.httpDuration },
      auditRequestError: createRequestErrorAuditor({ audit: auditPublisher, logger }),
    });

    const tls =
      config.TLS_CERT_FILE !== undefined && config.TLS_KEY_FILE !== undefined
        ? { certFile: config.TLS_CERT_FILE, keyFile: config.TLS_KEY_FILE, caFile: config.TLS_CA_FILE }
        : undefined;
    const server = await startHttpServer({ handler: app, host: config.LISTEN_HOST, port: config.HTTP_PORT, tls });
    lifecycle.onShutdown('http', () => new Promise<void>((resolve) => server.close(() => resolve())));
    logger.info(
      { httpPort: config.HTTP_PORT, tls: tls !== undefined },
      tls ? 'gateway HTTPS listening (TLS 1.3 minimum)' : 'gateway HTTP listening',
    );
    return { isReady: () => !nc.isClosed() && server.listening && redis.status === 'ready' };
  },
});
