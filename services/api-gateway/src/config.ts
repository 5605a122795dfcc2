import { commaListSchema, natsConfigSchema, portSchema, redisConfigSchema, serviceIdentityConfigSchema, z } from '@portcullis/kit';

const address = z.string().regex(/^[^:\s]+:\d+$/, 'expected host:port');

export const configSchema = natsConfigSchema
  .extend(redisConfigSchema.shape)
  .extend(serviceIdentityConfigSchema.shape)
  .extend({
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    LISTEN_HOST: z.string().default('127.0.0.1'),
    HTTP_PORT: portSchema.default(8080),
    ADMIN_PORT: portSchema.default(9080),
    SHUTDOWN_BUDGET_MS: z.coerce.number().int().positive().default(10000),
    OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),
    /** Deadline for every downstream gRPC call; a slower dependency is answered with 503. */
    GRPC_DEADLINE_MS: z.coerce.number().int().positive().default(2000),
    AUTH_ADDRESS: address.default('127.0.0.1:50051'),
    AUTH_JWKS_URL: z.url().default('http://127.0.0.1:8081/.well-known/jwks.json'),
    AUTH_ISSUER: z.string().default('portcullis-auth'),
    AUTH_AUDIENCE: z.string().default('portcullis'),
    TENANT_REGISTRY_ADDRESS: address.default('127.0.0.1:50052'),
    POLICY_ADDRESS: address.default('127.0.0.1:50053'),
    TOOL_GATEWAY_ADDRESS: address.default('127.0.0.1:50054'),
    DEVICE_ENROLLMENT_ADDRESS: address.default('127.0.0.1:50055'),
    AUDIT_ADDRESS: address.default('127.0.0.1:50056'),
    /**
     * Hosts that serve the console/API itself rather than a tenant's domain (comma-separated).
     * On these, the tenant comes from the credential and is confirmed with the registry.
     */
    PLATFORM_HOSTS: commaListSchema('localhost,127.0.0.1,[::1]').transform((hosts) => hosts.map((host) => host.toLowerCase())),
    /**
     * Context resolution cache (src/libraries/context-cache.ts). Change notices drop entries at
     * once; these TTLs bound staleness only when a notice is missed: in-process, in Redis, and
     * for refusals (NOT_FOUND, TENANT_SUSPENDED) at either level.
     */
    CONTEXT_CACHE_LOCAL_TTL_MS: z.coerce.number().int().positive().default(5000),
    CONTEXT_CACHE_REDIS_TTL_MS: z.coerce.number().int().positive().default(60000),
    CONTEXT_CACHE_REFUSAL_TTL_MS: z.coerce.number().int().positive().default(5000),
    CONTEXT_CACHE_MAX_ENTRIES: z.coerce.number().int().positive().default(10000),
    BODY_LIMIT_BYTES: z.coerce.number().int().positive().default(65536),
    /**
     * Cookies the gateway sets (the Google/GitHub sign-in binding) are Secure, with the `__Host-`
     * prefix. Set to false only when the gateway is served over plain HTTP in local development.
     */
    COOKIE_SECURE: z.stringbool().default(true),
  });

export type Config = z.infer<typeof configSchema>;
