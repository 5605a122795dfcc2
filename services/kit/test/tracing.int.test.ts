// Spans of the kit's transports and of Redis, against real Redis, NATS and sockets, and OTLP export
// configured by the standard environment variables.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { SpanKind, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { PolicyService } from '@portcullis/proto/policy';
import { Redis } from 'ioredis';
import { AppError } from '../src/errors.js';
import { createGrpcClient, type GrpcClient } from '../src/grpc/client.js';
import { createGrpcServer, implement, type GrpcServer } from '../src/grpc/server.js';
import { createTrustedIdentities } from '../src/grpc/service-credentials.js';
import { createLogger } from '../src/logger.js';
import { connectNats, ensureStream, publishDurable, startDurableConsumer, type NatsConnection } from '../src/nats/nats.js';
import { spanAttributes, startTelemetry, tracer, type Telemetry } from '../src/telemetry/telemetry.js';

const redisUrl = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const natsUrl = process.env['TEST_NATS_URL'] ?? 'nats://127.0.0.1:4222';
const run = `trc${randomBytes(4).toString('hex')}`;
const logger = createLogger({ name: 'tracing-test', level: 'silent' });

/** Runs `fn` inside a parent span; returns the parent span's id and trace id. */
function inRequest(fn: () => Promise<unknown>): Promise<{ traceId: string; spanId: string }> {
  return tracer.startActiveSpan('request', async (span) => {
    try {
      await fn();
      return span.spanContext();
    } finally {
      span.end();
    }
  });
}

async function until<T>(probe: () => T | undefined, what: string): Promise<T> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const value = probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('spans of Redis commands, NATS messages and gRPC calls', () => {
  const exporter = new InMemorySpanExporter();
  let telemetry: Telemetry;
  const spansOf = (traceId: string): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);

  beforeAll(() => {
    telemetry = startTelemetry({ serviceName: 'kit-test', spanProcessors: [new SimpleSpanProcessor(exporter)] });
  });
  afterAll(() => telemetry.shutdown());

  describe('Redis (ioredis)', () => {
    // As the gateway (auto-pipelining, no offline queue) and auth (defaults) configure theirs.
    const clients = {
      pipelining: new Redis(redisUrl, { enableAutoPipelining: true, enableOfflineQueue: false, lazyConnect: true }),
      plain: new Redis(redisUrl, { lazyConnect: true }),
    };
    beforeAll(() => Promise.all(Object.values(clients).map((client) => client.connect())));
    afterAll(() => Promise.all(Object.values(clients).map((client) => client.quit())));

    it.each(Object.keys(clients) as (keyof typeof clients)[])(
      'gives each command of a %s client a span named after the command only, child of the caller',
      async (name) => {
        const redis = clients[name];
        const key = `${run}:session:${randomBytes(16).toString('base64url')}`;
        const value = `value-${randomBytes(8).toString('hex')}`;
        const parent = await inRequest(async () => {
          await redis.set(key, value, 'PX', 10_000);
          expect(await redis.get(key)).toBe(value);
          await redis.multi().incr(`${key}:n`).pexpire(`${key}:n`, 10_000).exec();
          await redis.del(key, `${key}:n`);
        });
        const commands = spansOf(parent.traceId).filter((s) => s.attributes['db.system.name'] === 'redis');
        expect(commands.map((s) => s.name)).toEqual(expect.arrayContaining(['SET', 'GET', 'MULTI', 'INCR', 'PEXPIRE', 'EXEC', 'DEL']));
        for (const span of commands) {
          expect(span.kind).toBe(SpanKind.CLIENT);
          expect(span.parentSpanContext?.spanId).toBe(parent.spanId);
          expect(span.attributes).toMatchObject({ 'db.operation.name': span.name, 'server.address': '127.0.0.1', 'server.port': 6379 });
          // Neither the key (which may hold a session id or ticket) nor the value is ever recorded.
          expect(JSON.stringify(span.attributes)).not.toContain(run);
          expect(JSON.stringify(span.attributes)).not.toContain(value);
        }
      },
    );
  });

  describe('NATS JetStream', () => {
    let nc: NatsConnection;
    const stream = `${run.toUpperCase()}_AUDIT`;
    beforeAll(async () => {
      nc = await connectNats({ servers: natsUrl, name: 'tracing-test', logger });
      await ensureStream(nc, { name: stream, subjects: [`${run}.audit.>`] });
    });
    afterAll(async () => {
      await (await jetstreamManager(nc)).streams.delete(stream);
      await nc.drain();
    });

    it('names the tenant of a tenant-namespaced subject on the publish and process spans, the consumer continuing the trace', async () => {
      const tenantId = randomUUID();
      const subject = `${run}.audit.${tenantId}.tool.call`;
      const handled: string[] = [];
      const consumer = await startDurableConsumer(nc, {
        stream,
        durable: `${run}_consumer`,
        filterSubject: `${run}.audit.>`,
        logger,
        handle: (message) => {
          handled.push(message.subject);
          return Promise.resolve();
        },
      });
      try {
        const parent = await inRequest(() => publishDurable(jetstream(nc), subject, new Uint8Array([1]), { msgId: randomUUID() }));
        await until(() => (handled.length > 0 ? true : undefined), 'the message to be consumed');
        const spans = await until(() => {
          const found = spansOf(parent.traceId);
          return found.some((s) => s.kind === SpanKind.CONSUMER) ? found : undefined;
        }, 'the process span');
        const producer = spans.find((s) => s.kind === SpanKind.PRODUCER);
        const processed = spans.find((s) => s.kind === SpanKind.CONSUMER);
        expect(producer?.parentSpanContext?.spanId).toBe(parent.spanId);
        expect(processed?.parentSpanContext?.spanId).toBe(producer?.spanContext().spanId);
        for (const span of [producer, processed]) {
          expect(span?.attributes).toMatchObject({
            'messaging.system': 'nats',
            'messaging.destination.name': subject,
            [spanAttributes.tenantId]: tenantId,
          });
        }
      } finally {
        await consumer.stop();
      }
    });
  });

  describe('gRPC server', () => {
    const identities = createTrustedIdentities();
    const notServed = () => Promise.reject(new AppError('FAILED_PRECONDITION', 'not served here'));
    let server: GrpcServer;
    let client: GrpcClient<typeof PolicyService>;
    beforeAll(async () => {
      server = createGrpcServer({
        identity: identities.policy,
        logger,
        services: [
          implement(PolicyService, {
            check: () => Promise.resolve({ allowed: true, reason: 'ok' }),
            batchCheck: notServed,
            explain: notServed,
            listCapabilities: notServed,
            assignRole: notServed,
            revokeRole: notServed,
            grantPermission: notServed,
            revokePermission: notServed,
            setTenantPlan: notServed,
          }),
        ],
      });
      const address = `127.0.0.1:${await server.listen('127.0.0.1', 0)}`;
      server.setServing(true);
      client = createGrpcClient(PolicyService, {
        address,
        deadlineMs: 2_000,
        credential: identities['api-gateway'].credentialFor('policy'),
      });
    });
    afterAll(async () => {
      client.close();
      await server.drain(1_000);
    });

    it('names the tenant and assistant a request names on the server span', async () => {
      const tenantId = randomUUID();
      const assistantId = randomUUID();
      const parent = await inRequest(() => client.check({ tenantId, assistantId, object: 'tools', action: 'invoke' }));
      const served = await until(() => spansOf(parent.traceId).find((s) => s.kind === SpanKind.SERVER), 'the server span');
      expect(served.attributes).toMatchObject({ [spanAttributes.tenantId]: tenantId, [spanAttributes.assistantId]: assistantId });
    });
  });
});

