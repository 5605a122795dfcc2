import { afterEach, describe, expect, it } from '@jest/globals';
import { context, ROOT_CONTEXT, trace, TraceFlags } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { baseConfigSchema, loadConfig, otelConfigSchema } from '../config.js';
import {
  spanAttributes,
  sqlOperationOf,
  startTelemetry,
  tagActiveSpan,
  tenantAttributesOf,
  tracingModeOf,
  withTenant,
  type Telemetry,
  type TelemetryOptions,
} from './telemetry.js';

const tenantId = '0b8f3c1e-5d2a-4c7b-9e61-3f2a1d0c9b87';
const assistantId = '7d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6';

describe('otelConfigSchema', () => {
  const parse = (env: Record<string, string>) => loadConfig(otelConfigSchema, env);

  it('leaves everything unset (and the SDK enabled) when no variable is set', () => {
    expect(parse({})).toEqual({ OTEL_SDK_DISABLED: false });
  });

  it('reads the standard variables, an empty value counting as unset', () => {
    expect(
      parse({
        OTEL_SDK_DISABLED: 'false',
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.25',
      }),
    ).toEqual({
      OTEL_SDK_DISABLED: false,
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: 0.25,
    });
  });

  it('disables the SDK only for "true", in any case', () => {
    expect(parse({ OTEL_SDK_DISABLED: 'TRUE' }).OTEL_SDK_DISABLED).toBe(true);
    expect(parse({ OTEL_SDK_DISABLED: ' true ' }).OTEL_SDK_DISABLED).toBe(true);
    for (const value of ['false', '1', 'yes', '']) expect(parse({ OTEL_SDK_DISABLED: value }).OTEL_SDK_DISABLED).toBe(false);
  });

  it.each([
    ['OTEL_EXPORTER_OTLP_ENDPOINT', '127.0.0.1:4318'],
    ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'not a url'],
    ['OTEL_TRACES_SAMPLER', 'ratio'],
    ['OTEL_TRACES_SAMPLER_ARG', '1.5'],
    ['OTEL_TRACES_SAMPLER_ARG', 'half'],
    ['OTEL_TRACES_EXPORTER', 'console'],
    ['OTEL_EXPORTER_OTLP_PROTOCOL', 'grpc'],
    ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'http/protobuf'],
  ])('refuses to start with %s=%s, naming the variable', (name, value) => {
    expect(() => parse({ [name]: value })).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG', message: expect.stringContaining(name) }),
    );
  });

  it('is part of every service’s base configuration', () => {
    expect(Object.keys(baseConfigSchema.shape)).toEqual(expect.arrayContaining(Object.keys(otelConfigSchema.shape)));
  });
});

describe('tracingModeOf', () => {
  it.each([
    [{}, 'local'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, 'export'],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }, 'export'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' as const }, 'local'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: true }, 'disabled'],
    [{ OTEL_SDK_DISABLED: false }, 'local'],
  ])('exports only when an endpoint is configured: %j → %s', (settings, mode) => {
    expect(tracingModeOf(settings)).toBe(mode);
  });
});

