import { z } from 'zod';
import { AppError } from './errors.js';
import { serviceIdentityConfigSchema } from './grpc/service-credentials.js';

/**
 * Parses the environment against a schema. Only a service's main.ts calls this; every
 * other module receives the typed result.
 */
export function loadConfig<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv): z.infer<S> {
  const result = schema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new AppError('INVALID_CONFIG', `Invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  return result.data;
}

const port = z.coerce.number().int().min(0).max(65535);
const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** An OpenTelemetry variable: set to the empty string counts as unset, as the specification says. */
const otel = <S extends z.ZodType>(schema: S) => z.preprocess((value) => (value === '' ? undefined : value), schema.optional());

/**
 * The standard OpenTelemetry variables the kit decides on, checked so that a mistyped value stops
 * the start instead of being silently replaced by a default. The SDK reads these (and the rest:
 * OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_*) itself;
 * see docs/tracing.md. Traces are exported only when an endpoint is set.
 */
export const otelConfigSchema = z.object({
  OTEL_SDK_DISABLED: otel(z.string()).transform((value) => value?.trim().toLowerCase() === 'true'),
  OTEL_TRACES_EXPORTER: otel(z.enum(['otlp', 'none'], { message: 'only "otlp" and "none" are supported' })),
  OTEL_EXPORTER_OTLP_ENDPOINT: otel(z.url()),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: otel(z.url()),
  /** Traces are sent as OTLP/HTTP JSON; another protocol would reach a receiver that cannot read them. */
  OTEL_EXPORTER_OTLP_PROTOCOL: otel(z.literal('http/json', { message: 'only "http/json" is supported' })),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: otel(z.literal('http/json', { message: 'only "http/json" is supported' })),
  OTEL_TRACES_SAMPLER: otel(
    z.enum(['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio']),
  ),
  OTEL_TRACES_SAMPLER_ARG: otel(z.coerce.number().min(0).max(1)),
});

/** Settings every service shares; services extend this with their own. */
export const baseConfigSchema = z.object({
  LOG_LEVEL: logLevel.default('info'),
  LISTEN_HOST: z.string().default('127.0.0.1'),
  GRPC_PORT: port,
  ADMIN_PORT: port,
  GRPC_DEADLINE_MS: z.coerce.number().int().positive().default(3000),
  SHUTDOWN_BUDGET_MS: z.coerce.number().int().positive().default(10000),
  ...otelConfigSchema.shape,
  ...serviceIdentityConfigSchema.shape,
});

export const databaseConfigSchema = z.object({
  /** Connection as the service's application role (not the table owner, no BYPASSRLS). */
  DATABASE_URL: z.url(),
  /** Owner connection used only to create the database and apply migrations on start. */
  DATABASE_ADMIN_URL: z.url().optional(),
});

export const natsConfigSchema = z.object({
  NATS_URL: z.string().min(1).default('nats://127.0.0.1:4222'),
  /** Prefix for every subject and stream name, so separate runs never collide. */
  NATS_SUBJECT_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]*$/)
    .default(''),
});

export const redisConfigSchema = z.object({
  REDIS_URL: z.string().min(1).default('redis://127.0.0.1:6379'),
  REDIS_KEY_PREFIX: z.string().default('portcullis:'),
});

/**
 * A secret key given as base64 of exactly `bytes` random bytes, decoded. The round-trip check
 * rejects strings that are not canonical base64 (Buffer.from is lenient); the value is never
 * repeated in the error.
 */
export function base64KeySchema(bytes: number) {
  return z.string().transform((value, ctx) => {
    const trimmed = value.trim();
    const decoded = Buffer.from(trimmed, 'base64');
    if (decoded.length !== bytes || decoded.toString('base64') !== trimmed) {
      ctx.addIssue({ code: 'custom', message: `must be the base64 encoding of ${bytes} random bytes` });
      return z.NEVER;
    }
    return decoded;
  });
}

/** A comma-separated list (the default when unset), each entry trimmed, empty entries dropped. */
export function commaListSchema(defaultValue = '') {
  return z
    .string()
    .default(defaultValue)
    .transform((value) =>
      value
        .split(',')
        .map((entry) => entry.trim())
        .filter((entry) => entry !== ''),
    );
}

export { port as portSchema, z };
