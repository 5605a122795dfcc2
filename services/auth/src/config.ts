import { base64KeySchema, baseConfigSchema, databaseConfigSchema, portSchema, redisConfigSchema, z } from '@portcullis/kit';

/** The AES-256-GCM key that wraps private signing keys. */
const signingKeySecret = base64KeySchema(32);

export const configSchema = baseConfigSchema
  .extend(databaseConfigSchema.shape)
  .extend(redisConfigSchema.shape)
  .extend({
    GRPC_PORT: baseConfigSchema.shape.GRPC_PORT.default(50051),
    ADMIN_PORT: baseConfigSchema.shape.ADMIN_PORT.default(9051),
    /** Plain HTTP port serving /.well-known/jwks.json. */
    JWKS_PORT: portSchema.default(8081),
    TENANT_REGISTRY_ADDRESS: z.string().min(1).default('127.0.0.1:50052'),
    AUTH_ISSUER: z.string().min(1).default('portcullis-auth'),
    AUTH_AUDIENCE: z.string().min(1).default('portcullis'),
    ACCESS_TOKEN_TTL_SECONDS: z.coerce.number().int().min(30).max(86_400).default(900),
    LOGIN_TICKET_TTL_SECONDS: z.coerce.number().int().min(10).max(3_600).default(300),
    /** Lifetime of a session and of each refresh token; every refresh starts it again. */
    REFRESH_TOKEN_TTL_SECONDS: z.coerce.number().int().min(60).max(31_536_000).default(2_592_000),
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
    /** `file` (development: codes go to SMS_OUTBOX_FILE) or `aliyun` (Alibaba Cloud SMS). */
    SMS_PROVIDER: z.enum(['file', 'aliyun']).default('file'),
    SMS_OUTBOX_FILE: z.string().min(1).default('.portcullis/sms-outbox.jsonl'),
    ALIYUN_SMS_ACCESS_KEY_ID: z.string().trim().min(1).optional(),
    ALIYUN_SMS_ACCESS_KEY_SECRET: z.string().trim().min(1).optional(),
    ALIYUN_SMS_SIGN_NAME: z.string().trim().min(1).optional(),
    ALIYUN_SMS_TEMPLATE_CODE: z.string().trim().min(1).optional(),
    ALIYUN_SMS_ENDPOINT: z.url({ protocol: /^https?$/u }).default('https://dysmsapi.aliyuncs.com'),
  })
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
  });

export type Config = z.infer<typeof configSchema>;
