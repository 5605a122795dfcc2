import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import { headers as natsHeaders, type MsgHdrs, type NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { context, SpanKind, SpanStatusCode, trace, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { extractContext, injectContext, spanAttributes, tracer } from '../telemetry/telemetry.js';
import { isUuid } from '../validate.js';

export type { JetStreamClient, MsgHdrs, NatsConnection };

const headerSetter: TextMapSetter<MsgHdrs> = {
  set(carrier, key, value) {
    carrier.set(key, value);
  },
};

const headerGetter: TextMapGetter<MsgHdrs> = {
  keys(carrier) {
    return carrier.keys();
  },
  get(carrier, key) {
    return carrier.has(key) ? carrier.get(key) : undefined;
  },
};

export interface NatsOptions {
  servers: string;
  name: string;
  logger: Logger;
}

/** Connects with unlimited reconnects; status changes are logged. */
export async function connectNats({ servers, name, logger }: NatsOptions): Promise<NatsConnection> {
  const nc = await connect({ servers: servers.split(','), name, maxReconnectAttempts: -1, reconnectTimeWait: 500 });
  void (async () => {
    for await (const status of nc.status()) {
      logger.info({ nats: status.type }, 'nats connection status');
    }
  })();
  return nc;
}

/** NATS headers carrying the active trace context (W3C traceparent), plus any extra headers. */
export function tracedHeaders(extra: Record<string, string> = {}): MsgHdrs {
  const h = natsHeaders();
  injectContext(h, headerSetter);
  for (const [key, value] of Object.entries(extra)) h.set(key, value);
  return h;
}

export interface StreamSpec {
  name: string;
  subjects: string[];
  /** Window in which a repeated message id is dropped by the server. */
  duplicateWindowMs?: number;
}

/** Creates the stream if missing, or updates its subjects; idempotent across replicas. */
export async function ensureStream(nc: NatsConnection, spec: StreamSpec): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const config = {
    name: spec.name,
    subjects: spec.subjects,
    duplicate_window: (spec.duplicateWindowMs ?? 120_000) * 1_000_000,
  };
  try {
    await jsm.streams.info(spec.name);
    await jsm.streams.update(spec.name, config);
  } catch (error) {
    if (!(error instanceof Error) || !/stream not found/i.test(error.message)) throw error;
    await jsm.streams.add(config);
  }
}

/** First subject tokens of the tenant-namespaced subjects: `audit.<tenant>.…`, `robots.<tenant>.…`, `devices.<tenant>.…`. */
const tenantNamespaces = new Set(['audit', 'robots', 'devices']);

/**
 * The tenant a subject is namespaced by (`[prefix.]audit.<tenant>.<kind>`,
 * `[prefix.]robots.<tenant>.<robot>.events`, `[prefix.]devices.<tenant>.<device>.<kind>`), if any.
 */
export function tenantOfSubject(subject: string): string | undefined {
  const tokens = subject.split('.');
  // The namespace is the first token, or the second after a run's prefix (which has no dots).
  for (const at of [0, 1]) {
    const namespace = tokens[at];
    const tenant = tokens[at + 1];
    if (namespace !== undefined && tenantNamespaces.has(namespace) && tenant !== undefined && isUuid(tenant)) return tenant.toLowerCase();
  }
  return undefined;
}

/** Attributes of a publish or process span: the subject, and the tenant it is namespaced by. */
function messagingAttributesOf(subject: string): Record<string, string> {
  const tenantId = tenantOfSubject(subject);
  return {
    'messaging.system': 'nats',
    'messaging.destination.name': subject,
    ...(tenantId === undefined ? {} : { [spanAttributes.tenantId]: tenantId }),
  };
}

export interface PublishOptions {
  /** Deduplication id: JetStream stores one message per id within the duplicate window. */
  msgId: string;
  headers?: Record<string, string>;
}

/** Publishes to JetStream inside a PRODUCER span and waits for the server's ack. */
export async function publishDurable(js: JetStreamClient, subject: string, data: Uint8Array, options: PublishOptions): Promise<void> {
  await tracer.startActiveSpan(
    `publish ${subject}`,
    { kind: SpanKind.PRODUCER, attributes: messagingAttributesOf(subject) },
    async (span) => {
      try {
        const h = natsHeaders();
        injectContext(h, headerSetter, trace.setSpan(context.active(), span));
        for (const [key, value] of Object.entries(options.headers ?? {})) h.set(key, value);
        await js.publish(subject, data, { msgID: options.msgId, headers: h });
      } catch (error) {
        span.setStatus({ code: SpanStatusCode.ERROR });
        throw new AppError('DEPENDENCY_UNAVAILABLE', 'event bus did not accept the event', { cause: error });
      } finally {
        span.end();
      }
    },
  );
}

export interface DurableConsumerOptions {
  stream: string;
  durable: string;
  filterSubject: string;
  logger: Logger;
  /** Called per message inside a CONSUMER span continuing the publisher's trace. Throw to redeliver. */
  handle(message: JsMsg): Promise<void>;
  redeliveryDelayMs?: number;
  /**
   * Messages handled at once, at most (default 1: one after the other). Each is acked once its
   * own handler resolved, nak'ed if it threw; a handler that needs an order among messages (e.g.
   * per tenant) keeps it itself — handlers start in delivery order.
   */
  concurrency?: number;
  /** Messages the client pulls ahead of handling (JetStream `max_messages`, default 256). */
  maxMessages?: number;
}

export interface RunningConsumer {
  /** False once the consume loop has ended, whether stopped or failed (readiness uses this). */
  isRunning(): boolean;
  stop(): Promise<void>;
}

/** Runs a durable, explicitly acked JetStream consumer until stopped. */
export async function startDurableConsumer(nc: NatsConnection, options: DurableConsumerOptions): Promise<RunningConsumer> {
  const jsm = await jetstreamManager(nc);
  await jsm.consumers.add(options.stream, {
    durable_name: options.durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: options.filterSubject,
    ack_wait: 30_000_000_000,
  });
  const consumer = await jetstream(nc).consumers.get(options.stream, options.durable);
  const messages = await consumer.consume({ max_messages: options.maxMessages ?? 256 });
  const concurrency = Math.max(1, options.concurrency ?? 1);
  const inFlight = new Set<Promise<void>>();
  let running = true;
  const done = (async () => {
    for await (const message of messages) {
      const parent = message.headers ? extractContext(message.headers, headerGetter) : context.active();
      const handled = tracer.startActiveSpan(
        `process ${message.subject}`,
        { kind: SpanKind.CONSUMER, attributes: messagingAttributesOf(message.subject) },
        parent,
        async (span) => {
          try {
            await options.handle(message);
            message.ack();
          } catch (error) {
            span.setStatus({ code: SpanStatusCode.ERROR });
            options.logger.error({ err: error, subject: message.subject, seq: message.seq }, 'event handling failed; will be redelivered');
            message.nak(options.redeliveryDelayMs ?? 1000);
          } finally {
            span.end();
          }
        },
      );
      inFlight.add(handled);
      const settled = () => inFlight.delete(handled);
      void handled.then(settled, settled);
      if (inFlight.size >= concurrency) await Promise.race(inFlight);
    }
  })()
    // Stopped or failed: the messages being handled still end with their ack or nak.
    .finally(() => Promise.all(inFlight))
    .catch((error: unknown) => {
      // The consume loop ended on its own (e.g. the consumer was deleted); readiness reports it.
      options.logger.error({ err: error, stream: options.stream, durable: options.durable }, 'durable consumer stopped unexpectedly');
    })
    .finally(() => {
      running = false;
    });
  return {
    isRunning: () => running,
    async stop() {
      await messages.close();
      await done;
    },
  };
}

/** Prefixes a subject or stream name so separate deployments/test runs never collide. */
export function namespaced(prefix: string, name: string, separator = '.'): string {
  return prefix ? `${prefix}${separator}${name}` : name;
}