describe('OTLP export configured by the standard variables', () => {
  interface Received {
    path: string;
    headers: IncomingHttpHeaders;
    body: string;
  }
  const received: Received[] = [];
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  let base = '';
  const savedEnv = { ...process.env };
  beforeAll(async () => {
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const address = receiver.address();
    base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  afterEach(() => {
    process.env = { ...savedEnv };
    received.length = 0;
  });
  afterAll(() => new Promise<void>((resolve) => receiver.close(() => resolve())));

  /** Starts telemetry from `env` as a service's config would, ends one span and flushes. */
  async function exportOneSpan(env: Record<string, string>, name: string) {
    Object.assign(process.env, env);
    const telemetry = startTelemetry({ serviceName: 'kit-test', settings: env });
    expect(telemetry.mode).toBe('export');
    trace.getTracer('test').startSpan(name).end();
    await telemetry.shutdown();
  }

  it('sends to OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces', async () => {
    await exportOneSpan({ OTEL_EXPORTER_OTLP_ENDPOINT: base }, 'to-base-endpoint');
    expect(received.map((r) => r.path)).toEqual(['/v1/traces']);
    expect(received[0]?.body).toContain('to-base-endpoint');
  });

  it('sends to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, with OTEL_EXPORTER_OTLP_HEADERS', async () => {
    await exportOneSpan(
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: `${base}/unused`,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${base}/collector/traces`,
        OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-tenant=ops,x-collector-token=abc%20def',
      },
      'to-traces-endpoint',
    );
    expect(received.map((r) => r.path)).toEqual(['/collector/traces']);
    expect(received[0]?.headers).toMatchObject({ 'x-collector-tenant': 'ops', 'x-collector-token': 'abc def' });
    expect(received[0]?.body).toContain('to-traces-endpoint');
  });
});
