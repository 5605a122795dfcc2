import {
  auditSpoolConfigSchema,
  baseConfigSchema,
  checkAuditSpoolConfig,
  commaListSchema,
  databaseConfigSchema,
  natsConfigSchema,
  z,
} from '@portcullis/kit';

export const configSchema = baseConfigSchema
  .extend(databaseConfigSchema.shape)
  .extend(natsConfigSchema.shape)
  /** AUDIT_SPOOL_DIR, AUDIT_SPOOL_MAX_BYTES, AUDIT_SPOOL_MAX_EVENTS: membership events JetStream has not acknowledged (kit README). */
  .extend(auditSpoolConfigSchema.shape)
  .extend({
    GRPC_PORT: baseConfigSchema.shape.GRPC_PORT.default(50052),
    ADMIN_PORT: baseConfigSchema.shape.ADMIN_PORT.default(9052),
    /** The policy service, where a member's role is assigned before the membership is stored. */
    POLICY_ADDRESS: z.string().min(1).default('127.0.0.1:50053'),
    /**
     * DNS servers (`ip` or `ip:port`, comma-separated) asked for domain ownership TXT records;
     * empty: the system's resolvers.
     */
    DOMAIN_VERIFICATION_DNS_SERVERS: commaListSchema(),
    /** Host suffixes verified without DNS (comma-separated, e.g. `.localhost` for development); empty in production. */
    DOMAIN_VERIFICATION_EXEMPT_SUFFIXES: commaListSchema(),
    /** How long one DNS query for a domain's TXT record may take. */
    DOMAIN_VERIFICATION_DNS_TIMEOUT_MS: z.coerce.number().int().min(100).max(30_000).default(3_000),
  })
  .superRefine(checkAuditSpoolConfig);

export type Config = z.infer<typeof configSchema>;
