import { baseConfigSchema, databaseConfigSchema, natsConfigSchema, z } from '@portcullis/kit';

export const configSchema = baseConfigSchema
  .extend(databaseConfigSchema.shape)
  .extend(natsConfigSchema.shape)
  .extend({
    GRPC_PORT: baseConfigSchema.shape.GRPC_PORT.default(50052),
    ADMIN_PORT: baseConfigSchema.shape.ADMIN_PORT.default(9052),
    /** The policy service, where a member's role is assigned before the membership is stored. */
    POLICY_ADDRESS: z.string().min(1).default('127.0.0.1:50053'),
  });

export type Config = z.infer<typeof configSchema>;
