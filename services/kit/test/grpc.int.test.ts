import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Client, credentials } from '@grpc/grpc-js';
import { PolicyService } from '@portcullis/proto/policy';
import { AppError } from '../src/errors.js';
import { createGrpcClient, type GrpcClient } from '../src/grpc/client.js';
import { createGrpcServer, implement, type GrpcServer } from '../src/grpc/server.js';
import { createLogger } from '../src/logger.js';
import {
  type Caller,
  createTrustedIdentities,
  onlyServices,
  platformServiceOrTenant,
  requireCallerTenant,
  type ServiceCredential,
} from '../src/grpc/service-credentials.js';

const identities = createTrustedIdentities();

describe('gRPC helpers built from protobuf-es descriptors', () => {
  let server: GrpcServer;
  let client: GrpcClient<typeof PolicyService>;
  let address: string;
  const seenRequestIds: string[] = [];

  const notServed = () => Promise.reject(new AppError('FAILED_PRECONDITION', 'not served here'));

  beforeAll(async () => {
    server = createGrpcServer({
      identity: identities.policy,
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
    client = createGrpcClient(PolicyService, {
      address,
      deadlineMs: 1_000,
      credential: identities['platform-ops'].credentialFor('policy'),
    });
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
    const dead = createGrpcClient(PolicyService, {
      address: '127.0.0.1:1',
      deadlineMs: 500,
      credential: identities['platform-ops'].credentialFor('policy'),
    });
    await expect(dead.check({})).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    dead.close();
  });
});

describe('service credentials over the wire', () => {
  const TENANT = '0b6f2a8e-5c3d-4e7f-9a1b-2c3d4e5f6a7b';
  const OTHER_TENANT = '9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b';
  let server: GrpcServer;
  let address: string;
  const clients: GrpcClient<typeof PolicyService>[] = [];
  const checkCallers: Caller[] = [];
  let assignRoleCalls = 0;
  let revokeRoleCalls = 0;

  const notServed = () => Promise.reject(new AppError('FAILED_PRECONDITION', 'not served here'));

  function clientWith(credential: ServiceCredential | 'none') {
    const client = createGrpcClient(PolicyService, { address, deadlineMs: 1_000, credential });
    clients.push(client);
    return client;
  }

  const tenantCredential = async (tenantId = TENANT): Promise<ServiceCredential> => {
    const { token } = await identities.auth.issueTenantToken({ audience: 'policy', tenantId, subject: 'apikey:k1', ttlSeconds: 60 });
    return async () => token;
  };

  beforeAll(async () => {
    server = createGrpcServer({
      identity: identities.policy,
      logger: createLogger({ name: 'test', level: 'silent' }),
      services: [
        implement(
          PolicyService,
          {
            async check(request, call) {
              checkCallers.push(call.caller);
              requireCallerTenant(call.caller, request.tenantId);
              return { allowed: true, reason: call.caller.kind };
            },
            async assignRole() {
              assignRoleCalls += 1;
              return {};
            },
            async revokeRole() {
              revokeRoleCalls += 1;
              return {};
            },
            batchCheck: notServed,
            explain: notServed,
            listCapabilities: notServed,
            grantPermission: notServed,
            revokePermission: notServed,
            setTenantPlan: notServed,
          },
          { default: onlyServices(), check: platformServiceOrTenant, assignRole: onlyServices('tenant-registry') },
        ),
      ],
    });
    const port = await server.listen('127.0.0.1', 0);
    server.setServing(true);
    address = `127.0.0.1:${port}`;
  });

  afterAll(async () => {
    for (const client of clients) client.close();
    await server.drain(1_000);
  });

  it('refuses a call without a credential', async () => {
    const before = checkCallers.length;
    await expect(clientWith('none').check({ tenantId: TENANT })).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(checkCallers).toHaveLength(before);
  });

  it('refuses a credential addressed to another service, or not a token at all', async () => {
    const before = checkCallers.length;
    const forAudit = clientWith(identities['platform-ops'].credentialFor('audit'));
    await expect(forAudit.check({ tenantId: TENANT })).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      message: 'service credential rejected',
    });
    await expect(clientWith(async () => 'not.a.token').check({ tenantId: TENANT })).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(checkCallers).toHaveLength(before);
  });

  it('admits a listed platform service and refuses one not on the method list', async () => {
    const ops = clientWith(identities['platform-ops'].credentialFor('policy'));
    await expect(ops.check({ tenantId: OTHER_TENANT })).resolves.toMatchObject({ allowed: true, reason: 'platform' });
    expect(checkCallers.at(-1)).toEqual({ kind: 'platform', service: 'platform-ops' });

    const before = assignRoleCalls;
    await expect(ops.assignRole({ tenantId: TENANT })).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(assignRoleCalls).toBe(before);
    await expect(clientWith(identities['tenant-registry'].credentialFor('policy')).assignRole({ tenantId: TENANT })).resolves.toEqual(
      expect.anything(),
    );
    expect(assignRoleCalls).toBe(before + 1);
  });

  it('applies the default rule to methods without their own', async () => {
    const registry = clientWith(identities['tenant-registry'].credentialFor('policy'));
    await expect(registry.revokeRole({ tenantId: TENANT })).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(revokeRoleCalls).toBe(0);
  });

  it('admits a tenant credential on check only, and only for its own tenant', async () => {
    const tenant = clientWith(await tenantCredential());
    await expect(tenant.check({ tenantId: TENANT })).resolves.toMatchObject({ allowed: true, reason: 'tenant' });
    expect(checkCallers.at(-1)).toEqual({ kind: 'tenant', tenantId: TENANT, subject: 'apikey:k1' });

    await expect(tenant.check({ tenantId: OTHER_TENANT })).rejects.toMatchObject({ code: 'CROSS_TENANT' });

    const before = assignRoleCalls;
    await expect(tenant.assignRole({ tenantId: TENANT })).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(assignRoleCalls).toBe(before);
  });

  it('refuses a tenant credential addressed to another service', async () => {
    const { token } = await identities.auth.issueTenantToken({ audience: 'audit', tenantId: TENANT, subject: 'apikey:k1', ttlSeconds: 60 });
    const before = checkCallers.length;
    await expect(clientWith(async () => token).check({ tenantId: TENANT })).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(checkCallers).toHaveLength(before);
  });
});
