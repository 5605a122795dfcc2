import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PrismaPg } from '@prisma/adapter-pg';
import {
  connectNats,
  createAuditPublisher,
  createGrpcClient,
  createGrpcServer,
  createTrustedIdentities,
  createLogger,
  createTenantScope,
  startTelemetry,
  tracer,
  type GrpcClient,
  type GrpcServer,
  type NatsConnection,
  type Telemetry,
} from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind } from '@portcullis/proto/common';
import { ToolGatewayService } from '@portcullis/proto/tools';
import {
  createTestDatabase,
  infra,
  pollUntil,
  testRunId,
  withPg,
  type TestDatabase,
  startAuditRecorder,
  type AuditRecorder,
} from '@portcullis/test';
import { PrismaClient } from '../src/generated/prisma/client.js';
import { createToolGatewayService } from '../src/grpc/tool-gateway-service.js';
import { createHttpToolClient } from '../src/libraries/http-tool-client.js';
import { createInvocationLibrary } from '../src/libraries/invocations.js';
import { createTargetGuard, parseAllowedTargets, systemResolver } from '../src/libraries/target-guard.js';
import { createToolRegistry } from '../src/libraries/tool-registry.js';
import { createToolQueries } from '../src/queries/tools.js';

const identities = createTrustedIdentities();

const logger = createLogger({ name: 'tool-gateway-test', level: 'silent' });
const MAX_RESPONSE_BYTES = 1024;
const sha = (text: string) => createHash('sha256').update(text).digest('hex');

