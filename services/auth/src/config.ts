import {
  auditSpoolConfigSchema,
  base64KeySchema,
  baseConfigSchema,
  checkAuditSpoolConfig,
  databaseConfigSchema,
  natsConfigSchema,
  portSchema,
  redisConfigSchema,
  z,
} from '@portcullis/kit';
import { isAllowedEndpoint, isLoopbackHost } from './libraries/oauth-providers.js';

/** The AES-256-GCM key that wraps private signing keys. */
const signingKeySecret = base64KeySchema(32);

export const configSchema = baseConfigSchema
  .extend(databaseConfigSchema.shape)
  .extend(redisConfigSchema.shape)
  /** NATS_URL, NATS_SUBJECT_PREFIX: where sign-ins, token, API-key and robot events are published (audit stream). */
  .extend(natsConfigSchema.shape)
  /** AUDIT_SPOOL_DIR, AUDIT_SPOOL_MAX_BYTES, AUDIT_SPOOL_MAX_EVENTS: audit events JetStream has not acknowledged (kit README). */
  .extend(auditSpoolConfigSchema.shape)
  .extend({
    GRPC_PORT: baseConfigSchema.shape.GRPC_PORT.default(50051),
    ADMIN_PORT: baseConfigSchema.shape.ADMIN_PORT.default(9051),
    /** Plain HTTP port serving /.well-known/jwks.json. */
    JWKS_PORT: portSchema.default(8081),
    TENANT_REGISTRY_ADDRESS: z.string().min(1).default('127.0.0.1:50052'),
    AUTH_ISSUER: z.string().min(1).default('portcullis-auth'),
    AUTH_AUDIENCE: z.string().min(1).default('portcullis'),
    ACCESS_TOKEN_TTL_SECONDS: z.coerce.number().int().min(30).max(86_400).default(900),
    /** Lifetime of a tenant service credential (IssueServiceToken); a revoked API key's credentials die within it. */
    SERVICE_TOKEN_TTL_SECONDS: z.coerce.number().int().min(30).max(900).default(300),
    LOGIN_TICKET_TTL_SECONDS: z.coerce.number().int().min(10).max(3_600).default(300),
    /** Lifetime of a session and of each refresh token; every refresh starts it again. */
    REFRESH_TOKEN_TTL_SECONDS: z.coerce.number().int().min(60).max(31_536_000).default(2_592_000),
    /** How long an expired refresh token is kept (reuse of a spent one is still detected) before it is purged. */
    REFRESH_TOKEN_RETENTION_SECONDS: z.coerce.number().int().min(0).max(31_536_000).default(604_800),
    /** How long a rotated-in signing key is published before it signs anything. */
    SIGNING_KEY_PROPAGATION_SECONDS: z.coerce.number().int().min(0).max(86_400).default(60),
    /** Window in which failed sign-ins are counted (from the first failure counted). */
    LOGIN_FAILURE_WINDOW_SECONDS: z.coerce.number().int().min(1).max(86_400).default(900),
    LOGIN_MAX_FAILURES_PER_ACCOUNT: z.coerce.number().int().min(1).max(1_000).default(5),
    LOGIN_MAX_FAILURES_PER_IP: z.coerce.number().int().min(1).max(1_000_000).default(50),
    AUTH_SIGNING_KEY_SECRET: signingKeySecret,
    /** Lifetime of an SMS verification code. */
    PHONE_CODE_TTL_SECONDS: z.coerce.number().int().min(30).max(3_600).default(300),
    /** Minimum time between two codes sent to one account. */
    PHONE_CODE_RESEND_SECONDS: z.coerce.number().int().min(1).max(3_600).default(60),
    /** Wrong attempts after which a code is dead. */
    PHONE_CODE_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(5),
    /** Most codes sent per day to one account. */
    PHONE_CODE_MAX_SENDS_PER_DAY: z.coerce.number().int().min(1).max(1_000).default(10),
    /** Most codes sent per day to one phone number, across accounts (kept above the account cap). */
    PHONE_CODE_MAX_SENDS_PER_NUMBER_PER_DAY: z.coerce.number().int().min(1).max(10_000).default(30),
    /** Most wrong codes per account per day, across all its codes. */
    PHONE_CODE_MAX_FAILURES_PER_DAY: z.coerce.number().int().min(1).max(1_000).default(20),
    /** `file` (development: codes go to SMS_OUTBOX_FILE) or `aliyun` (Alibaba Cloud SMS). */
    SMS_PROVIDER: z.enum(['file', 'aliyun']).default('file'),
    SMS_OUTBOX_FILE: z.string().min(1).default('.portcullis/sms-outbox.jsonl'),
    ALIYUN_SMS_ACCESS_KEY_ID: z.string().trim().min(1).optional(),
    ALIYUN_SMS_ACCESS_KEY_SECRET: z.string().trim().min(1).optional(),
    ALIYUN_SMS_SIGN_NAME: z.string().trim().min(1).optional(),
    ALIYUN_SMS_TEMPLATE_CODE: z.string().trim().min(1).optional(),
    ALIYUN_SMS_ENDPOINT: z.url({ protocol: /^https?$/u }).default('https://dysmsapi.aliyuncs.com'),
    /**
     * Public base URL of the gateway; the providers redirect to
     * `<base>/api/auth/oauth/<google|github>/callback`. Required once a provider is configured.
     */
    OAUTH_REDIRECT_BASE_URL: z.url({ protocol: /^https?$/u }).optional(),
    /** Lifetime of a started Google/GitHub sign-in (its signed state and single-use record). */
    OAUTH_STATE_TTL_SECONDS: z.coerce.number().int().min(60).max(3_600).default(600),
    /** Development and tests only: lets the provider endpoints be plain http:// on 127.0.0.1, localhost or [::1]. */
    OAUTH_ALLOW_INSECURE_LOOPBACK: z.stringbool().default(false),
    /** Google sign-in is enabled when both are set. */
    GOOGLE_CLIENT_ID: z.string().trim().min(1).optional(),
    GOOGLE_CLIENT_SECRET: z.string().trim().min(1).optional(),
    /** OpenID Connect issuer; its endpoints are discovered from it. */
    GOOGLE_ISSUER: z.url({ protocol: /^https?$/u }).default('https://accounts.google.com'),
    /** GitHub sign-in is enabled when both are set. */
    GITHUB_CLIENT_ID: z.string().trim().min(1).optional(),
    GITHUB_CLIENT_SECRET: z.string().trim().min(1).optional(),
    GITHUB_AUTHORIZE_URL: z.url({ protocol: /^https?$/u }).default('https://github.com/login/oauth/authorize'),
    GITHUB_TOKEN_URL: z.url({ protocol: /^https?$/u }).default('https://github.com/login/oauth/access_token'),
    GITHUB_API_URL: z.url({ protocol: /^https?$/u }).default('https://api.github.com'),
  })
  .superRefine(checkAuditSpoolConfig)
  .superRefine((config, ctx) => {
    if (config.SMS_PROVIDER !== 'aliyun') return;
    for (const name of [
      'ALIYUN_SMS_ACCESS_KEY_ID',
      'ALIYUN_SMS_ACCESS_KEY_SECRET',
      'ALIYUN_SMS_SIGN_NAME',
      'ALIYUN_SMS_TEMPLATE_CODE',
    ] as const) {
      if (config[name] === undefined) ctx.addIssue({ code: 'custom', path: [name], message: 'required when SMS_PROVIDER is aliyun' });
    }
  })
  .superRefine((config, ctx) => {
    const pairs = [
      ['GOOGLE_CLIENT_ID', 'GOOGLE_CLIENT_SECRET'],
      ['GITHUB_CLIENT_ID', 'GITHUB_CLIENT_SECRET'],
    ] as const;
    for (const [id, secret] of pairs) {
      if ((config[id] === undefined) !== (config[secret] === undefined)) {
        ctx.addIssue({ code: 'custom', path: [config[id] === undefined ? id : secret], message: `${id} and ${secret} go together` });
      }
    }
    const enabled = pairs.some(([id, secret]) => config[id] !== undefined && config[secret] !== undefined);
    const required = 'required when Google or GitHub sign-in is configured';
    if (config.OAUTH_REDIRECT_BASE_URL === undefined) {
      if (enabled) ctx.addIssue({ code: 'custom', path: ['OAUTH_REDIRECT_BASE_URL'], message: required });
    } else {
      const base = new URL(config.OAUTH_REDIRECT_BASE_URL);
      // The browser lands here with the authorization code: https, except on the developer's own machine.
      if (base.protocol !== 'https:' && !isLoopbackHost(base.hostname)) {
        ctx.addIssue({ code: 'custom', path: ['OAUTH_REDIRECT_BASE_URL'], message: 'must be https:// (http:// only on a loopback host)' });
      }
      if (base.search !== '' || base.hash !== '') {
        ctx.addIssue({ code: 'custom', path: ['OAUTH_REDIRECT_BASE_URL'], message: 'must not have a query or fragment' });
      }
    }
    for (const name of ['GOOGLE_ISSUER', 'GITHUB_AUTHORIZE_URL', 'GITHUB_TOKEN_URL', 'GITHUB_API_URL'] as const) {
      if (!isAllowedEndpoint(new URL(config[name]), config.OAUTH_ALLOW_INSECURE_LOOPBACK)) {
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: 'must be https:// (http:// only on a loopback host with OAUTH_ALLOW_INSECURE_LOOPBACK=true)',
        });
      }
    }
  });

export type Config = z.infer<typeof configSchema>;
