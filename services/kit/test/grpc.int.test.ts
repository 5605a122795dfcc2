import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Client, credentials } from '@grpc/grpc-js';
import { PolicyService } from '@portcullis/proto/policy';
import { AppError } from '../src/errors.js';
import { createGrpcClient, type GrpcClient } from '../src/grpc/client.js';
import { createGrpcServer, implement, type GrpcServer } from '../src/grpc/server.js';
import { createLogger } from '../src/logger.js';

describe('gRPC helpers built from protobuf-es descriptors', () => {
  let server: GrpcServer;
  let client: GrpcClient<typeof PolicyService>;
  let address: string;
  const seenRequestIds: string[] = [];

  const notServed = () => Promise.reject(new AppError('FAILED_PRECONDITION', 'not served here'));

  beforeAll(async () => {
    server = createGrpcServer({
      logger: createLogger({ name: 'test', level: 'silent' }),
      services: [
        implement(PolicyService, {
          async check(request, call) {
            seenRequestIds.push(call.requestId);
            if (request.object === 'boom') throw new Error('secret internals');
            if (request.object === 'missing') throw new AppError('NOT_FOUND', 'no such thing');
            return { allowed: request.action === 'read', reason: `checked ${request.object}` };
          },
          async assignRole() {
            return {};
          },
          async revokeRole() {
            await new Promise((resolve) => setTimeout(resolve, 2_000));
            return {};
          },
          batchCheck: notServed,
          explain: notServed,
          listCapabilities: notServed,
          grantPermission: notServed,
          revokePermission: notServed,
          setTenantPlan: notServed,
        }),
      ],
    });
    const port = await server.listen('127.0.0.1', 0);
    server.setServing(true);
    address = `127.0.0.1:${port}`;
    client = createGrpcClient(PolicyService, { address, deadlineMs: 1_000 });
  });

  afterAll(async () => {
    client.close();
    await server.drain(1_000);
  });

  it('round-trips typed messages', async () => {
    const response = await client.check({ tenantId: 't', object: 'tools', action: 'read' }, { requestId: 'req-1' });
    expect(response.allowed).toBe(true);
    expect(response.reason).toBe('checked tools');
    expect(seenRequestIds).toContain('req-1');
  });

  it('carries the AppError code across the wire', async () => {
    await expect(client.check({ object: 'missing' })).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'no such thing' });
  });

  it('hides internal error messages from callers', async () => {
    const failure = client.check({ object: 'boom' });
    await expect(failure).rejects.toMatchObject({ code: 'INTERNAL' });
    await expect(failure).rejects.not.toMatchObject({ message: expect.stringContaining('secret') });
  });

  it('enforces the deadline', async () => {
    await expect(client.revokeRole({}, { deadlineMs: 100 })).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
  });

  it('answers grpc.health.v1 Check and lists its services over server reflection', async () => {
    const raw = new Client(address, credentials.createInsecure());
    const identity = (b: Buffer) => b;
    const health = await new Promise<Buffer>((resolve, reject) => {
      raw.makeUnaryRequest('/grpc.health.v1.Health/Check', identity, identity, Buffer.alloc(0), (error, value) => {
        if (error || !value) reject(error ?? new Error('no response'));
        else resolve(value);
      });
    });
    // HealthCheckResponse { status: SERVING (1) }
    expect([...health]).toEqual([0x08, 0x01]);

    const listed = await new Promise<string>((resolve, reject) => {
      const stream = raw.makeBidiStreamRequest('/grpc.reflection.v1.ServerReflection/ServerReflectionInfo', identity, identity);
      stream.on('data', (chunk: Buffer) => {
        resolve(chunk.toString('latin1'));
        stream.end();
      });
      stream.on('error', reject);
      // ServerReflectionRequest { list_services: "" } (field 7)
      stream.write(Buffer.from([0x3a, 0x00]));
    });
    expect(listed).toContain('portcullis.policy.v1.PolicyService');
    raw.close();
  });

  it('reports DEPENDENCY_UNAVAILABLE when nothing listens', async () => {
    const dead = createGrpcClient(PolicyService, { address: '127.0.0.1:1', deadlineMs: 500 });
    await expect(dead.check({})).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    dead.close();
  });
});
