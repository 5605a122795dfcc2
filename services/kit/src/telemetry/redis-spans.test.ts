import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { tracingChannel } from 'node:diagnostics_channel';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { redisCommandChannel, traceRedisCommands } from './redis-spans.js';

// Publishes on the channel exactly as ioredis does (tracePromise around the command's promise);
// test/tracing.int.test.ts shows a real ioredis client publishing there.
const channel = tracingChannel(redisCommandChannel);
const command = (message: object, reply: Promise<unknown>) => channel.tracePromise(() => reply, message);
const secretKey = 'portcullis:session:7Vf2kq-refresh-token';

describe('traceRedisCommands', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const tracer = provider.getTracer('test');
  let stop: () => void;

  // The provider's context manager keeps the active span across awaits, as in a service.
  beforeAll(() => provider.register());
  afterAll(() => {
    trace.disable();
    context.disable();
  });
  beforeEach(() => {
    stop = traceRedisCommands(tracer);
  });
  afterEach(() => {
    stop();
    exporter.reset();
  });

  const inParent = <T>(fn: () => Promise<T>) =>
    tracer.startActiveSpan('request', async (span) => {
      try {
        return await fn();
      } finally {
        span.end();
      }
    });

  it('makes one CLIENT span per command, named after the command, child of the active span, without keys or values', async () => {
    await inParent(async () => {
      await command(
        { command: 'set', args: [secretKey, 'value-secret'], database: 2, serverAddress: '127.0.0.1', serverPort: 6379 },
        Promise.resolve('OK'),
      );
      await command(
        { command: 'get', args: [secretKey], database: 2, serverAddress: '127.0.0.1', serverPort: 6379 },
        Promise.resolve('value-secret'),
      );
    });
    const spans = exporter.getFinishedSpans();
    const parent = spans.find((s) => s.name === 'request');
    const commands = spans.filter((s) => s !== parent);
    expect(commands.map((s) => s.name)).toEqual(['SET', 'GET']);
    for (const span of commands) {
      expect(span.kind).toBe(SpanKind.CLIENT);
      expect(span.parentSpanContext?.spanId).toBe(parent?.spanContext().spanId);
      expect(span.attributes).toEqual({
        'db.system.name': 'redis',
        'db.operation.name': span.name,
        'db.namespace': '2',
        'server.address': '127.0.0.1',
        'server.port': 6379,
      });
      expect(JSON.stringify(span.attributes)).not.toMatch(/secret/);
    }
  });

  it('marks a failed command as an error and still ends its span', async () => {
    await inParent(() => command({ command: 'evalsha', args: [] }, Promise.reject(new TypeError('NOSCRIPT'))).catch(() => undefined));
    const failed = exporter.getFinishedSpans().find((s) => s.name === 'EVALSHA');
    expect(failed?.status.code).toBe(SpanStatusCode.ERROR);
    expect(failed?.attributes['error.type']).toBe('TypeError');
  });

  it('ends the span of a command that throws before it is sent', async () => {
    await inParent(async () => {
      expect(() =>
        channel.tracePromise(
          () => {
            throw new Error('Connection is closed.');
          },
          { command: 'get', args: [] },
        ),
      ).toThrow('Connection is closed.');
      await Promise.resolve();
    });
    expect(exporter.getFinishedSpans().find((s) => s.name === 'GET')?.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('leaves commands outside any span untraced, and traces nothing once stopped', async () => {
    await command({ command: 'info', args: [] }, Promise.resolve(''));
    stop();
    await inParent(() => command({ command: 'get', args: [] }, Promise.resolve(null)));
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['request']);
    expect(trace.getActiveSpan()).toBeUndefined();
  });
});
