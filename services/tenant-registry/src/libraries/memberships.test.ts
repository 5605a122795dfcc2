import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from '@jest/globals';
import { AppError, type AuditEventInit } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind, PrincipalSchema, Role, type Principal } from '@portcullis/proto/common';
import { createMembershipLibrary, type MembershipStore } from './memberships.js';
import type { MembershipRecord, TenantChange } from './records.js';
import type { MemberRole } from './roles.js';

const tenantId = '22222222-2222-4222-8222-222222222222';
const user = '44444444-4444-4444-8444-444444444444';
const actor = '55555555-5555-4555-8555-555555555555';
const memberSince = new Date('2026-11-01T00:00:00Z');
/** The verified principal making the change, as the gRPC layer passes it on. */
const principal = create(PrincipalSchema, { kind: PrincipalKind.USER, id: actor, tenantId, role: Role.OWNER });

type Grant = { tenantId: string; userId: string; role: Role; actor?: Principal };

function setup({
  exists = true,
  current,
  owners = 1,
  policyDown = false,
  actorRole = 'owner',
  removal = 'deletes',
  readdedAs = 'user',
  auditFails = false,
}: {
  exists?: boolean;
  current?: MemberRole;
  owners?: number;
  policyDown?: boolean;
  actorRole?: MemberRole | null;
  /**
   * What the store's delete does: deletes; fails; finds the membership gone; finds its role
   * changed to admin; deletes, and the person is added again (as a user) right after.
   */
  removal?: 'deletes' | 'fails' | 'gone' | 'changed' | 'readded';
  /** The role the person has when added again (removal 'readded'). */
  readdedAs?: MemberRole;
  /** The audit trail refuses every event. */
  auditFails?: boolean;
} = {}) {
  const steps: string[] = [];
  /** The actor of every policy call, in order. */
  const actors: (Principal | undefined)[] = [];
  let target = current;
  const announced: [string, TenantChange][] = [];
  const events: AuditEventInit[] = [];
  const store: MembershipStore = {
    async describe() {
      return { tenant: exists ? { id: tenantId, name: 'Acme', status: 'active', plan: 'free' } : undefined, role: target, owners };
    },
    async find(tid, uid) {
      const role = uid === actor ? (actorRole ?? undefined) : target;
      return role ? { tenantId: tid, tenantName: 'Acme', userId: uid, role, memberSince } : undefined;
    },
    async upsert(tid, uid, role) {
      steps.push(`upsert ${role}`);
      return { tenantId: tid, tenantName: 'Acme', userId: uid, role, memberSince };
    },
    async remove(_tid, uid, role) {
      if (removal === 'fails') throw new AppError('INTERNAL', 'database down');
      if (removal === 'gone') target = undefined;
      if (removal === 'changed') target = 'admin';
      if ((removal !== 'deletes' && removal !== 'readded') || uid !== user || role !== target) return false;
      steps.push(`remove ${role}`);
      target = removal === 'readded' ? readdedAs : undefined;
      return true;
    },
  };
  const policy = {
    async assignRole(grant: Grant) {
      if (policyDown) throw new AppError('DEPENDENCY_UNAVAILABLE', 'policy unavailable');
      steps.push(`assign ${Role[grant.role]}`);
      actors.push(grant.actor);
    },
    async revokeRole(grant: Grant) {
      if (policyDown) throw new AppError('DEPENDENCY_UNAVAILABLE', 'policy unavailable');
      steps.push(`revoke ${Role[grant.role]}`);
      actors.push(grant.actor);
    },
  };
  const listed: MembershipRecord[] = [{ tenantId, tenantName: 'Acme', userId: user, role: 'user', memberSince }];
  const library = createMembershipLibrary({
    store,
    lookups: { tenantsOfUser: async () => listed },
    policy,
    announce: (id, change) => announced.push([id, change]),
    audit: {
      async publish(event) {
        if (auditFails) throw new AppError('DEPENDENCY_UNAVAILABLE', 'the change was made, but the audit trail did not store its record');
        events.push(event);
        return 'event-id';
      },
    },
  });
  return { library, steps, announced, actors, events };
}

/** A membership event as the library records it, by the actor of these tests. */
const memberEvent = (kind: string, action: string, attributes: Record<string, string>) => ({
  tenantId,
  kind,
  principal,
  object: 'members',
  action,
  outcome: Outcome.SUCCESS,
  attributes,
});