/** A real upstream tool on 127.0.0.1: echoes JSON and remembers the trace context it was sent. */
function startToolServer() {
  const received: { path: string; traceparent: string | undefined; body: string }[] = [];
  const hanging = new Set<ServerResponse>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const traceparent = req.headers.traceparent;
      received.push({ path: req.url ?? '', traceparent: typeof traceparent === 'string' ? traceparent : undefined, body });
      switch (req.url) {
        case '/echo':
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ echo: JSON.parse(body) as unknown }));
          return;
        case '/big': {
          // Streamed without a content-length, so the limit is enforced while reading.
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write('"');
          for (let i = 0; i < 8; i++) res.write('x'.repeat(512));
          res.end('"');
          return;
        }
        case '/text':
          res.writeHead(200, { 'content-type': 'text/plain' }).end('hello, not json');
          return;
        case '/fail':
          res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"tool broke"}');
          return;
        case '/slow':
          hanging.add(res);
          return;
        default:
          res.writeHead(404).end();
      }
    });
  });
  return {
    received,
    async listen(): Promise<number> {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return (server.address() as AddressInfo).port;
    },
    async close(): Promise<void> {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface Gateway {
  server: GrpcServer;
  client: GrpcClient<typeof ToolGatewayService>;
}

/** The service as main.ts wires it, listening on an ephemeral port. */
async function startGateway(prisma: PrismaClient, nc: NatsConnection, allowedPrivateTargets: string): Promise<Gateway> {
  const audit = createAuditPublisher({ nc, subjectPrefix: testRunId });
  await audit.ensureStream();
  const tools = createToolQueries(createTenantScope(prisma));
  const guard = createTargetGuard({ allowedPrivateTargets: parseAllowedTargets(allowedPrivateTargets), resolve: systemResolver });
  const http = createHttpToolClient({ fetch, timeoutMs: 2_000, maxResponseBytes: MAX_RESPONSE_BYTES });
  const service = createToolGatewayService({
    registry: createToolRegistry({ store: tools, guard }),
    invocations: createInvocationLibrary({ tools, guard, http, audit }),
  });
  const server = createGrpcServer({ identity: identities['tool-gateway'], logger, services: [service] });
  const port = await server.listen('127.0.0.1', 0);
  server.setServing(true);
  return {
    server,
    client: createGrpcClient(ToolGatewayService, {
      address: `127.0.0.1:${port}`,
      deadlineMs: 10_000,
      credential: identities['platform-ops'].credentialFor('tool-gateway'),
    }),
  };
}

describe('tool gateway against Postgres, NATS and a real HTTP tool', () => {
  let telemetry: Telemetry;
  let db: TestDatabase;
  let prisma: PrismaClient;
  let nc: NatsConnection;
  let recorder: AuditRecorder;
  /** Allows exactly the tool server's 127.0.0.1:<port> and the port of a closed server. */
  let listed: Gateway;
  /** Allows no private target. */
  let strict: Gateway;
  let toolBase: string;
  let toolPort: number;
  let gonePort: number;
  const toolServer = startToolServer();
  /** A second tool on a loopback port that is not allow-listed. */
  const unlistedServer = startToolServer();
  let unlistedPort: number;

  const tenantA = randomUUID();
  const tenantB = randomUUID();
  const assistant = randomUUID();
  const userA = randomUUID();
  const principalA = { kind: PrincipalKind.USER, id: userA, tenantId: tenantA };

  const register = (gateway: Gateway, name: string, path: string, tenantId = tenantA) =>
    gateway.client.registerTool({ tenantId, assistantId: assistant, name, description: `${name} tool`, endpointUrl: `${toolBase}${path}` });
  const invoke = (gateway: Gateway, toolName: string, inputJson = '{"n":1}', tenantId = tenantA) =>
    gateway.client.invokeTool({
      tenantId,
      assistantId: assistant,
      toolName,
      inputJson,
      principal: { ...principalA, tenantId },
    });
  const auditOf = (tenantId: string, tool: string) =>
    pollUntil(() => recorder.events.find((event) => event.tenantId === tenantId && event.attributes['tool'] === tool), {
      timeoutMs: 5_000,
      what: `audit event for ${tool}`,
    });

  beforeAll(async () => {
    telemetry = startTelemetry({ serviceName: 'tool-gateway-test' });
    toolPort = await toolServer.listen();
    toolBase = `http://127.0.0.1:${toolPort}`;
    unlistedPort = await unlistedServer.listen();
    const gone = startToolServer();
    gonePort = await gone.listen();
    await gone.close();
    db = await createTestDatabase('tool-gateway', new URL('../prisma/migrations', import.meta.url).pathname);
    prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.appUrl }) });
    nc = await connectNats({ servers: infra.natsUrl, name: 'tool-gateway-test', logger });
    listed = await startGateway(prisma, nc, `127.0.0.1:${toolPort}, 127.0.0.1:${gonePort}`);
    strict = await startGateway(prisma, nc, '');
    recorder = await startAuditRecorder({ nc, subjectPrefix: testRunId, name: `tool_gateway_test_${testRunId}` });
  });

  afterAll(async () => {
    for (const gateway of [listed, strict]) {
      gateway.client.close();
      await gateway.server.drain(1_000);
    }
    await recorder.stop();
    await nc.drain();
    await prisma.$disconnect();
    await db.drop();
    await toolServer.close();
    await unlistedServer.close();
    await telemetry.shutdown();
  });

  it('registers and lists tools per assistant', async () => {
    const { tool } = await register(listed, 'echo', '/echo');
    expect(tool).toMatchObject({ tenantId: tenantA, assistantId: assistant, name: 'echo', capability: 'tools:invoke' });
    expect(tool?.endpointUrl).toBe(`${toolBase}/echo`);
    await expect(register(listed, 'echo', '/echo')).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
    await expect(register(listed, 'Bad Name', '/echo')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const { tools } = await listed.client.listTools({ tenantId: tenantA, assistantId: assistant });
    expect(tools.map((t) => t.name)).toContain('echo');
    const other = await listed.client.listTools({ tenantId: tenantA, assistantId: randomUUID() });
    expect(other.tools).toHaveLength(0);
  });

  it('invokes a tool, continues the trace into it and audits the call on JetStream', async () => {
    await register(listed, 'echo-traced', '/echo');
    const input = '{"city":"Oslo","days":[1,2]}';
    const { response, traceId } = await tracer.startActiveSpan('test invoke', async (span) => {
      try {
        return { response: await invoke(listed, 'echo-traced', input), traceId: span.spanContext().traceId };
      } finally {
        span.end();
      }
    });
    expect(JSON.parse(response.outputJson)).toEqual({ echo: { city: 'Oslo', days: [1, 2] } });
    expect(response).toMatchObject({ upstreamStatus: 200, inputSha256: sha(input), outputSha256: sha(response.outputJson) });

    const seen = toolServer.received.filter((r) => r.body === input);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-0[01]$`));

    const event = await auditOf(tenantA, 'echo-traced');
    expect(event).toMatchObject({
      kind: 'tool.call',
      assistantId: assistant,
      object: 'tools',
      action: 'invoke',
      outcome: Outcome.SUCCESS,
      traceId,
      principal: { kind: PrincipalKind.USER, id: userA, tenantId: tenantA },
      attributes: { tool: 'echo-traced', input_sha256: sha(input), output_sha256: response.outputSha256, upstream_status: '200' },
    });
  });

  it('returns an upstream error answer with its status, recorder.events as a failure', async () => {
    await register(listed, 'broken', '/fail');
    const response = await invoke(listed, 'broken');
    expect(response).toMatchObject({ upstreamStatus: 500, outputJson: '{"error":"tool broke"}' });
    expect(await auditOf(tenantA, 'broken')).toMatchObject({ outcome: Outcome.FAILURE, attributes: { upstream_status: '500' } });
  });

  it('fails an oversized response with UPSTREAM_FAILED', async () => {
    await register(listed, 'big', '/big');
    await expect(invoke(listed, 'big')).rejects.toMatchObject({
      code: 'UPSTREAM_FAILED',
      message: `tool response exceeds ${MAX_RESPONSE_BYTES} bytes`,
    });
    expect(await auditOf(tenantA, 'big')).toMatchObject({
      outcome: Outcome.FAILURE,
      attributes: { upstream_status: '200', output_sha256: '' },
    });
  });

  it('fails a non-JSON response with UPSTREAM_FAILED', async () => {
    await register(listed, 'text', '/text');
    await expect(invoke(listed, 'text')).rejects.toMatchObject({
      code: 'UPSTREAM_FAILED',
      message: 'tool response is not a JSON document',
    });
    expect(await auditOf(tenantA, 'text')).toMatchObject({ outcome: Outcome.FAILURE });
  });

  it('fails a tool that does not answer in time with DEADLINE_EXCEEDED', async () => {
    await register(listed, 'slow', '/slow');
    await expect(invoke(listed, 'slow')).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(await auditOf(tenantA, 'slow')).toMatchObject({
      outcome: Outcome.FAILURE,
      reason: expect.stringContaining('DEADLINE_EXCEEDED'),
    });
  });

  it('fails an unreachable tool with UPSTREAM_FAILED', async () => {
    await listed.client.registerTool({
      tenantId: tenantA,
      assistantId: assistant,
      name: 'gone',
      endpointUrl: `http://127.0.0.1:${gonePort}/echo`,
    });
    await expect(invoke(listed, 'gone')).rejects.toMatchObject({ code: 'UPSTREAM_FAILED', message: 'tool endpoint could not be reached' });
  });

  it('answers NOT_FOUND for an unknown tool and INVALID_ARGUMENT for bad input, auditing both', async () => {
    await expect(invoke(listed, 'never-registered')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await auditOf(tenantA, 'never-registered')).toMatchObject({
      outcome: Outcome.FAILURE,
      reason: expect.stringContaining('NOT_FOUND'),
    });
    await register(listed, 'echo-input', '/echo');
    const before = toolServer.received.length;
    await expect(invoke(listed, 'echo-input', '{not json')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(invoke(listed, 'echo-input', JSON.stringify('x'.repeat(70_000)))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(toolServer.received.length).toBe(before);
  });

  it('refuses private targets at registration when they are not allowed', async () => {
    for (const endpointUrl of [`http://127.0.0.1:${toolPort}/echo`, `http://localhost:${toolPort}/echo`, `http://[::1]:${toolPort}/echo`]) {
      await expect(
        strict.client.registerTool({ tenantId: tenantA, assistantId: assistant, name: 'sneaky', endpointUrl }),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('private') });
    }
    const { tools } = await strict.client.listTools({ tenantId: tenantA, assistantId: assistant });
    expect(tools.map((t) => t.name)).not.toContain('sneaky');
  });

  it('allows only the exact allow-listed host and port of a private target', async () => {
    for (const endpointUrl of [
      `http://127.0.0.1:${unlistedPort}/echo`,
      `http://localhost:${toolPort}/echo`,
      `http://[::1]:${toolPort}/echo`,
      `http://127.0.0.2:${toolPort}/echo`,
      'http://127.0.0.1/echo',
    ]) {
      await expect(
        listed.client.registerTool({ tenantId: tenantA, assistantId: assistant, name: 'off-list', endpointUrl }),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('private') });
    }
    const { tools } = await listed.client.listTools({ tenantId: tenantA, assistantId: assistant });
    expect(tools.map((t) => t.name)).not.toContain('off-list');
  });

  it('refuses, at invocation, a stored tool whose private port is not allow-listed, without calling it', async () => {
    // Planted past the registry (as if the list had changed since it was registered).
    await withPg(db.ownerUrl, (c) =>
      c.query('INSERT INTO tools (tenant_id, assistant_id, name, endpoint_url) VALUES ($1, $2, $3, $4)', [
        tenantA,
        assistant,
        'unlisted-port',
        `http://127.0.0.1:${unlistedPort}/echo`,
      ]),
    );
    await expect(invoke(listed, 'unlisted-port')).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(unlistedServer.received).toHaveLength(0);
    expect(await auditOf(tenantA, 'unlisted-port')).toMatchObject({ outcome: Outcome.FAILURE });
  });

  it('refuses a private target again at invocation, without calling it', async () => {
    await register(listed, 'echo-rechecked', '/echo');
    const before = toolServer.received.length;
    await expect(invoke(strict, 'echo-rechecked')).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(toolServer.received.length).toBe(before);
    expect(await auditOf(tenantA, 'echo-rechecked')).toMatchObject({ outcome: Outcome.FAILURE });
  });

  it("never shows or runs one tenant's tools in another", async () => {
    await register(listed, 'echo-b', '/echo', tenantB);
    const listedByA = await listed.client.listTools({ tenantId: tenantA, assistantId: assistant });
    expect(listedByA.tools.map((t) => t.name)).not.toContain('echo-b');
    expect(listedByA.tools.every((t) => t.tenantId === tenantA)).toBe(true);
    await expect(invoke(listed, 'echo-b', '{}', tenantA)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(
      listed.client.invokeTool({ tenantId: tenantB, assistantId: assistant, toolName: 'echo-b', inputJson: '{}', principal: principalA }),
    ).rejects.toMatchObject({ code: 'CROSS_TENANT' });
    // The same name is free in another tenant: uniqueness is per tenant and assistant.
    await expect(register(listed, 'echo-b', '/echo', tenantA)).resolves.toMatchObject({ tool: { tenantId: tenantA } });
  });

  describe('row-level security', () => {
    it('returns zero rows when no tenant is set', async () => {
      const rows = await withPg(db.appUrl, async (c) => (await c.query<{ id: string }>('SELECT id FROM tools')).rows);
      expect(rows).toHaveLength(0);
      const all = await withPg(db.ownerUrl, async (c) => (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM tools')).rows[0]);
      expect(all?.n).toBeGreaterThanOrEqual(2);
    });

    it("with tenant A set never returns tenant B's rows, nor writes into B", async () => {
      const rows = await withPg(db.appUrl, async (c) => {
        await c.query('BEGIN');
        await c.query("SELECT set_config('app.tenant_id', $1, true)", [tenantA]);
        const result = await c.query<{ tenant_id: string }>('SELECT tenant_id FROM tools');
        await expect(
          c.query("INSERT INTO tools (tenant_id, assistant_id, name, endpoint_url) VALUES ($1, $2, 'planted', 'https://x.example/')", [
            tenantB,
            assistant,
          ]),
        ).rejects.toThrow(/row-level security/);
        await c.query('ROLLBACK');
        return result.rows;
      });
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.every((row) => row.tenant_id === tenantA)).toBe(true);
    });
  });
});
