import type { MsgHdrs, NatsConnection } from '@nats-io/nats-core';
import type { Logger } from '../logger.js';
import { isUuid } from '../validate.js';
import { namespaced } from './nats.js';

/**
 * The core NATS subject tenant-registry publishes a tenant's id on after every committed change
 * of that tenant (its status, plan, assistants, domains, teams, members), so that every copy of
 * tenant data cached elsewhere can be dropped. Namespaced by `NATS_SUBJECT_PREFIX`.
 */
export function tenantChangedSubject(subjectPrefix: string): string {
  return namespaced(subjectPrefix, 'tenant.changed');
}

/**
 * The core NATS subject the policy service publishes a tenant's id on after every change of that
 * tenant's rules (roles, permissions, plan), so cached decisions can be dropped.
 */
export function policyChangedSubject(subjectPrefix: string): string {
  return namespaced(subjectPrefix, 'policy.changed');
}

/** Header naming what changed (e.g. `tenant.status.changed`); the payload is the tenant id alone. */
export const tenantChangeHeader = 'portcullis-change';

export interface TenantChangeNotice {
  tenantId: string;
  /** The `portcullis-change` header; empty when absent. Informational only: any notice invalidates. */
  change: string;
}

export interface TenantChangeSubscriptionOptions {
  nc: NatsConnection;
  subjectPrefix: string;
  logger: Logger;
  onChange(notice: TenantChangeNotice): void;
  /** The notices to hear: tenant-registry's (the default) or the policy service's (`policyChangedSubject`). */
  subject?: string;
  /**
   * Called when the connection to NATS came back after being lost: notices published meanwhile
   * were missed (core NATS does not replay them), so whatever they would have invalidated may
   * be stale now.
   */
  onReconnect?(): void;
}

/**
 * Hears every tenant change notice. There is deliberately no queue group: every replica of
 * every consumer must hear every notice to drop its own cached copies. A payload that is not a
 * tenant id is logged and ignored. Returns a function that ends the subscription.
 */
export function subscribeTenantChanges({
  nc,
  subjectPrefix,
  logger,
  onChange,
  onReconnect,
  subject = tenantChangedSubject(subjectPrefix),
}: TenantChangeSubscriptionOptions): () => void {
  const state = { active: true };
  if (onReconnect) {
    void (async () => {
      for await (const status of nc.status()) {
        if (!state.active) break;
        if (status.type === 'reconnect') {
          logger.warn({ subject }, 'reconnected to NATS: tenant change notices may have been missed');
          onReconnect();
        }
      }
    })().catch((error: unknown) => logger.warn({ err: error }, 'NATS status stream ended'));
  }
  const subscription = nc.subscribe(subject, {
    callback(error, message) {
      if (error) {
        logger.warn({ err: error, subject }, 'tenant change subscription error');
        return;
      }
      const tenantId = message.string();
      if (!isUuid(tenantId)) {
        logger.warn({ subject }, 'ignored a tenant change notice without a tenant id');
        return;
      }
      const headers: MsgHdrs | undefined = message.headers;
      const change = headers?.has(tenantChangeHeader) ? headers.get(tenantChangeHeader) : '';
      try {
        onChange({ tenantId: tenantId.toLowerCase(), change });
      } catch (thrown) {
        logger.error({ err: thrown, tenantId }, 'tenant change handler failed');
      }
    },
  });
  return () => {
    state.active = false;
    subscription.unsubscribe();
  };
}
