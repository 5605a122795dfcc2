import {
  auditSpoolConfigSchema,
  base64KeySchema,
  baseConfigSchema,
  checkAuditSpoolConfig,
  databaseConfigSchema,
  natsConfigSchema,
  z,
} from '@portcullis/kit';
import { ACTIVATION_CODE_SECRET_BYTES } from './libraries/activation-codes.js';

/** The HMAC key activation codes are hashed with. */
const activationCodeSecret = base64KeySchema(ACTIVATION_CODE_SECRET_BYTES);

export const configSchema = baseConfigSchema
  .extend(databaseConfigSchema.shape)
  .extend(natsConfigSchema.shape)
  /** AUDIT_SPOOL_DIR, AUDIT_SPOOL_MAX_BYTES, AUDIT_SPOOL_MAX_EVENTS: binding records JetStream has not acknowledged (kit README). */
  .extend(auditSpoolConfigSchema.shape)
  .extend({
    GRPC_PORT: baseConfigSchema.shape.GRPC_PORT.default(50055),
    ADMIN_PORT: baseConfigSchema.shape.ADMIN_PORT.default(9055),
    /** How long an activation code stays usable. */
    ACTIVATION_CODE_TTL_SECONDS: z.coerce.number().int().positive().max(86_400).default(600),
    /** HMAC key for stored activation codes (base64 of 32 random bytes). */
    ACTIVATION_CODE_SECRET: activationCodeSecret,
    /** Wrong codes one user may enter within the window before further binds are refused. */
    ACTIVATION_MAX_FAILED_BINDS: z.coerce.number().int().positive().default(5),
    /** The sliding window, in seconds, over which a user's wrong codes are counted. */
    ACTIVATION_FAILED_BIND_WINDOW_SECONDS: z.coerce.number().int().positive().max(86_400).default(900),
  })
  .superRefine(checkAuditSpoolConfig);

export type Config = z.infer<typeof configSchema>;
