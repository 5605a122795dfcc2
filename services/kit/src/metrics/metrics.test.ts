import { describe, expect, it } from '@jest/globals';
import { Counter, counterOn, createMetrics, Histogram, histogramOn, metricNames } from './metrics.js';

describe('createMetrics', () => {
  it("exposes the default process and Node metrics, every series labelled with the service's name", async () => {
    const metrics = createMetrics({ service: 'policy' });
    const text = await metrics.metrics();
    expect(metrics.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(text).toMatch(/^# TYPE process_cpu_seconds_total counter$/m);
    expect(text).toMatch(/^process_resident_memory_bytes\{service="policy"\} \d+/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds\{service="policy"\}/m);
  });

  it('adds the service label to what a service registers', async () => {
    const metrics = createMetrics({ service: 'audit' });
    const stored = new Counter({ name: 'test_events_total', help: 'test', labelNames: ['kind'], registers: [metrics] });
    stored.inc({ kind: 'robot' }, 2);
    expect(await metrics.metrics()).toMatch(/^test_events_total\{kind="robot",service="audit"\} 2$/m);
  });

  it('keeps registries of separate processes (or tests) apart', async () => {
    const first = createMetrics({ service: 'a' });
    const second = createMetrics({ service: 'b' });
    new Counter({ name: 'only_in_first_total', help: 'test', registers: [first] }).inc();
    expect(await first.metrics()).toContain('only_in_first_total');
    expect(await second.metrics()).not.toContain('only_in_first_total');
  });
});

describe('counterOn / histogramOn', () => {
  it('return the instrument already registered under the name instead of failing on a second set-up', async () => {
    const metrics = createMetrics({ service: 'gateway' });
    const config = { name: metricNames.grpcClientRequests, help: 'test', labelNames: ['code'] as const };
    const first = counterOn(metrics, config);
    const second = counterOn(metrics, config);
    expect(second).toBe(first);
    first.inc({ code: 'OK' });
    second.inc({ code: 'OK' });
    expect(await metrics.metrics()).toMatch(/^portcullis_grpc_client_requests_total\{code="OK",service="gateway"\} 2$/m);

    const histogram = histogramOn(metrics, { name: 'test_duration_seconds', help: 'test', buckets: [1] });
    expect(histogram).toBeInstanceOf(Histogram);
    expect(histogramOn(metrics, { name: 'test_duration_seconds', help: 'test', buckets: [1] })).toBe(histogram);
  });

  it('refuse a name already taken by another kind of metric', () => {
    const metrics = createMetrics({ service: 'gateway' });
    counterOn(metrics, { name: 'test_taken', help: 'test' });
    expect(() => histogramOn(metrics, { name: 'test_taken', help: 'test' })).toThrow(/already been registered/);
  });
});

describe('metricNames', () => {
  it('are unique, Prometheus-valid and in the portcullis_ namespace; counters end in _total', () => {
    const names = Object.values(metricNames);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(name).toMatch(/^portcullis_[a-z_]+_(total|seconds)$/);
  });
});
