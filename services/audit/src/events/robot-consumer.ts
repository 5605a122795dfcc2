import {
  activeTraceId,
  ensureStream,
  robotEventStreamOf,
  robotTokensOf,
  startDurableConsumer,
  type Logger,
  type NatsConnection,
  type RunningConsumer,
} from '@portcullis/kit';
import type { RobotEvents } from '../libraries/robot-events.js';

export interface RobotEventConsumerOptions {
  nc: NatsConnection;
  subjectPrefix: string;
  /** Durable consumer name; replicas sharing it share the stream's messages. */
  durable: string;
  events: Pick<RobotEvents, 'ingest'>;
  logger: Logger;
  /** Delay before a message that could not be judged or stored is delivered again (kit default when absent). */
  redeliveryDelayMs?: number;
}

/**
 * Creates the robot event stream if needed and consumes `<prefix>.robots.*.*.events` with a
 * durable, explicitly acked consumer. Each message is judged and stored inside the kit's
 * consumer span (continuing the robot's trace when it sent one), whose trace id is stored with
 * the event. A throw (auth or the database unavailable) naks the message for redelivery.
 */
export async function startRobotEventConsumer({
  nc,
  subjectPrefix,
  durable,
  events,
  logger,
  redeliveryDelayMs,
}: RobotEventConsumerOptions): Promise<RunningConsumer> {
  const stream = robotEventStreamOf(subjectPrefix);
  await ensureStream(nc, stream);
  const consumer = await startDurableConsumer(nc, {
    stream: stream.name,
    durable,
    filterSubject: stream.filterSubject,
    logger,
    ...(redeliveryDelayMs === undefined ? {} : { redeliveryDelayMs }),
    async handle(message) {
      await events.ingest({
        subject: message.subject,
        data: message.data,
        tokens: robotTokensOf(message.headers),
        traceId: activeTraceId(),
        seq: message.seq,
      });
    },
  });
  logger.info({ stream: stream.name, durable }, 'robot event consumer started');
  return consumer;
}
