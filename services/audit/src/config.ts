import { baseConfigSchema, databaseConfigSchema, natsConfigSchema, z } from '@portcullis/kit';

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
  });

export type Config = z.infer<typeof configSchema>;
