import {
  auditSpoolConfigSchema,
  base64KeySchema,
  checkAuditSpoolConfig,
  commaListSchema,
  natsConfigSchema,
  portSchema,
  redisConfigSchema,
  serviceIdentityConfigSchema,
  z,
} from '@portcullis/kit';
import { rateLimitsConfigSchema } from './libraries/rate-limit-config.js';

const address = z.string().regex(/^[^:\s]+:\d+$/, 'expected host:port');

/** A browser origin exactly as browsers send it: scheme, host and port if not the default, nothing else. */
const origin = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === value;
  } catch {
    return false;
  }
}, 'expected an origin such as https://console.example.com (no path, no trailing slash)');

export const configSchema = natsConfigSchema
  .extend(redisConfigSchema.shape)
  .extend(serviceIdentityConfigSchema.shape)
  /** AUDIT_SPOOL_DIR, AUDIT_SPOOL_MAX_BYTES, AUDIT_SPOOL_MAX_EVENTS: audit batches JetStream has not acknowledged (kit README). */
  .extend(auditSpoolConfigSchema.shape)
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
    /** Deepest nesting of arrays/objects a JSON body may have; deeper bodies are refused before parsing. */
    MAX_JSON_DEPTH: z.coerce.number().int().min(1).max(1000).default(32),
    /** Browser origins allowed to call the API with CORS (comma-separated); none by default. */
    CORS_ALLOWED_ORIGINS: commaListSchema('').pipe(z.array(origin)),
    /**
     * Key the cookie sessions' CSRF tokens are derived with (base64 of 32 random bytes), the same
     * on every replica. Required.
     */
    CSRF_SECRET: base64KeySchema(32),
    /** Rate limits per plan and for sensitive routes, JSON (src/libraries/rate-limit-config.ts); defaults apply when unset. */
    RATE_LIMITS: rateLimitsConfigSchema,
    /**
     * Policy decisions are reused for at most this long (allow and deny), and dropped at once
     * by the tenant's policy or tenant change notices; 0 turns the reuse off.
     */
    DECISION_CACHE_TTL_MS: z.coerce.number().int().min(0).max(60_000).default(2000),
    DECISION_CACHE_MAX_ENTRIES: z.coerce.number().int().positive().default(50_000),
    /** A verified access token is remembered (by hash) until it expires, or at most this long. */
    TOKEN_CACHE_MAX_AGE_MS: z.coerce.number().int().min(0).max(3_600_000).default(300_000),
    TOKEN_CACHE_MAX_ENTRIES: z.coerce.number().int().positive().default(50_000),
    /** Audit events accepted and neither stored by JetStream nor spooled, at most; beyond it requests are denied (503). */
    AUDIT_MAX_PENDING: z.coerce.number().int().positive().default(10_000),
    /** How long a batch of audit events waits for more before it is published (requests never wait for it). */
    AUDIT_BATCH_LINGER_MS: z.coerce.number().int().min(0).max(1_000).default(10),
    /** TLS termination (TLS 1.3 minimum): PEM certificate chain and private key; both or neither. */
    TLS_CERT_FILE: z.string().min(1).optional(),
    TLS_KEY_FILE: z.string().min(1).optional(),
    /** Optional PEM intermediate chain, sent after the certificate. */
    TLS_CA_FILE: z.string().min(1).optional(),
    /**
     * Cookies the gateway sets (the Google/GitHub sign-in binding) are Secure, with the `__Host-`
     * prefix. Set to false only when the gateway is served over plain HTTP in local development.
     */
    COOKIE_SECURE: z.stringbool().default(true),
  })
  .refine((config) => (config.TLS_CERT_FILE === undefined) === (config.TLS_KEY_FILE === undefined), {
    message: 'set TLS_CERT_FILE and TLS_KEY_FILE together',
    path: ['TLS_CERT_FILE'],
  })
  .superRefine(checkAuditSpoolConfig);

export type Config = z.infer<typeof configSchema>;
