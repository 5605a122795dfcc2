// Prometheus metrics of every process: requests through the gateway (allowed, denied, unmatched),
// then a scrape of each service's admin port.
import { describe, expect, it } from '@jest/globals';
import { metricNames } from '@portcullis/kit';
import { serviceNames, type ServiceName } from '../../deploy/local/platform.mjs';
import { demo, httpJson } from '../../deploy/local/seed.mjs';
import { dashboardExpressions, declaredMetrics, metricOfSeries, sampleSum, seriesSelectedBy } from '../src/dashboard.js';
import { pollUntil } from '../src/infra.js';
import { useDemoPlatform } from '../src/platform.js';

describe('Prometheus /metrics on every service', () => {
  const run = useDemoPlatform();

  const scrape = async (name: ServiceName) => {
    const response = await fetch(`http://127.0.0.1:${run.platform.ports[name].admin}/metrics`, { signal: AbortSignal.timeout(5_000) });
    return { status: response.status, contentType: response.headers.get('content-type'), text: await response.text() };
  };
  const scrapeAll = async () =>
    Object.fromEntries(await Promise.all(serviceNames.map(async (name) => [name, (await scrape(name)).text] as const)));
  const onAssistant = (token: string, method: string, path: string, body?: unknown) =>
    httpJson(run.platform.gatewayUrl, method, path, { token, host: demo.host, ...(body === undefined ? {} : { body }) });

  it('counts requests, decisions and RPCs where they happened, with bounded labels only', async () => {
    // Allowed (a user may read the assistant's tools), denied by the policy (a user may not invoke
    // them), and a path no route matches.
    expect((await onAssistant(run.tokens.user, 'GET', '/api/tools')).status).toBe(200);
    expect((await onAssistant(run.tokens.user, 'POST', `/api/tools/${demo.toolName}/invoke`, { input: {} })).status).toBe(403);
    expect((await onAssistant(run.tokens.user, 'GET', `/api/no-such-route/${run.platform.seeded.tenantId}`)).status).toBe(404);

    const gateway = await pollUntil(
      async () => {
        const { text } = await scrape('api-gateway');
        return sampleSum(text, 'portcullis_http_requests_total', { route: 'unmatched', status: '404' }) > 0 ? text : undefined;
      },
      { timeoutMs: 5_000, what: 'the gateway to count the requests' },
    );
    const http = (labels: Record<string, string>) => sampleSum(gateway, 'portcullis_http_requests_total', labels);
    expect(http({ method: 'GET', route: '/api/tools', status: '200', service: 'api-gateway' })).toBeGreaterThanOrEqual(1);
    expect(http({ method: 'POST', route: '/api/tools/:name/invoke', status: '403' })).toBeGreaterThanOrEqual(1);
    expect(
      sampleSum(gateway, 'portcullis_http_request_duration_seconds_count', { method: 'GET', route: '/api/tools' }),
    ).toBeGreaterThanOrEqual(1);
    expect(sampleSum(gateway, 'portcullis_authz_decisions_total', { outcome: 'allow' })).toBeGreaterThanOrEqual(1);
    expect(sampleSum(gateway, 'portcullis_authz_decisions_total', { outcome: 'deny' })).toBeGreaterThanOrEqual(1);
    expect(
      sampleSum(gateway, 'portcullis_grpc_client_requests_total', {
        target: 'portcullis.policy.v1.PolicyService',
        method: 'Check',
        code: 'OK',
      }),
    ).toBeGreaterThanOrEqual(1);
    // Ids never become label values: not the tenant's (in the unmatched path), nor the user's.
    const labelValues = [...gateway.matchAll(/="([^"]*)"/g)].map(([, value]) => value);
    expect(
      labelValues.filter((value) => value?.includes(run.platform.seeded.tenantId) || value?.includes(run.platform.seeded.users.user)),
    ).toEqual([]);

    const policy = (await scrape('policy')).text;
    expect(
      sampleSum(policy, 'portcullis_policy_decisions_total', { rpc: 'Check', outcome: 'allow', service: 'policy' }),
    ).toBeGreaterThanOrEqual(1);
    expect(sampleSum(policy, 'portcullis_policy_decisions_total', { rpc: 'Check', outcome: 'deny' })).toBeGreaterThanOrEqual(1);

    // gRPC server metrics on each service the requests above (and signing in) called.
    const called: Partial<Record<ServiceName, string>> = {
      policy: 'portcullis.policy.v1.PolicyService/Check',
      'tool-gateway': 'portcullis.tools.v1.ToolGatewayService/ListTools',
      'tenant-registry': 'portcullis.tenant.v1.TenantRegistryService/ResolveContext',
      auth: 'portcullis.auth.v1.AuthService/Login',
    };
    for (const [name, method] of Object.entries(called) as [ServiceName, string][]) {
      const { text } = await scrape(name);
      expect({
        name,
        handled: sampleSum(text, 'portcullis_grpc_server_requests_total', { method, code: 'OK', service: name }) > 0,
      }).toEqual({
        name,
        handled: true,
      });
      expect({ name, timed: sampleSum(text, 'portcullis_grpc_server_duration_seconds_count', { method }) > 0 }).toEqual({
        name,
        timed: true,
      });
    }
  });

  it('answers 200 in the Prometheus text format on every admin port, with process metrics labelled by service', async () => {
    for (const name of serviceNames) {
      const { status, contentType, text } = await scrape(name);
      expect({ name, status, contentType }).toEqual({ name, status: 200, contentType: 'text/plain; version=0.0.4; charset=utf-8' });
      expect({ name, cpu: sampleSum(text, 'process_cpu_seconds_total', { service: name }) > 0 }).toEqual({ name, cpu: true });
    }
  });

  it('serves every metric the Grafana dashboard queries from some service', async () => {
    const declared = new Map<string, string>();
    for (const text of Object.values(await scrapeAll())) for (const [name, type] of declaredMetrics(text)) declared.set(name, type);
    // Histograms: those served, and the catalogue's `_seconds` metrics (named by their base name even when missing).
    const histograms = new Set([
      ...[...declared].filter(([, type]) => type === 'histogram').map(([name]) => name),
      ...Object.values(metricNames).filter((name) => name.endsWith('_seconds')),
    ]);
    const queried = new Set(
      dashboardExpressions().flatMap((expr) => seriesSelectedBy(expr).map((series) => metricOfSeries(series, histograms))),
    );
    expect([...queried].filter((metric) => !declared.has(metric))).toEqual([]);
  });
});
