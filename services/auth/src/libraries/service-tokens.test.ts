import { describe, expect, it } from '@jest/globals';
import { createTrustedIdentities } from '@portcullis/kit';
import { create } from '@bufbuild/protobuf';
import { PrincipalKind, PrincipalSchema } from '@portcullis/proto/common';
import { createServiceTokens } from './service-tokens.js';

const identities = createTrustedIdentities(['auth', 'policy', 'tenant-registry']);
const tenant = '00000000-0000-4000-8000-00000000000a';
const principal = (kind: PrincipalKind, id = 'k1', tenantId = tenant) => create(PrincipalSchema, { kind, id, tenantId });

describe('tenant service credentials', () => {
  const tokens = createServiceTokens({ identity: identities.auth, ttlSeconds: 120 });

  it("signs a credential for the principal's tenant that the policy service accepts as that tenant's caller", async () => {
    const before = Date.now();
    const issued = await tokens.issue({ principal: principal(PrincipalKind.API_KEY, 'abcd1234abcd1234'), audience: '' });
    expect(issued.audience).toBe('policy');
    expect(issued.expiresAt.getTime()).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 120_000);
    expect(issued.expiresAt.getTime()).toBeLessThanOrEqual(before + 121_000);
    expect(await identities.policy.verify(issued.token)).toEqual({ kind: 'tenant', tenantId: tenant, subject: 'apikey:abcd1234abcd1234' });
    // Addressed to the policy service only.
    await expect(identities['tenant-registry'].verify(issued.token)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('names a signed-in person as user:<id>', async () => {
    const issued = await tokens.issue({ principal: principal(PrincipalKind.USER, 'u1'), audience: 'policy' });
    expect(await identities.policy.verify(issued.token)).toMatchObject({ subject: 'user:u1' });
  });

  it('refuses robots and devices, a principal without a tenant, and services that do not take tenant credentials', async () => {
    await expect(tokens.issue({ principal: principal(PrincipalKind.ROBOT), audience: 'policy' })).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
    });
    await expect(tokens.issue({ principal: principal(PrincipalKind.DEVICE), audience: 'policy' })).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
    });
    await expect(tokens.issue({ principal: undefined, audience: 'policy' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(tokens.issue({ principal: principal(PrincipalKind.API_KEY, 'k1', 'acme'), audience: 'policy' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(tokens.issue({ principal: principal(PrincipalKind.API_KEY), audience: 'tenant-registry' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'audience' },
    });
  });

  it('cannot be issued with any identity but auth', async () => {
    const impostor = createServiceTokens({ identity: identities.policy, ttlSeconds: 120 });
    await expect(impostor.issue({ principal: principal(PrincipalKind.API_KEY), audience: 'policy' })).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
    });
  });
});
