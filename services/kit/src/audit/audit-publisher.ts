import { randomUUID } from 'node:crypto';
import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { AuditEventSchema } from '@portcullis/proto/audit';
import type { NatsConnection } from '@nats-io/nats-core';
import { activeTraceId } from '../telemetry/telemetry.js';
import { ensureStream, namespaced, publishDurable } from '../nats/nats.js';

/** The JetStream stream holding every audit event, `audit.<tenant>.<kind>`. */
export function auditStreamOf(subjectPrefix: string) {
  return {
    name: namespaced(subjectPrefix, 'AUDIT', '_'),
    subjects: [namespaced(subjectPrefix, 'audit.>')],
  };
}

export type AuditEventInit = MessageInitShape<typeof AuditEventSchema> & { tenantId: string; kind: string };

/**
 * Publishes audit events to JetStream and waits for the server's ack, so an event is
 * either stored durably or the caller learns it was not. The event id doubles as the
 * JetStream message id: a retried publish is stored once.
 */
export function createAuditPublisher({ nc, subjectPrefix }: { nc: NatsConnection; subjectPrefix: string }) {
  const js: JetStreamClient = jetstream(nc);
  const stream = auditStreamOf(subjectPrefix);
  return {
    /** Creates the stream if no audit consumer has yet. */
    ensureStream: () => ensureStream(nc, stream),
    async publish(init: AuditEventInit): Promise<string> {
      const event = create(AuditEventSchema, init);
      event.eventId ||= randomUUID();
      event.traceId ||= activeTraceId();
      event.occurredAt ??= timestampNow();
      const subject = namespaced(subjectPrefix, `audit.${event.tenantId}.${event.kind}`);
      await publishDurable(js, subject, toBinary(AuditEventSchema, event), { msgId: event.eventId });
      return event.eventId;
    },
  };
}

export type AuditPublisher = ReturnType<typeof createAuditPublisher>;
