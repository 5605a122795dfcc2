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
}

export type AuditConsumer = RunningConsumer;

/**
 * Creates the audit stream if needed and consumes `<prefix>.audit.>` with a durable,
 * explicitly acked consumer. Each message is handled inside the kit's consumer span,
 * which continues the publisher's trace: the ingest is awaited there, never detached.
 */
export async function startAuditConsumer({
  nc,
  subjectPrefix,
  durable,
  ingest,
  logger,
  redeliveryDelayMs,
}: AuditConsumerOptions): Promise<AuditConsumer> {
  const stream = auditStreamOf(subjectPrefix);
  await ensureStream(nc, stream);
  const consumer = await startDurableConsumer(nc, {
    stream: stream.name,
    durable,
    filterSubject: namespaced(subjectPrefix, 'audit.>'),
    logger,
    ...(redeliveryDelayMs === undefined ? {} : { redeliveryDelayMs }),
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
