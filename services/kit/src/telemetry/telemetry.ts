import {
  context,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';

export interface TelemetryOptions {
  serviceName: string;
  serviceVersion?: string;
  /** OTLP/HTTP base endpoint (e.g. http://127.0.0.1:4318); spans are not exported when absent. */
  otlpEndpoint?: string | undefined;
}

export interface Telemetry {
  shutdown(): Promise<void>;
}

/**
 * Installs the global tracer provider with W3C trace-context propagation. Spans always get
 * real trace ids (logs and audit events carry them); they are exported only when an OTLP
 * endpoint is configured. Batch timing follows the standard OTEL_BSP_* variables.
 */
export function startTelemetry({ serviceName, serviceVersion = '0.1.0', otlpEndpoint }: TelemetryOptions): Telemetry {
  const spanProcessors: SpanProcessor[] = [];
  if (otlpEndpoint) {
    const url = `${otlpEndpoint.replace(/\/+$/, '')}/v1/traces`;
    spanProcessors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url })));
  }
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName, [ATTR_SERVICE_VERSION]: serviceVersion }),
    spanProcessors,
  });
  provider.register();
  return {
    async shutdown() {
      await provider.forceFlush();
      await provider.shutdown();
    },
  };
}

export const tracer = trace.getTracer('portcullis');

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
