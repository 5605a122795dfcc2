import { describe, expect, it } from '@jest/globals';
import { createGrpcClient, createTrustedIdentities, type ServiceCredential } from '@portcullis/kit';
import { PrincipalKind, TenantStatus } from '@portcullis/proto/common';
import { PolicyService } from '@portcullis/proto/policy';
import { TenantRegistryService } from '@portcullis/proto/tenant';
import { demo, httpJson } from '../../deploy/local/seed.mjs';
import { useDemoPlatform } from '../src/platform.js';

/**
 * Service credentials on the running platform: every gRPC call between services is signed, a
 * tenant's own backend reaches the policy service with a credential exchanged for its API key and
 * may only ask about its own tenant, and platform operations are open to operators only.
 */
describe('service credentials', () => {
  const run = useDemoPlatform();

  const policyAt = (credential: ServiceCredential | 'none') =>
    createGrpcClient(PolicyService, { address: `127.0.0.1:${run.platform.ports.policy.grpc}`, deadlineMs: 5_000, credential });
  const registryAt = (credential: ServiceCredential | 'none') =>
    createGrpcClient(TenantRegistryService, {
      address: `127.0.0.1:${run.platform.ports['tenant-registry'].grpc}`,
      deadlineMs: 5_000,
      credential,
    });

  /** A tenant API key of Alpha Corp with these scopes, made by its owner through the gateway. */
  async function tenantKey(scopes: string[]): Promise<string> {
    const created = await httpJson(run.platform.gatewayUrl, 'POST', '/api/api-keys', {
      token: run.tokens.owner,
      host: demo.host,
      body: { kind: 'tenant', name: `backend ${scopes.join(' ')}`, scopes },
    });
    expect(created.status).toBe(201);
    return (created.body as { key: string }).key;
  }

  const exchange = (headers: Record<string, string>, token?: string) =>
    httpJson(run.platform.gatewayUrl, 'POST', '/api/service-tokens', { host: demo.host, headers, ...(token ? { token } : {}), body: {} });

  it("lets a tenant's backend ask the policy service about its own tenant, and nothing else", async () => {
    const { seeded } = run.platform;
    const key = await tenantKey(['decisions:query']);
    const exchanged = await exchange({ 'x-api-key': key });
    expect(exchanged.status).toBe(201);
    const credential = exchanged.body as { token: string; tokenType: string; audience: string; expiresAt: string };
    expect(credential).toMatchObject({ tokenType: 'Bearer', audience: 'policy' });
    expect(Date.parse(credential.expiresAt)).toBeGreaterThan(Date.now());

    const policy = policyAt(() => Promise.resolve(credential.token));
    try {
      const owner = { kind: PrincipalKind.USER, id: seeded.users.owner, tenantId: seeded.tenantId };
      const own = await policy.check({ principal: owner, tenantId: seeded.tenantId, object: 'billing', action: 'manage' });
      expect(own.allowed).toBe(true);
      const { capabilities } = await policy.listCapabilities({ principal: owner, tenantId: seeded.tenantId });
      expect(capabilities).toContain('decisions:query');

      const beta = { kind: PrincipalKind.USER, id: seeded.users.owner, tenantId: seeded.beta.tenantId };
      await expect(
        policy.check({ principal: beta, tenantId: seeded.beta.tenantId, object: 'tenant', action: 'read' }),
      ).rejects.toMatchObject({
        code: 'CROSS_TENANT',
      });
      await expect(
        policy.batchCheck({ principal: beta, tenantId: seeded.beta.tenantId, queries: [{ object: 'tenant', action: 'read' }] }),
      ).rejects.toMatchObject({ code: 'CROSS_TENANT' });
      // Grants and plans are not for tenant backends, not even in their own tenant.
      await expect(policy.assignRole({ tenantId: seeded.tenantId, userId: seeded.users.user, actor: owner })).rejects.toMatchObject({
        code: 'PERMISSION_DENIED',
      });
      await expect(policy.setTenantPlan({ tenantId: seeded.tenantId, plan: 'enterprise' })).rejects.toMatchObject({
        code: 'PERMISSION_DENIED',
      });
    } finally {
      policy.close();
    }

    // The credential is addressed to the policy service: tenant-registry does not accept it.
    const registry = registryAt(() => Promise.resolve(credential.token));
    try {
      await expect(registry.listTeams({ tenantId: seeded.tenantId })).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    } finally {
      registry.close();
    }
  });

  it('exchanges only a credential allowed decisions:query: not a key without that scope, not a plain user', async () => {
    const key = await tenantKey(['tools:read']);
    expect((await exchange({ 'x-api-key': key })).status).toBe(403);
    expect((await exchange({}, run.tokens.user)).status).toBe(403);
    expect((await exchange({})).status).toBe(401);
    // An owner's own session may exchange (for trying the API from a console).
    expect((await exchange({}, run.tokens.owner)).status).toBe(201);
  });

  it('refuses gRPC calls without a credential, with an untrusted one, and platform operations from anyone but operators', async () => {
    const { seeded } = run.platform;
    const bare = policyAt('none');
    // Same names, keys the platform never trusted.
    const strangers = createTrustedIdentities();
    const forged = registryAt(strangers['platform-ops'].credentialFor('tenant-registry'));
    const operator = registryAt(run.platform.identityOf('platform-ops').credentialFor('tenant-registry'));
    const gateway = registryAt(run.platform.identityOf('api-gateway').credentialFor('tenant-registry'));
    try {
      await expect(bare.check({ tenantId: seeded.tenantId, object: 'tenant', action: 'read' })).rejects.toMatchObject({
        code: 'UNAUTHENTICATED',
      });
      await expect(forged.setTenantStatus({ tenantId: seeded.beta.tenantId, status: TenantStatus.SUSPENDED })).rejects.toMatchObject({
        code: 'UNAUTHENTICATED',
      });
      // The gateway is a platform service, but tenant status is for operators only.
      await expect(gateway.setTenantStatus({ tenantId: seeded.beta.tenantId, status: TenantStatus.SUSPENDED })).rejects.toMatchObject({
        code: 'PERMISSION_DENIED',
      });
      await expect(gateway.setTenantPlan({ tenantId: seeded.beta.tenantId, plan: 'pro' })).rejects.toMatchObject({
        code: 'PERMISSION_DENIED',
      });
      // The operator may: suspend Beta Labs and bring it back.
      const suspended = await operator.setTenantStatus({ tenantId: seeded.beta.tenantId, status: TenantStatus.SUSPENDED });
      expect(suspended.tenant?.status).toBe(TenantStatus.SUSPENDED);
      const active = await operator.setTenantStatus({ tenantId: seeded.beta.tenantId, status: TenantStatus.ACTIVE });
      expect(active.tenant?.status).toBe(TenantStatus.ACTIVE);
    } finally {
      bare.close();
      forged.close();
      operator.close();
      gateway.close();
    }
  });
});
