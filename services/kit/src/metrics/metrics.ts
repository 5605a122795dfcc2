import { collectDefaultMetrics, Counter, Histogram, Registry, type CounterConfiguration, type HistogramConfiguration } from 'prom-client';

// Services build their own instruments from these, registered on the runtime's registry
// (`new Counter({ name, help, labelNames, registers: [metrics] })`), so none imports prom-client.
export { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Every Portcullis metric name, in one place: the code that registers a metric takes its name
 * from here, and the Grafana dashboard's test checks each name it queries against this list
 * (docs/observability.md describes each one).
 */
export const metricNames = {
  grpcServerRequests: 'portcullis_grpc_server_requests_total',
  grpcServerDuration: 'portcullis_grpc_server_duration_seconds',
  grpcClientRequests: 'portcullis_grpc_client_requests_total',
  httpRequests: 'portcullis_http_requests_total',
  httpRequestDuration: 'portcullis_http_request_duration_seconds',
  rateLimitHits: 'portcullis_rate_limit_hits_total',
  authzDecisions: 'portcullis_authz_decisions_total',
  policyDecisions: 'portcullis_policy_decisions_total',
  auditEventsStored: 'portcullis_audit_events_stored_total',
  auditEventsRejected: 'portcullis_audit_events_rejected_total',
  auditIngestLag: 'portcullis_audit_ingest_lag_seconds',
  robotEventsStored: 'portcullis_robot_events_stored_total',
  robotEventsRejected: 'portcullis_robot_events_rejected_total',
} as const;

/** Latency buckets (seconds) for requests and RPCs: 1 ms to 10 s. */
export const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface MetricsOptions {
  /** Added as the `service` label on every series this registry exposes. */
  service: string;
}

/**
 * One registry per process: default Node/process metrics (CPU, memory, event loop lag, GC)
 * plus whatever the service registers. The admin server exposes it on `GET /metrics`.
 */
export function createMetrics({ service }: MetricsOptions): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * The counter of this name on the registry, created on first use: for kit code that may be set
 * up more than once per process against the same registry (several gRPC clients of one service).
 */
export function counterOn<T extends string>(registry: Registry, config: Omit<CounterConfiguration<T>, 'registers'>): Counter<T> {
  const existing = registry.getSingleMetric(config.name);
  if (existing instanceof Counter) return existing;
  return new Counter({ ...config, registers: [registry] });
}

/** The histogram of this name on the registry, created on first use (see `counterOn`). */
export function histogramOn<T extends string>(registry: Registry, config: Omit<HistogramConfiguration<T>, 'registers'>): Histogram<T> {
  const existing = registry.getSingleMetric(config.name);
  if (existing instanceof Histogram) return existing;
  return new Histogram({ ...config, registers: [registry] });
}
