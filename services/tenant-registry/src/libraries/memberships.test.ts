import { describe, expect, it } from '@jest/globals';
import { AppError } from '@portcullis/kit';
import { Role } from '@portcullis/proto/common';
import { createMembershipLibrary, type MembershipStore } from './memberships.js';
import type { MembershipRecord, TenantChange } from './records.js';
import type { MemberRole } from './roles.js';

const tenantId = '22222222-2222-4222-8222-222222222222';
const user = '44444444-4444-4444-8444-444444444444';
const actor = '55555555-5555-4555-8555-555555555555';

type Grant = { tenantId: string; userId: string; role: Role };

function setup({
  exists = true,
  current,
  owners = 1,
  policyDown = false,
  actorRole = 'owner',
}: { exists?: boolean; current?: MemberRole; owners?: number; policyDown?: boolean; actorRole?: MemberRole | null } = {}) {
  const steps: string[] = [];
  const announced: [string, TenantChange][] = [];
  const store: MembershipStore = {
    async describe() {
      return { tenant: exists ? { id: tenantId, name: 'Acme', status: 'active' } : undefined, role: current, owners };
    },
    async find(tid, uid) {
      const role = uid === actor ? (actorRole ?? undefined) : current;
      return role ? { tenantId: tid, tenantName: 'Acme', userId: uid, role } : undefined;
    },
    async upsert(tid, uid, role) {
      steps.push(`upsert ${role}`);
      return { tenantId: tid, tenantName: 'Acme', userId: uid, role };
    },
  };
  const policy = {
    async assignRole(grant: Grant) {
      if (policyDown) throw new AppError('DEPENDENCY_UNAVAILABLE', 'policy unavailable');
      steps.push(`assign ${Role[grant.role]}`);
    },
    async revokeRole(grant: Grant) {
      steps.push(`revoke ${Role[grant.role]}`);
    },
  };
  const listed: MembershipRecord[] = [{ tenantId, tenantName: 'Acme', userId: user, role: 'user' }];
  const library = createMembershipLibrary({
    store,
    lookups: { tenantsOfUser: async () => listed },
    policy,
    announce: (id, change) => announced.push([id, change]),
  });
  return { library, steps, announced };
}

describe('membership library', () => {
  it('assigns the role in policy before storing the membership', async () => {
    const { library, steps, announced } = setup();
    const membership = await library.addMember({ tenantId, userId: user, role: Role.ADMIN, actorUserId: actor });
    expect(membership).toEqual({ tenantId, tenantName: 'Acme', userId: user, role: 'admin' });
    expect(steps).toEqual(['assign ADMIN', 'upsert admin']);
    expect(announced).toEqual([[tenantId, 'member.changed']]);
  });

  it('withdraws a replaced role in policy before storing the new one', async () => {
    const { library, steps } = setup({ current: 'admin' });
    await library.addMember({ tenantId, userId: user, role: Role.USER, actorUserId: actor });
    expect(steps).toEqual(['assign USER', 'revoke ADMIN', 'upsert user']);
  });

  it('stores nothing when the policy service is down', async () => {
    const { library, steps, announced } = setup({ policyDown: true });
    await expect(library.addMember({ tenantId, userId: user, role: Role.USER, actorUserId: actor })).rejects.toMatchObject({
      code: 'DEPENDENCY_UNAVAILABLE',
    });
    expect(steps).toEqual([]);
    expect(announced).toEqual([]);
  });

  it('requires a role', async () => {
    const { library, steps } = setup();
    await expect(library.addMember({ tenantId, userId: user, role: Role.UNSPECIFIED, actorUserId: actor })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'role' },
    });
    // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment -- a peer may send a role number this build does not know
    const unknownRole = 42 as Role;
    await expect(library.addMember({ tenantId, userId: user, role: unknownRole, actorUserId: actor })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(steps).toEqual([]);
  });

  it('refuses a tenant that does not exist without touching policy', async () => {
    const { library, steps } = setup({ exists: false });
    await expect(library.addMember({ tenantId, userId: user, role: Role.USER, actorUserId: actor })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    expect(steps).toEqual([]);
  });

  it('lets an admin add users but never grant, change or remove admin and owner roles', async () => {
    const asAdmin = (current?: MemberRole) => setup({ actorRole: 'admin', ...(current ? { current } : {}) });
    await expect(asAdmin().library.addMember({ tenantId, userId: user, role: Role.USER, actorUserId: actor })).resolves.toMatchObject({
      role: 'user',
    });
    for (const [current, role] of [
      [undefined, Role.ADMIN],
      [undefined, Role.OWNER],
      ['user', Role.ADMIN],
      ['admin', Role.USER],
      ['owner', Role.USER],
    ] as const) {
      const { library, steps } = asAdmin(current);
      await expect(library.addMember({ tenantId, userId: user, role, actorUserId: actor })).rejects.toMatchObject({
        code: 'PERMISSION_DENIED',
      });
      expect(steps).toEqual([]);
    }
  });

  it('refuses membership changes by users and by non-members', async () => {
    for (const actorRole of ['user', null] as const) {
      const { library, steps } = setup({ actorRole });
      await expect(library.addMember({ tenantId, userId: user, role: Role.USER, actorUserId: actor })).rejects.toMatchObject({
        code: 'PERMISSION_DENIED',
      });
      expect(steps).toEqual([]);
    }
  });

  it('never demotes the last owner', async () => {
    const { library, steps } = setup({ current: 'owner', owners: 1 });
    await expect(library.addMember({ tenantId, userId: user, role: Role.ADMIN, actorUserId: actor })).rejects.toMatchObject({
      code: 'FAILED_PRECONDITION',
    });
    expect(steps).toEqual([]);
    const other = setup({ current: 'owner', owners: 2 });
    await expect(other.library.addMember({ tenantId, userId: user, role: Role.ADMIN, actorUserId: actor })).resolves.toMatchObject({
      role: 'admin',
    });
  });

  it('answers NOT_FOUND for an absent membership and validates ids', async () => {
    const { library } = setup();
    await expect(library.getMembership({ tenantId, userId: user })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(library.getMembership({ tenantId: 'x', userId: user })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(library.listUserTenants({ userId: 'x' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(library.listUserTenants({ userId: user.toUpperCase() })).resolves.toHaveLength(1);
  });
});
