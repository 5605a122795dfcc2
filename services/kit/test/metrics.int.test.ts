// gRPC server and client metrics, and the admin server's /metrics, over real sockets.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PolicyService } from '@portcullis/proto/policy';
import { createAdminServer, type AdminServer } from '../src/admin-server.js';
import { AppError } from '../src/errors.js';
import { createGrpcClient, type GrpcClient } from '../src/grpc/client.js';
import { createGrpcServer, implement, type GrpcServer } from '../src/grpc/server.js';
import { createTrustedIdentities } from '../src/grpc/service-credentials.js';
import { createLogger } from '../src/logger.js';
import { createMetrics, type Registry } from '../src/metrics/metrics.js';

const identities = createTrustedIdentities();
const notServed = () => Promise.reject(new AppError('FAILED_PRECONDITION', 'not served here'));

/** The value of the sample of `name` whose labels are exactly `labels` (in any order), or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const wanted = JSON.stringify(Object.entries(labels).sort());
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(line);
    if (match?.[1] !== name) continue;
    const found = [...(match[2] ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)].map(([, key = '', value = '']) => [key, value]);
    if (JSON.stringify(found.sort()) === wanted) return Number(match[3]);
  }
  return undefined;
}

describe('gRPC metrics', () => {
  let serverMetrics: Registry;
  let clientMetrics: Registry;
  let server: GrpcServer;
  let client: GrpcClient<typeof PolicyService>;
  let refused: GrpcClient<typeof PolicyService>;

  beforeAll(async () => {
    serverMetrics = createMetrics({ service: 'policy' });
    clientMetrics = createMetrics({ service: 'api-gateway' });
    server = createGrpcServer({
      identity: identities.policy,
      logger: createLogger({ name: 'test', level: 'silent' }),
      metrics: serverMetrics,
      services: [
        implement(PolicyService, {
          async check(request) {
            if (request.object === 'missing') throw new AppError('NOT_FOUND', 'no such thing');
            return { allowed: true, reason: 'ok' };
          },
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
    const credential = identities['api-gateway'].credentialFor('policy');
    client = createGrpcClient(PolicyService, { address, deadlineMs: 2_000, credential, metrics: clientMetrics });
    // A second client of the same service on the same registry shares its counter.
    refused = createGrpcClient(PolicyService, { address, deadlineMs: 2_000, credential: 'none', metrics: clientMetrics });
  });

  afterAll(async () => {
    client.close();
    refused.close();
    await server.drain(1_000);
  });

  it('counts and times every handled call by method and status, refusals included', async () => {
    await client.check({ object: 'tools' });
    await client.check({ object: 'tools' });
    await expect(client.check({ object: 'missing' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(refused.check({})).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });

    const text = await serverMetrics.metrics();
    const check = { method: 'portcullis.policy.v1.PolicyService/Check', service: 'policy' };
    expect(sample(text, 'portcullis_grpc_server_requests_total', { ...check, code: 'OK' })).toBe(2);
    expect(sample(text, 'portcullis_grpc_server_requests_total', { ...check, code: 'NOT_FOUND' })).toBe(1);
    expect(sample(text, 'portcullis_grpc_server_requests_total', { ...check, code: 'UNAUTHENTICATED' })).toBe(1);
    expect(sample(text, 'portcullis_grpc_server_duration_seconds_count', check)).toBe(4);
    expect(sample(text, 'portcullis_grpc_server_duration_seconds_bucket', { ...check, le: '+Inf' })).toBe(4);
  });

  it('counts every call a client makes by target, method and status', async () => {
    const text = await clientMetrics.metrics();
    const check = { target: 'portcullis.policy.v1.PolicyService', method: 'Check', service: 'api-gateway' };
    expect(sample(text, 'portcullis_grpc_client_requests_total', { ...check, code: 'OK' })).toBe(2);
    expect(sample(text, 'portcullis_grpc_client_requests_total', { ...check, code: 'NOT_FOUND' })).toBe(1);
    expect(sample(text, 'portcullis_grpc_client_requests_total', { ...check, code: 'UNAUTHENTICATED' })).toBe(1);
  });
});

describe('admin server /metrics', () => {
  let admin: AdminServer;
  let bare: AdminServer;
  let url: string;
  let bareUrl: string;

  beforeAll(async () => {
    const metrics = createMetrics({ service: 'audit' });
    admin = createAdminServer({ isReady: () => true, metrics });
    bare = createAdminServer({ isReady: () => true });
    url = `http://127.0.0.1:${await admin.listen('127.0.0.1', 0)}`;
    bareUrl = `http://127.0.0.1:${await bare.listen('127.0.0.1', 0)}`;
  });

  afterAll(async () => {
    await admin.close();
    await bare.close();
  });

  it('serves the registry in the Prometheus text format with its content type', async () => {
    const response = await fetch(`${url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await response.text();
    expect(text).toMatch(/^# HELP process_cpu_user_seconds_total /m);
    expect(text).toMatch(/^process_cpu_user_seconds_total\{service="audit"\} [\d.]+$/m);
  });

  it('still answers /healthz and /readyz, and 404 for /metrics without a registry', async () => {
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect((await fetch(`${bareUrl}/metrics`)).status).toBe(404);
  });
});