describe('membership library', () => {
  it('assigns the role in policy, as the actor, before storing the membership', async () => {
    const { library, steps, announced, actors } = setup();
    const membership = await library.addMember({ tenantId, userId: user, role: Role.ADMIN, actor: principal });
    expect(membership).toEqual({ tenantId, tenantName: 'Acme', userId: user, role: 'admin', memberSince });
    expect(steps).toEqual(['assign ADMIN', 'upsert admin']);
    expect(actors).toEqual([principal]);
    expect(announced).toEqual([[tenantId, 'member.changed']]);
  });

  it('withdraws a replaced role in policy before storing the new one, both calls carrying the actor', async () => {
    const { library, steps, actors } = setup({ current: 'admin' });
    await library.addMember({ tenantId, userId: user, role: Role.USER, actor: principal });
    expect(steps).toEqual(['assign USER', 'revoke ADMIN', 'upsert user']);
    expect(actors).toEqual([principal, principal]);
  });

  it('records an added member, and a changed role with the role it replaced, by the actor', async () => {
    const added = setup();
    await added.library.addMember({ tenantId, userId: user, role: Role.ADMIN, actor: principal });
    expect(added.events).toEqual([memberEvent('member.added', 'add', { user_id: user, role: 'admin' })]);

    const changed = setup({ current: 'admin' });
    await changed.library.addMember({ tenantId, userId: user, role: Role.USER, actor: principal });
    expect(changed.events).toEqual([
      memberEvent('member.role_changed', 'change_role', { user_id: user, role: 'user', previous_role: 'admin' }),
    ]);

    // The role they already hold: nothing changed, nothing recorded.
    const same = setup({ current: 'user' });
    await same.library.addMember({ tenantId, userId: user, role: Role.USER, actor: principal });
    expect(same.events).toEqual([]);
  });

  it('keeps a stored membership whose record was not stored, and says so (DEPENDENCY_UNAVAILABLE)', async () => {
    const { library, steps } = setup({ auditFails: true });
    await expect(library.addMember({ tenantId, userId: user, role: Role.USER, actor: principal })).rejects.toMatchObject({
      code: 'DEPENDENCY_UNAVAILABLE',
    });
    expect(steps).toEqual(['assign USER', 'upsert user']);
  });

  it('stores nothing when the policy service is down', async () => {
    const { library, steps, announced } = setup({ policyDown: true });
    await expect(library.addMember({ tenantId, userId: user, role: Role.USER, actor: principal })).rejects.toMatchObject({
      code: 'DEPENDENCY_UNAVAILABLE',
    });
    expect(steps).toEqual([]);
    expect(announced).toEqual([]);
  });

  it('requires a role', async () => {
    const { library, steps } = setup();
    await expect(library.addMember({ tenantId, userId: user, role: Role.UNSPECIFIED, actor: principal })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'role' },
    });
    // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment -- a peer may send a role number this build does not know
    const unknownRole = 42 as Role;
    await expect(library.addMember({ tenantId, userId: user, role: unknownRole, actor: principal })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(steps).toEqual([]);
  });

  it('refuses a tenant that does not exist without touching policy', async () => {
    const { library, steps } = setup({ exists: false });
    await expect(library.addMember({ tenantId, userId: user, role: Role.USER, actor: principal })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    expect(steps).toEqual([]);
  });

  it('lets an admin add users but never grant, change or remove admin and owner roles', async () => {
    const asAdmin = (current?: MemberRole) => setup({ actorRole: 'admin', ...(current ? { current } : {}) });
    await expect(asAdmin().library.addMember({ tenantId, userId: user, role: Role.USER, actor: principal })).resolves.toMatchObject({
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
      await expect(library.addMember({ tenantId, userId: user, role, actor: principal })).rejects.toMatchObject({
        code: 'PERMISSION_DENIED',
      });
      expect(steps).toEqual([]);
    }
  });

  it('refuses membership changes by users and by non-members', async () => {
    for (const actorRole of ['user', null] as const) {
      const { library, steps } = setup({ actorRole });
      await expect(library.addMember({ tenantId, userId: user, role: Role.USER, actor: principal })).rejects.toMatchObject({
        code: 'PERMISSION_DENIED',
      });
      expect(steps).toEqual([]);
    }
  });

  it('never demotes the last owner', async () => {
    const { library, steps } = setup({ current: 'owner', owners: 1 });
    await expect(library.addMember({ tenantId, userId: user, role: Role.ADMIN, actor: principal })).rejects.toMatchObject({
      code: 'FAILED_PRECONDITION',
    });
    expect(steps).toEqual([]);
    const other = setup({ current: 'owner', owners: 2 });
    await expect(other.library.addMember({ tenantId, userId: user, role: Role.ADMIN, actor: principal })).resolves.toMatchObject({
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

describe('removing a member', () => {
  const remove = (library: ReturnType<typeof setup>['library'], input: Partial<{ tenantId: string; userId: string }> = {}) =>
    library.removeMember({ tenantId, userId: user, actor: principal, ...input });

  it('revokes the role in policy before deleting the membership, then announces it', async () => {
    for (const [actorRole, current] of [
      ['owner', 'admin'],
      ['owner', 'user'],
      ['admin', 'user'],
    ] as const) {
      const { library, steps, announced, actors } = setup({ actorRole, current });
      await expect(remove(library)).resolves.toBeUndefined();
      expect(actors).toEqual([principal, principal]);
      expect({ actorRole, steps }).toEqual({
        actorRole,
        // Revoked again after the delete: a concurrent add may have granted it in between.
        steps: [`revoke ${current.toUpperCase()}`, `remove ${current}`, `revoke ${current.toUpperCase()}`],
      });
      expect(announced).toEqual([[tenantId, 'member.changed']]);
    }
  });

  it('records the removal, with the role the member held, after it is stored; a refused removal records nothing', async () => {
    const { library, events } = setup({ current: 'admin' });
    await remove(library);
    expect(events).toEqual([memberEvent('member.removed', 'remove', { user_id: user, role: 'admin' })]);
    const refused = setup({ actorRole: 'admin', current: 'admin' });
    await expect(remove(refused.library)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(refused.events).toEqual([]);
  });

  it('gives the role back, as the actor, when the person was added again with it right after the delete', async () => {
    const { library, steps, actors } = setup({ actorRole: 'owner', current: 'admin', removal: 'readded', readdedAs: 'admin' });
    await remove(library);
    expect(steps).toEqual(['revoke ADMIN', 'remove admin', 'revoke ADMIN', 'assign ADMIN']);
    expect(actors).toEqual([principal, principal, principal]);
  });

  it('leaves alone a different role the concurrent add granted itself', async () => {
    // An owner re-added the person as an admin meanwhile; the admin removing a user never grants admin.
    const { library, steps } = setup({ actorRole: 'admin', current: 'user', removal: 'readded', readdedAs: 'admin' });
    await remove(library);
    expect(steps).toEqual(['revoke USER', 'remove user', 'revoke USER']);
  });

  it('never lets an admin remove an admin or an owner', async () => {
    for (const current of ['admin', 'owner'] as const) {
      const { library, steps, announced } = setup({ actorRole: 'admin', current });
      await expect(remove(library)).rejects.toMatchObject({
        code: 'PERMISSION_DENIED',
        message: expect.stringMatching(/admins may only remove users/),
      });
      expect(steps).toEqual([]);
      expect(announced).toEqual([]);
    }
  });

  it('never removes an owner, not even for another owner', async () => {
    const { library, steps } = setup({ actorRole: 'owner', current: 'owner', owners: 2 });
    await expect(remove(library)).rejects.toMatchObject({
      code: 'FAILED_PRECONDITION',
      message: expect.stringMatching(/owner cannot be removed/),
    });
    expect(steps).toEqual([]);
  });

  it('refuses users and non-members before saying whether the membership exists', async () => {
    for (const actorRole of ['user', null] as const) {
      for (const current of ['user', undefined] as const) {
        const { library, steps } = setup({ actorRole, ...(current ? { current } : {}) });
        await expect(remove(library)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
        expect(steps).toEqual([]);
      }
    }
  });

  it('answers NOT_FOUND for someone who is not a member (a second removal), and for a missing tenant', async () => {
    const { library, steps, announced } = setup({ current: 'user' });
    await remove(library);
    await expect(remove(library)).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'membership not found' });
    expect(steps).toEqual(['revoke USER', 'remove user', 'revoke USER']);
    expect(announced).toHaveLength(1);
    const missing = setup({ exists: false, current: 'user' });
    await expect(remove(missing.library)).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'tenant not found' });
    expect(missing.steps).toEqual([]);
  });

  it('keeps the membership when the policy service is down', async () => {
    const { library, steps, announced } = setup({ current: 'user', policyDown: true });
    await expect(remove(library)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(steps).toEqual([]);
    expect(announced).toEqual([]);
    await expect(library.getMembership({ tenantId, userId: user })).resolves.toMatchObject({ role: 'user' });
  });

  it('gives the role back, as the actor, when the membership cannot be deleted', async () => {
    const { library, steps, announced, actors } = setup({ current: 'admin', removal: 'fails' });
    await expect(remove(library)).rejects.toMatchObject({ code: 'INTERNAL' });
    expect(steps).toEqual(['revoke ADMIN', 'assign ADMIN']);
    expect(actors).toEqual([principal, principal]);
    expect(announced).toEqual([]);
  });

  it('reports a membership removed or changed by someone else meanwhile', async () => {
    const gone = setup({ current: 'user', removal: 'gone' });
    await expect(remove(gone.library)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(gone.announced).toEqual([]);
    const changed = setup({ current: 'user', removal: 'changed' });
    await expect(remove(changed.library)).rejects.toMatchObject({
      code: 'FAILED_PRECONDITION',
      message: expect.stringMatching(/try again/),
    });
    // The concurrent change granted its own role; only the old one was revoked here.
    expect(changed.steps).toEqual(['revoke USER']);
  });

  it('validates every id', async () => {
    const { library, steps } = setup({ current: 'user' });
    for (const [input, field] of [
      [{ tenantId: 'x' }, 'tenant_id'],
      [{ userId: 'not-a-uuid' }, 'user_id'],
    ] as const) {
      await expect(remove(library, input)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field } });
    }
    await expect(library.removeMember({ tenantId, userId: user, actor: { ...principal, id: '' } })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'actor.id' },
    });
    expect(steps).toEqual([]);
  });
});
