import {
  AppError,
  auditSpoolConfigSchema,
  baseConfigSchema,
  checkAuditSpoolConfig,
  databaseConfigSchema,
  natsConfigSchema,
  z,
} from '@portcullis/kit';
import { parseAllowedTargets } from './libraries/target-guard.js';

/** Comma-separated `host:port` entries, parsed and normalised; empty allows nothing. */
const allowedTargets = z
  .string()
  .default('')
  .transform((text, ctx) => {
    try {
      return parseAllowedTargets(text);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: error instanceof AppError ? error.message : 'is not a list of host:port entries' });
      return z.NEVER;
    }
  });

export const configSchema = baseConfigSchema
  .extend(databaseConfigSchema.shape)
  .extend(natsConfigSchema.shape)
  /** AUDIT_SPOOL_DIR, AUDIT_SPOOL_MAX_BYTES, AUDIT_SPOOL_MAX_EVENTS: tool call records JetStream has not acknowledged (kit README). */
  .extend(auditSpoolConfigSchema.shape)
  .extend({
    GRPC_PORT: baseConfigSchema.shape.GRPC_PORT.default(50054),
    ADMIN_PORT: baseConfigSchema.shape.ADMIN_PORT.default(9054),
    /** Budget for one upstream tool call, connection through last body byte. */
    TOOL_TIMEOUT_MS: z.coerce.number().int().positive().default(5000),
    /** Largest upstream response body read; a bigger one fails the call. */
    TOOL_MAX_RESPONSE_BYTES: z.coerce.number().int().positive().default(1_048_576),
    /** Exact `host:port` endpoints that may be called although they are loopback/private (development). */
    TOOL_ALLOWED_PRIVATE_TARGETS: allowedTargets,
  })
  .superRefine(checkAuditSpoolConfig);

export type Config = z.infer<typeof configSchema>;
