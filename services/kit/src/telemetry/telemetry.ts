import {
  context,
  createContextKey,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, type Span as SdkSpan, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { PrismaInstrumentation } from '@prisma/instrumentation';
import { isUuid } from '../validate.js';
import { traceRedisCommands } from './redis-spans.js';

/** Span attributes Portcullis sets. Only identifiers: never tokens, keys, secrets or payloads. */
export const spanAttributes = {
  tenantId: 'portcullis.tenant_id',
  assistantId: 'portcullis.assistant_id',
} as const;

/**
 * The standard OpenTelemetry settings the kit decides on (parsed and checked by the service's
 * config, see `otelConfigSchema`). Everything else standard (OTEL_SERVICE_NAME,
 * OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER/ARG, OTEL_EXPORTER_OTLP_HEADERS, timeouts,
 * certificates, OTEL_BSP_*) is read by the SDK itself, as the specification says.
 */
export interface TracingSettings {
  OTEL_SDK_DISABLED?: boolean | undefined;
  OTEL_TRACES_EXPORTER?: 'otlp' | 'none' | undefined;
  OTEL_EXPORTER_OTLP_ENDPOINT?: string | undefined;
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string | undefined;
}

/**
 * `disabled`: no SDK at all (OTEL_SDK_DISABLED=true): spans are no-ops, trace ids empty.
 * `local`: spans are recorded (logs and audit events carry real trace ids) but not exported.
 * `export`: spans are also sent over OTLP/HTTP — only when an endpoint is configured.
 */
export type TracingMode = 'disabled' | 'local' | 'export';

export function tracingModeOf(settings: TracingSettings): TracingMode {
  if (settings.OTEL_SDK_DISABLED === true) return 'disabled';
  if (settings.OTEL_TRACES_EXPORTER === 'none') return 'local';
  return settings.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || settings.OTEL_EXPORTER_OTLP_ENDPOINT ? 'export' : 'local';
}

export interface TelemetryOptions {
  /** service.name unless OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) says otherwise. */
  serviceName: string;
  serviceVersion?: string;
  /** The OTEL_* part of the service's config; without it spans are recorded but not exported. */
  settings?: TracingSettings;
  /** Processors beside the OTLP exporter (tests pass an in-memory exporter's). */
  spanProcessors?: readonly SpanProcessor[];
}

export interface Telemetry {
  mode: TracingMode;
  shutdown(): Promise<void>;
}

/**
 * Installs the global tracer provider with W3C trace-context propagation, and the spans of the
 * libraries the services use that announce their work themselves: Prisma (a span per query,
 * `@prisma/instrumentation`) and ioredis (a span per command, its diagnostics channel). Neither
 * needs patching, so this may run after those modules were imported. Sampling follows
 * OTEL_TRACES_SAMPLER (parent-based always-on by default), batching the OTEL_BSP_* variables.
 */
export function startTelemetry({ serviceName, serviceVersion = '0.1.0', settings = {}, spanProcessors = [] }: TelemetryOptions): Telemetry {
  const mode = tracingModeOf(settings);
  if (mode === 'disabled') return { mode, shutdown: () => Promise.resolve() };
  // With no URL given, the exporter takes its endpoint (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is,
  // or OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces), headers and TLS files from the environment.
  const exporters = mode === 'export' ? [new BatchSpanProcessor(new OTLPTraceExporter())] : [];
  const provider = new NodeTracerProvider({
    resource: defaultResource()
      .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName, [ATTR_SERVICE_VERSION]: serviceVersion }))
      .merge(detectResources({ detectors: [envDetector] })),
    spanProcessors: [createAttributeProcessor(), ...spanProcessors, ...exporters],
  });
  provider.register();
  const prisma = new PrismaInstrumentation({ enabled: false });
  prisma.setTracerProvider(provider);
  prisma.enable();
  const stopRedis = traceRedisCommands(provider.getTracer('portcullis.redis'));
  return {
    mode,
    async shutdown() {
      stopRedis();
      prisma.disable();
      await provider.forceFlush();
      await provider.shutdown();
      // Unregistered, so a later start in the same process (tests) installs its own.
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}

export const tracer = trace.getTracer('portcullis');

const tenantKey = createContextKey('portcullis.tenant_id');

/**
 * `from` with the tenant whose row-level-security scope the code runs in: every span started
 * under the returned context carries `portcullis.tenant_id` (the tenant scope sets it, so each
 * database span names its tenant). Not propagated to other processes.
 */
export function withTenant(from: Context, tenantId: string): Context {
  return isUuid(tenantId) ? from.setValue(tenantKey, tenantId.toLowerCase()) : from;
}

/** The tenant `withTenant` put in a context, if any. */
export function tenantOf(from: Context): string | undefined {
  const value = from.getValue(tenantKey);
  return typeof value === 'string' ? value : undefined;
}

/**
 * `portcullis.tenant_id` / `portcullis.assistant_id` for the `tenantId` / `assistantId` of a
 * message (a gRPC request, a resolved context) when they are UUIDs; nothing else is ever read.
 */
export function tenantAttributesOf(message: unknown): Attributes {
  const attributes: Attributes = {};
  if (typeof message !== 'object' || message === null) return attributes;
  const { tenantId, assistantId } = message as { tenantId?: unknown; assistantId?: unknown };
  if (typeof tenantId === 'string' && isUuid(tenantId)) attributes[spanAttributes.tenantId] = tenantId.toLowerCase();
  if (typeof assistantId === 'string' && isUuid(assistantId)) attributes[spanAttributes.assistantId] = assistantId.toLowerCase();
  return attributes;
}

/** Names the tenant (and assistant) of the work on the active span, e.g. the gateway's request span. */
export function tagActiveSpan(ids: { tenantId?: string; assistantId?: string }): void {
  trace.getActiveSpan()?.setAttributes(tenantAttributesOf(ids));
}

/** The statement kind of a SQL text: its first keyword (`SELECT`, `INSERT`, `BEGIN`…), never more. */
export function sqlOperationOf(sql: string): string | undefined {
  return /^\s*([A-Za-z]+)/.exec(sql)?.[1]?.toUpperCase();
}

/**
 * Adds what the kit knows when a span starts: the tenant of a tenant scope, and for a database
 * span that has only its statement text (Prisma's `db_query`), the statement kind.
 */
function createAttributeProcessor(): SpanProcessor {
  return {
    onStart(span: SdkSpan, parentContext: Context) {
      const tenantId = tenantOf(parentContext);
      if (tenantId !== undefined) span.setAttribute(spanAttributes.tenantId, tenantId);
      const text = span.attributes['db.query.text'];
      if (typeof text === 'string' && span.attributes['db.operation.name'] === undefined) {
        const operation = sqlOperationOf(text);
        if (operation !== undefined) span.setAttribute('db.operation.name', operation);
      }
    },
    onEnd() {},
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  };
}

/** Writes the current trace context into any header-like carrier (gRPC metadata, NATS headers). */
export function injectContext<C>(carrier: C, setter: TextMapSetter<C>, from: Context = context.active()): void {
  propagation.inject(from, carrier, setter);
}

/** Reads a trace context out of a carrier, falling back to the active context. */
export function extractContext<C>(carrier: C, getter: TextMapGetter<C>): Context {
  return propagation.extract(context.active(), carrier, getter);
}

/** Trace id of the active span, or '' outside any span. */
export function activeTraceId(): string {
  return trace.getActiveSpan()?.spanContext().traceId ?? '';
}

/**
 * Runs an outgoing call (HTTP to an upstream, a database round trip…) inside a CLIENT span,
 * so context injected inside `fn` names this span as the callee's parent. A throw marks the
 * span as failed and is rethrown unchanged.
 */
export function traceClientCall<T>(name: string, attributes: Record<string, string | number>, fn: () => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, { kind: SpanKind.CLIENT, attributes }, async (span) => {
    try {
      return await fn();
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw error;
    } finally {
      span.end();
    }
  });
}
