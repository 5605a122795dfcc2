import { fromBinary } from '@bufbuild/protobuf';
import { jetstreamManager } from '@nats-io/jetstream';
import { auditStreamOf, createLogger, ensureStream, startDurableConsumer, type NatsConnection } from '@portcullis/kit';
import { AuditEventSchema, type AuditEvent } from '@portcullis/proto/audit';

/**
 * Records every audit event published under a subject prefix, as the audit service would
 * receive them: a durable consumer on the prefix's audit stream. `stop()` also deletes the
 * stream, so a test run leaves nothing behind on the server.
 */
export async function startAuditRecorder({ nc, subjectPrefix, name }: { nc: NatsConnection; subjectPrefix: string; name: string }) {
  const stream = auditStreamOf(subjectPrefix);
  await ensureStream(nc, stream);
  const events: AuditEvent[] = [];
  const consumer = await startDurableConsumer(nc, {
    stream: stream.name,
    durable: name,
    filterSubject: `${subjectPrefix}.audit.>`,
    logger: createLogger({ name: 'audit-recorder', level: 'silent' }),
    async handle(message) {
      events.push(fromBinary(AuditEventSchema, message.data));
    },
  });
  return {
    events,
    async stop() {
      await consumer.stop();
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(stream.name).catch(() => false);
    },
  };
}

export type AuditRecorder = Awaited<ReturnType<typeof startAuditRecorder>>;
