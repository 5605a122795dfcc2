import { tracingChannel, type TracingChannelSubscribers } from 'node:diagnostics_channel';
import { context, SpanKind, SpanStatusCode, trace, type Span, type Tracer } from '@opentelemetry/api';

/**
 * What ioredis (5.11 and later) publishes for every command on its `ioredis:command` tracing
 * channel. Its `args` are never read here: they hold keys (session ids, tickets…) and values.
 */
interface RedisCommandMessage {
  command: string;
  database?: number;
  serverAddress?: string;
  serverPort?: number;
  error?: unknown;
}

/** The channel ioredis traces each command on, from when it is written until its reply. */
export const redisCommandChannel = 'ioredis:command';

/**
 * Starts a CLIENT span per Redis command of every ioredis client in this process, named after the
 * command only (`GET`, `EVALSHA`…; never keys or values). ioredis announces each command on a
 * diagnostics channel, so nothing is patched and the order modules load in does not matter.
 * Commands sent outside any span (reconnect handshakes, background jobs) are not traced.
 * Returns the function that stops tracing.
 *
 * With auto-pipelining, commands leave in batches a tick later, so a command issued by one
 * request may be parented to the request that opened its batch.
 */
export function traceRedisCommands(tracer: Tracer): () => void {
  const channel = tracingChannel<unknown, RedisCommandMessage>(redisCommandChannel);
  const spans = new WeakMap<RedisCommandMessage, Span>();
  const finish = (message: RedisCommandMessage) => {
    const span = spans.get(message);
    if (!span) return;
    spans.delete(message);
    if (message.error !== undefined) {
      span.setStatus({ code: SpanStatusCode.ERROR });
      span.setAttribute('error.type', message.error instanceof Error ? message.error.name : 'Error');
    }
    span.end();
  };
  const subscribers: TracingChannelSubscribers<RedisCommandMessage> = {
    start(message) {
      const parent = context.active();
      if (!trace.getSpan(parent)) return;
      const operation = message.command.toUpperCase();
      const attributes: Record<string, string | number> = { 'db.system.name': 'redis', 'db.operation.name': operation };
      if (message.database !== undefined) attributes['db.namespace'] = String(message.database);
      if (message.serverAddress !== undefined) attributes['server.address'] = message.serverAddress;
      if (message.serverPort !== undefined) attributes['server.port'] = message.serverPort;
      spans.set(message, tracer.startSpan(operation, { kind: SpanKind.CLIENT, attributes }, parent));
    },
    // A command that throws before it is queued publishes `error` and `end` only; one that was
    // queued publishes `end` at once and `asyncEnd` when its reply (or failure) arrives.
    end(message) {
      if (message.error !== undefined) finish(message);
    },
    asyncStart() {},
    asyncEnd: finish,
    error() {},
  };
  channel.subscribe(subscribers);
  return () => {
    channel.unsubscribe(subscribers);
  };
}
