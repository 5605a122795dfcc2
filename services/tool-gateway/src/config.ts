import { baseConfigSchema, databaseConfigSchema, natsConfigSchema, z } from '@portcullis/kit';

export const configSchema = baseConfigSchema
  .extend(databaseConfigSchema.shape)
  .extend(natsConfigSchema.shape)
  .extend({
    GRPC_PORT: baseConfigSchema.shape.GRPC_PORT.default(50054),
    ADMIN_PORT: baseConfigSchema.shape.ADMIN_PORT.default(9054),
    /** Budget for one upstream tool call, connection through last body byte. */
    TOOL_TIMEOUT_MS: z.coerce.number().int().positive().default(5000),
    /** Largest upstream response body read; a bigger one fails the call. */
    TOOL_MAX_RESPONSE_BYTES: z.coerce.number().int().positive().default(1_048_576),
    /** Lets endpoints resolve to loopback/private/link-local addresses (development only). */
    TOOL_ALLOW_PRIVATE_TARGETS: z.stringbool().default(false),
  });

export type Config = z.infer<typeof configSchema>;
