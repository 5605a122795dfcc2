import { baseConfigSchema, databaseConfigSchema, natsConfigSchema, z } from '@portcullis/kit';

export const configSchema = baseConfigSchema
  .extend(databaseConfigSchema.shape)
  .extend(natsConfigSchema.shape)
  .extend({
    GRPC_PORT: baseConfigSchema.shape.GRPC_PORT.default(50055),
    ADMIN_PORT: baseConfigSchema.shape.ADMIN_PORT.default(9055),
    /** How long an activation code stays usable. */
    ACTIVATION_CODE_TTL_SECONDS: z.coerce.number().int().positive().max(86_400).default(600),
    /** Wrong codes an assistant's live sessions survive; at this many they stop binding. */
    ACTIVATION_MAX_ATTEMPTS: z.coerce.number().int().positive().default(5),
  });

export type Config = z.infer<typeof configSchema>;
