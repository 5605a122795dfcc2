import { describe, expect, it } from '@jest/globals';
import { AppError } from '@portcullis/kit';
import { Role } from '@portcullis/proto/common';
import type { TenantChange } from './records.js';
import { createTenantLibrary, type TenantStore } from './tenants.js';

const owner = '11111111-1111-4111-8111-111111111111';
const tenantId = '22222222-2222-4222-8222-222222222222';
const assistantId = '33333333-3333-4333-8333-333333333333';

type Grant = { tenantId: string; userId: string; role: Role };

function setup({ policyDown = false, storeFails = false } = {}) {
  const steps: string[] = [];
  const grants: Grant[] = [];
  const revoked: Grant[] = [];
  const announced: [string, TenantChange][] = [];
  const store: TenantStore = {
    async insertTenantWithOwner(tenant, ownerUserId) {
      steps.push(`insert tenant ${tenant.id} owned by ${ownerUserId}`);
      if (storeFails) throw new AppError('INTERNAL', 'database down');
      return { ...tenant, status: 'active' };
    },
    async insertAssistant(tid, name) {
      return { id: assistantId, tenantId: tid, name };
    },
    async insertDomain(tid, aid, host) {
      steps.push(`insert domain ${host}`);
      return { id: 'd', tenantId: tid, assistantId: aid, host };
    },
    async insertTeam(tid, name) {
      return { id: 't', tenantId: tid, name };
    },
  };
  const policy = {
    async assignRole(grant: Grant) {
      steps.push(`assign ${grant.tenantId}`);
      if (policyDown) throw new AppError('DEPENDENCY_UNAVAILABLE', 'portcullis.policy.v1.PolicyService is unavailable');
      grants.push(grant);
    },
    async revokeRole(grant: Grant) {
      revoked.push(grant);
    },
  };
  const library = createTenantLibrary({
    store,
    policy,
    announce: (id, change) => announced.push([id, change]),
    newId: () => tenantId,
  });
  return { library, steps, grants, revoked, announced };
}

describe('tenant library', () => {
  it('assigns the owner role in policy before the tenant is stored, then announces it', async () => {
    const { library, steps, grants, announced } = setup();
    const tenant = await library.createTenant({ name: '  Acme  ', ownerUserId: owner });
    expect(tenant).toEqual({ id: tenantId, name: 'Acme', status: 'active' });
    expect(grants).toEqual([{ tenantId, userId: owner, role: Role.OWNER }]);
    expect(steps).toEqual([`assign ${tenantId}`, `insert tenant ${tenantId} owned by ${owner}`]);
    expect(announced).toEqual([[tenantId, 'tenant.created']]);
  });

  it('creates nothing when the policy service is down', async () => {
    const { library, steps, announced } = setup({ policyDown: true });
    await expect(library.createTenant({ name: 'Acme', ownerUserId: owner })).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(steps).toEqual([`assign ${tenantId}`]);
    expect(announced).toEqual([]);
  });

  it('withdraws the pre-assigned role when storing the tenant fails', async () => {
    const { library, revoked, announced } = setup({ storeFails: true });
    await expect(library.createTenant({ name: 'Acme', ownerUserId: owner })).rejects.toMatchObject({ code: 'INTERNAL' });
    expect(revoked).toEqual([{ tenantId, userId: owner, role: Role.OWNER }]);
    expect(announced).toEqual([]);
  });

  it.each([
    [{ name: '', ownerUserId: owner }, 'name'],
    [{ name: 'x'.repeat(101), ownerUserId: owner }, 'name'],
    [{ name: 'Acme', ownerUserId: 'user-1' }, 'owner_user_id'],
  ])('rejects %j before calling anything', async (input, field) => {
    const { library, steps } = setup();
    await expect(library.createTenant(input)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field } });
    expect(steps).toEqual([]);
  });

  it('accepts a name of exactly 100 characters', async () => {
    const { library } = setup();
    await expect(library.createTenant({ name: 'x'.repeat(100), ownerUserId: owner })).resolves.toMatchObject({ name: 'x'.repeat(100) });
  });

  it('stores domains lowercase without port and announces them', async () => {
    const { library, steps, announced } = setup();
    const domain = await library.addDomain({ tenantId, assistantId, host: 'Chat.Acme.Example:8443' });
    expect(domain.host).toBe('chat.acme.example');
    expect(steps).toEqual(['insert domain chat.acme.example']);
    expect(announced).toEqual([[tenantId, 'domain.added']]);
  });

  it('validates ids, names and hosts of tenant-owned things', async () => {
    const { library, announced } = setup();
    await expect(library.addDomain({ tenantId, assistantId, host: 'bad host' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(library.addDomain({ tenantId, assistantId: 'nope', host: 'a.example' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'assistant_id' },
    });
    await expect(library.createAssistant({ tenantId: 'nope', name: 'Bot' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(library.createTeam({ tenantId, name: ' ' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(announced).toEqual([]);
  });
});
