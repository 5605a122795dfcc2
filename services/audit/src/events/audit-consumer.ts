import {
  auditStreamOf,
  ensureStream,
  namespaced,
  startDurableConsumer,
  type Logger,
  type NatsConnection,
  type RunningConsumer,
} from '@portcullis/kit';
import type { EventIngest } from '../libraries/event-ingest.js';

export interface AuditConsumerOptions {
  nc: NatsConnection;
  subjectPrefix: string;
  /** Durable consumer name; replicas sharing it share the stream's messages. */
  durable: string;
  ingest: Pick<EventIngest, 'ingest'>;
  logger: Logger;
  /** Delay before a message whose storage failed is delivered again (kit default when absent). */
  redeliveryDelayMs?: number;
  /**
   * Messages handled (and held in memory) at once, at most. The ingest keeps each tenant's
   * messages in order and stores the batches that wait together in one transaction, so more in
   * flight means fewer, larger transactions under load. Default 1,000: JetStream's default
   * `max_ack_pending`, which caps the unacknowledged messages of the consumer anyway.
   */
  concurrency?: number;
}

/**
 * Messages in flight by default. With 32 tenants and 4 events a message (test/bench/audit-ingest.bench.ts),
 * 1,000 in flight made transactions of about 180 events, 512 of about 95.
 */
const defaultConcurrency = 1_000;

export type AuditConsumer = RunningConsumer;

/**
 * Creates the audit stream if needed and consumes `<prefix>.audit.>` with a durable,
 * explicitly acked consumer, up to `concurrency` messages at once. Each message is handled
 * inside the kit's consumer span, which continues the publisher's trace: the ingest is awaited
 * there, never detached, and the message is acked only once its events are committed.
 */
export async function startAuditConsumer({
  nc,
  subjectPrefix,
  durable,
  ingest,
  logger,
  redeliveryDelayMs,
  concurrency = defaultConcurrency,
}: AuditConsumerOptions): Promise<AuditConsumer> {
  const stream = auditStreamOf(subjectPrefix);
  await ensureStream(nc, stream);
  const consumer = await startDurableConsumer(nc, {
    stream: stream.name,
    durable,
    filterSubject: namespaced(subjectPrefix, 'audit.>'),
    logger,
    ...(redeliveryDelayMs === undefined ? {} : { redeliveryDelayMs }),
    concurrency,
    maxMessages: concurrency,
    async handle(message) {
      await ingest.ingest({ subject: message.subject, data: message.data, seq: message.seq });
    },
  });
  logger.info({ stream: stream.name, durable }, 'audit consumer started');
  return consumer;
}

/** Tracks whether the NATS connection is up (not closed and not between reconnects). */
export function watchConnection(nc: NatsConnection): { isConnected(): boolean } {
  let connected = true;
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') connected = false;
      else if (status.type === 'reconnect') connected = true;
    }
  })();
  return { isConnected: () => connected && !nc.isClosed() };
}
