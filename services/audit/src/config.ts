import { createPublicKey, type KeyObject } from 'node:crypto';
import { baseConfigSchema, databaseConfigSchema, natsConfigSchema, serviceIdentityConfigSchema, z } from '@portcullis/kit';

const ed25519PublicJwk = z.object({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: z.string().min(1) });

export const configSchema = baseConfigSchema
  .extend(databaseConfigSchema.shape)
  .extend(natsConfigSchema.shape)
  .extend({
    GRPC_PORT: baseConfigSchema.shape.GRPC_PORT.default(50056),
    ADMIN_PORT: baseConfigSchema.shape.ADMIN_PORT.default(9056),
    /** Durable JetStream consumer name; replicas sharing it share the work. */
    AUDIT_CONSUMER_NAME: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/)
      .default('audit-store'),
    /** Durable JetStream consumer name for robot events (`robots.<tenant>.<robot>.events`). */
    ROBOT_EVENTS_CONSUMER_NAME: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/)
      .default('robot-events-store'),
    /** The auth service, which verifies the token of every robot event. */
    AUTH_ADDRESS: z.string().min(1).default('127.0.0.1:50051'),
    /** Ed25519 private key (PKCS#8 PEM) the chains' checkpoints are signed with. Kept outside the database. */
    AUDIT_CHECKPOINT_KEY: serviceIdentityConfigSchema.shape.SERVICE_IDENTITY_KEY,
    /** Public keys (JSON list of Ed25519 JWKs) of earlier checkpoint keys, still trusted for what they signed. */
    AUDIT_CHECKPOINT_PREVIOUS_KEYS: z
      .string()
      .default('[]')
      .transform((text, ctx): KeyObject[] => {
        try {
          return z
            .array(ed25519PublicJwk)
            .parse(JSON.parse(text))
            .map((jwk) => createPublicKey({ key: jwk, format: 'jwk' }));
        } catch {
          ctx.addIssue({ code: 'custom', message: 'must be a JSON list of Ed25519 public JWKs' });
          return z.NEVER;
        }
      }),
    /** How often every chain that grew gets a signed checkpoint. */
    AUDIT_CHECKPOINT_INTERVAL_MS: z.coerce.number().int().min(100).max(86_400_000).default(60_000),
  });

export type Config = z.infer<typeof configSchema>;
