import { randomUUID } from 'node:crypto';
import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { AuditEventBatchSchema, AuditEventSchema, type AuditEvent } from '@portcullis/proto/audit';
import type { NatsConnection } from '@nats-io/nats-core';
import { AppError } from '../errors.js';
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

/** The subject token of a batch (`audit.<tenant>._batch`); no event kind may start with `_`. */
export const auditBatchKind = '_batch';

/** An event with its id, trace id and time filled in, as it will be stored. */
export function completeAuditEvent(init: AuditEventInit): AuditEvent & { eventId: string } {
  if (init.kind.startsWith('_')) throw new AppError('INVALID_ARGUMENT', 'audit event kinds may not start with "_"');
  const event = create(AuditEventSchema, init);
  event.eventId ||= randomUUID();
  event.traceId ||= activeTraceId();
  event.occurredAt ??= timestampNow();
  return event;
}

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
      const event = completeAuditEvent(init);
      const subject = namespaced(subjectPrefix, `audit.${event.tenantId}.${event.kind}`);
      await publishDurable(js, subject, toBinary(AuditEventSchema, event), { msgId: event.eventId });
      return event.eventId;
    },

    /**
     * Publishes events of ONE tenant as one message and waits for the ack. `batchId` is the
     * JetStream message id: a retried batch (same id) is stored once by the stream, and each
     * event once by the consumer.
     */
    async publishBatch(tenantId: string, events: readonly AuditEvent[], batchId: string): Promise<void> {
      if (events.some((event) => event.tenantId !== tenantId)) throw new AppError('INVALID_ARGUMENT', "a batch holds one tenant's events");
      const subject = namespaced(subjectPrefix, `audit.${tenantId}.${auditBatchKind}`);
      await publishDurable(js, subject, toBinary(AuditEventBatchSchema, create(AuditEventBatchSchema, { events: [...events] })), {
        msgId: batchId,
      });
    },
  };
}

export type AuditPublisher = ReturnType<typeof createAuditPublisher>;
