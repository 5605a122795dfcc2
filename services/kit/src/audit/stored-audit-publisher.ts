import type { Lifecycle } from '../lifecycle.js';
import type { Logger } from '../logger.js';
import type { NatsConnection } from '../nats/nats.js';
import { createAuditPublisher } from './audit-publisher.js';
import { createBackgroundAuditPublisher } from './background-publisher.js';
import { auditSpoolDirOf, openAuditSpool } from './spool.js';

export interface StoredAuditPublisherConfig {
  NATS_SUBJECT_PREFIX: string;
  GRPC_DEADLINE_MS: number;
  SHUTDOWN_BUDGET_MS: number;
  AUDIT_SPOOL_DIR?: string | undefined;
  AUDIT_SPOOL_MAX_BYTES: number;
  AUDIT_SPOOL_MAX_EVENTS: number;
}

export interface StoredAuditPublisherOptions {
  nc: NatsConnection;
  config: StoredAuditPublisherConfig;
  /** The publishing service: names its spool directory when AUDIT_SPOOL_DIR is not set. */
  service: string;
  logger: Logger;
  lifecycle: Lifecycle;
  /** Events in memory, at most, while neither JetStream nor the spool takes them. */
  maxPending?: number;
}

/**
 * The audit publisher of a service whose answers wait for their record: `publish` resolves once
 * JetStream acknowledged the event or the local spool fsynced it (replayed in order when JetStream
 * is back, also by the next process), and rejects (DEPENDENCY_UNAVAILABLE) when neither happens
 * within the service's gRPC deadline. Drained at shutdown; call it after NATS's shutdown step is
 * registered, so the drain runs before NATS is drained.
 */
export async function startStoredAuditPublisher({
  nc,
  config,
  service,
  logger,
  lifecycle,
  maxPending = 1_000,
}: StoredAuditPublisherOptions) {
  const durable = createAuditPublisher({ nc, subjectPrefix: config.NATS_SUBJECT_PREFIX });
  await durable.ensureStream();
  const audit = createBackgroundAuditPublisher({
    publisher: durable,
    confirm: 'stored',
    confirmTimeoutMs: config.GRPC_DEADLINE_MS,
    maxPending,
    logger,
    spool: await openAuditSpool({
      dir: auditSpoolDirOf(config, service),
      maxBytes: config.AUDIT_SPOOL_MAX_BYTES,
      maxEvents: config.AUDIT_SPOOL_MAX_EVENTS,
      logger,
    }),
  });
  lifecycle.onShutdown('audit events', async () => {
    await audit.drain(config.SHUTDOWN_BUDGET_MS / 2);
  });
  return audit;
}
