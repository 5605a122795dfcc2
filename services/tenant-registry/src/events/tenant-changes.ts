import { tenantChangeHeader, tenantChangedSubject, tracedHeaders, type Logger, type NatsConnection } from '@portcullis/kit';
import type { TenantChange } from '../libraries/records.js';

/** Header naming what changed; the payload is the tenant id alone. Subject and header live in the kit, shared with subscribers. */
export const changeHeader = tenantChangeHeader;
export { tenantChangedSubject };

/**
 * Invalidation notices on core NATS: after every committed change the tenant's id is
 * published on `tenant.changed`, so caches of tenant context elsewhere drop stale entries.
 * A notice that cannot be sent is logged; the change itself has already been stored.
 */
export function createTenantChangePublisher({ nc, subjectPrefix, logger }: { nc: NatsConnection; subjectPrefix: string; logger: Logger }) {
  const subject = tenantChangedSubject(subjectPrefix);
  return {
    publish(tenantId: string, change: TenantChange): void {
      try {
        nc.publish(subject, tenantId, { headers: tracedHeaders({ [changeHeader]: change }) });
      } catch (error) {
        logger.warn({ err: error, tenantId, change }, 'could not publish tenant change');
      }
    },
  };
}

export type TenantChangePublisher = ReturnType<typeof createTenantChangePublisher>;