describe('startTelemetry', () => {
  const savedEnv = { ...process.env };
  let telemetry: Telemetry | undefined;
  afterEach(async () => {
    await telemetry?.shutdown();
    telemetry = undefined;
    process.env = { ...savedEnv };
  });

  function start(options: Partial<TelemetryOptions> = {}) {
    const exporter = new InMemorySpanExporter();
    telemetry = startTelemetry({ serviceName: 'kit-test', spanProcessors: [new SimpleSpanProcessor(exporter)], ...options });
    return { exporter, tracer: trace.getTracer('test'), telemetry };
  }

  it('records spans without exporting them when no endpoint is set, under the service name given', () => {
    const { exporter, tracer, telemetry } = start();
    expect(telemetry.mode).toBe('local');
    tracer.startSpan('work').end();
    const [span] = exporter.getFinishedSpans();
    expect(span?.name).toBe('work');
    expect(span?.resource.attributes).toMatchObject({ 'service.name': 'kit-test', 'service.version': '0.1.0' });
  });

  it('takes the service name and resource attributes from OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES', () => {
    process.env['OTEL_RESOURCE_ATTRIBUTES'] = 'deployment.environment.name=staging,service.name=ignored';
    process.env['OTEL_SERVICE_NAME'] = 'policy-eu-1';
    const { exporter, tracer } = start();
    tracer.startSpan('work').end();
    expect(exporter.getFinishedSpans()[0]?.resource.attributes).toMatchObject({
      'service.name': 'policy-eu-1',
      'deployment.environment.name': 'staging',
    });
  });

  it('samples parent-based by default: a root is recorded, the child of an unsampled remote parent is not', () => {
    const { exporter, tracer } = start();
    tracer.startSpan('root').end();
    const remote = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      traceFlags: TraceFlags.NONE,
      isRemote: true,
    });
    tracer.startSpan('child of unsampled', {}, remote).end();
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['root']);
  });

  it('follows OTEL_TRACES_SAMPLER', () => {
    process.env['OTEL_TRACES_SAMPLER'] = 'always_off';
    const { exporter, tracer } = start();
    const span = tracer.startSpan('dropped');
    expect(span.isRecording()).toBe(false);
    span.end();
    expect(exporter.getFinishedSpans()).toEqual([]);
  });

  it('installs nothing when OTEL_SDK_DISABLED is true', () => {
    const { exporter, tracer, telemetry } = start({ settings: { OTEL_SDK_DISABLED: true } });
    expect(telemetry.mode).toBe('disabled');
    const span = tracer.startSpan('nothing');
    expect(span.isRecording()).toBe(false);
    span.end();
    expect(exporter.getFinishedSpans()).toEqual([]);
    expect((globalThis as Record<string, unknown>)['V7_PRISMA_INSTRUMENTATION']).toBeUndefined();
  });

  it('installs Prisma’s tracing helper while running and removes it at shutdown', async () => {
    const { telemetry } = start();
    expect((globalThis as Record<string, unknown>)['V7_PRISMA_INSTRUMENTATION']).toBeDefined();
    await telemetry.shutdown();
    expect((globalThis as Record<string, unknown>)['V7_PRISMA_INSTRUMENTATION']).toBeUndefined();
  });

  it('names the tenant on every span started inside a tenant context, and on no other', () => {
    const { exporter, tracer } = start();
    context.with(withTenant(context.active(), tenantId.toUpperCase()), () => {
      tracer.startActiveSpan('scoped', (outer) => {
        tracer.startSpan('nested').end();
        outer.end();
      });
    });
    tracer.startSpan('unscoped').end();
    const byName = new Map(exporter.getFinishedSpans().map((s) => [s.name, s.attributes]));
    expect(byName.get('scoped')?.[spanAttributes.tenantId]).toBe(tenantId);
    expect(byName.get('nested')?.[spanAttributes.tenantId]).toBe(tenantId);
    expect(byName.get('unscoped')?.[spanAttributes.tenantId]).toBeUndefined();
  });

  it('ignores a tenant that is not a UUID', () => {
    const { exporter, tracer } = start();
    context.with(withTenant(context.active(), 'Bearer abc.def'), () => tracer.startSpan('scoped').end());
    expect(exporter.getFinishedSpans()[0]?.attributes[spanAttributes.tenantId]).toBeUndefined();
  });

  it('adds the statement kind to a database span that only has its statement text', () => {
    const { exporter, tracer } = start();
    tracer
      .startSpan('prisma:client:db_query', {
        attributes: { 'db.system.name': 'postgresql', 'db.query.text': ' select "id" FROM t WHERE x = $1' },
      })
      .end();
    expect(exporter.getFinishedSpans()[0]?.attributes).toMatchObject({ 'db.operation.name': 'SELECT' });
  });

  it('tags the active span with the tenant and assistant', () => {
    const { exporter, tracer } = start();
    tracer.startActiveSpan('HTTP POST', (span) => {
      tagActiveSpan({ tenantId, assistantId });
      span.end();
    });
    expect(exporter.getFinishedSpans()[0]?.attributes).toMatchObject({
      [spanAttributes.tenantId]: tenantId,
      [spanAttributes.assistantId]: assistantId,
    });
  });
});

describe('tenantAttributesOf', () => {
  it('reads only tenantId and assistantId, and only when they are UUIDs', () => {
    expect(tenantAttributesOf({ tenantId, assistantId, token: 'secret', apiKey: 'pk_live_x' })).toEqual({
      [spanAttributes.tenantId]: tenantId,
      [spanAttributes.assistantId]: assistantId,
    });
    expect(tenantAttributesOf({ tenantId: 'eyJhbGciOi.secret', assistantId: '' })).toEqual({});
    expect(tenantAttributesOf({ tenantId: tenantId.toUpperCase() })).toEqual({ [spanAttributes.tenantId]: tenantId });
    expect(tenantAttributesOf(undefined)).toEqual({});
    expect(tenantAttributesOf('tenant')).toEqual({});
  });
});

describe('sqlOperationOf', () => {
  it('is the first keyword of the statement, upper-cased, and nothing more', () => {
    expect(sqlOperationOf(`SELECT set_config('app.tenant_id', $1, true)`)).toBe('SELECT');
    expect(sqlOperationOf('\n  insert into "t" ("a") values ($1)')).toBe('INSERT');
    expect(sqlOperationOf('WITH x AS (SELECT 1) DELETE FROM t')).toBe('WITH');
    expect(sqlOperationOf('  ')).toBeUndefined();
  });
});
