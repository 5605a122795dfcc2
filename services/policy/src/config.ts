import {
  auditSpoolConfigSchema,
  baseConfigSchema,
  checkAuditSpoolConfig,
  databaseConfigSchema,
  natsConfigSchema,
  z,
} from '@portcullis/kit';

export const configSchema = baseConfigSchema
  .extend(databaseConfigSchema.shape)
  .extend(natsConfigSchema.shape)
  /** AUDIT_SPOOL_DIR, AUDIT_SPOOL_MAX_BYTES, AUDIT_SPOOL_MAX_EVENTS: grant events JetStream has not acknowledged (kit README). */
  .extend(auditSpoolConfigSchema.shape)
  .extend({
    GRPC_PORT: baseConfigSchema.shape.GRPC_PORT.default(50053),
    ADMIN_PORT: baseConfigSchema.shape.ADMIN_PORT.default(9053),
    /** Folder with model.conf, roles.csv, plans.csv and scopes.csv. */
    POLICY_DIR: z.string().default(new URL('../../../../policies/', import.meta.url).pathname),
    /** Plan of a tenant without a stored one; must be a plan of plans.csv (checked on start). */
    POLICY_DEFAULT_PLAN: z
      .string()
      .regex(/^[a-z][a-z0-9_-]{0,31}$/)
      .default('free'),
    POLICY_MAX_CACHED_TENANTS: z.coerce.number().int().positive().default(10_000),
    /** Rules are reloaded at least this often, bounding staleness if a change notice is missed. */
    POLICY_CACHE_MAX_AGE_MS: z.coerce.number().int().positive().default(30_000),
  })
  .superRefine(checkAuditSpoolConfig);

export type Config = z.infer<typeof configSchema>;
