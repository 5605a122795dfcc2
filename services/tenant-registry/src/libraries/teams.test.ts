import { describe, expect, it } from '@jest/globals';
import { AppError, type AuditEventInit } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind } from '@portcullis/proto/common';
import type { TeamRecord, TenantChange } from './records.js';
import { createTeamLibrary, type TeamStore } from './teams.js';

const tenantId = '22222222-2222-4222-8222-222222222222';
const teamId = '33333333-3333-4333-8333-333333333333';
const member = '44444444-4444-4444-8444-444444444444';
const stranger = '55555555-5555-4555-8555-555555555555';
const admin = '77777777-7777-4777-8777-777777777777';

/** An in-memory store with one team and one tenant member, enforcing what the SQL enforces. */
function setup() {
  const rows = new Set<string>();
  const announced: [string, TenantChange][] = [];
  const teams: TeamRecord[] = [{ id: teamId, tenantId, name: 'Ops' }];
  const store: TeamStore = {
    async insertTeamMember(tid, team, user) {
      if (tid !== tenantId || team !== teamId) throw new AppError('NOT_FOUND', 'team not found');
      if (user !== member) throw new AppError('FAILED_PRECONDITION', 'the user is not a member of this tenant');
      const key = `${team}/${user}`;
      if (rows.has(key)) return false;
      rows.add(key);
      return true;
    },
    async deleteTeamMember(_tid, team, user) {
      return rows.delete(`${team}/${user}`);
    },
    async listTeams(tid) {
      return teams.filter((team) => team.tenantId === tid);
    },
    async listTeamsOfUser(tid, user) {
      return teams.filter((team) => team.tenantId === tid && rows.has(`${team.id}/${user}`));
    },
  };
  const roles = new Map<string, 'owner' | 'admin' | 'user'>([
    [admin, 'admin'],
    [member, 'user'],
  ]);
  const members = {
    async find(tid: string, user: string) {
      const role = tid === tenantId ? roles.get(user) : undefined;
      return role && { tenantId: tid, tenantName: 'Acme', userId: user, role, memberSince: new Date(0) };
    },
  };
  const events: AuditEventInit[] = [];
  const library = createTeamLibrary({
    store,
    members,
    announce: (id, change) => announced.push([id, change]),
    audit: {
      async publish(event) {
        events.push(event);
        return 'event-id';
      },
    },
  });
  return { library, rows, announced, events };
}

describe('team library', () => {
  it('lets only owners and admins, by their stored role, change team members', async () => {
    const { library, rows } = setup();
    await expect(library.addTeamMember({ tenantId, teamId, userId: member, actorUserId: member })).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
    });
    await expect(library.addTeamMember({ tenantId, teamId, userId: member, actorUserId: stranger })).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
    });
    expect(rows.size).toBe(0);
    await library.addTeamMember({ tenantId, teamId, userId: member, actorUserId: admin });
    await expect(library.removeTeamMember({ tenantId, teamId, userId: member, actorUserId: member })).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
    });
    expect(rows.size).toBe(1);
  });

  it('adds a tenant member to a team once, announcing only a real change', async () => {
    const { library, rows, announced } = setup();
    await library.addTeamMember({ tenantId, teamId, userId: member, actorUserId: admin });
    await library.addTeamMember({ tenantId, teamId: teamId.toUpperCase(), userId: member, actorUserId: admin });
    expect([...rows]).toEqual([`${teamId}/${member}`]);
    expect(announced).toEqual([[tenantId, 'team.members.changed']]);
    await expect(library.listUserTeams({ tenantId, userId: member })).resolves.toEqual([{ id: teamId, tenantId, name: 'Ops' }]);
  });

  it('passes on NOT_FOUND for a team that is not the tenant’s and FAILED_PRECONDITION for a non-member', async () => {
    const { library, announced } = setup();
    await expect(
      library.addTeamMember({ tenantId, teamId: '66666666-6666-4666-8666-666666666666', userId: member, actorUserId: admin }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(library.addTeamMember({ tenantId, teamId, userId: stranger, actorUserId: admin })).rejects.toMatchObject({
      code: 'FAILED_PRECONDITION',
    });
    expect(announced).toEqual([]);
  });

  it('removes a team member, and answers NOT_FOUND when they are not in the team', async () => {
    const { library, rows, announced } = setup();
    await library.addTeamMember({ tenantId, teamId, userId: member, actorUserId: admin });
    await library.removeTeamMember({ tenantId, teamId, userId: member, actorUserId: admin });
    expect(rows.size).toBe(0);
    await expect(library.removeTeamMember({ tenantId, teamId, userId: member, actorUserId: admin })).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: 'the user is not a member of this team',
    });
    expect(announced).toEqual([
      [tenantId, 'team.members.changed'],
      [tenantId, 'team.members.changed'],
    ]);
    await expect(library.listUserTeams({ tenantId, userId: member })).resolves.toEqual([]);
  });

  it('records each real change of a team’s members by the acting person; a repeated add records nothing', async () => {
    const { library, events } = setup();
    await library.addTeamMember({ tenantId, teamId, userId: member, actorUserId: admin });
    await library.addTeamMember({ tenantId, teamId, userId: member, actorUserId: admin });
    await library.removeTeamMember({ tenantId, teamId, userId: member, actorUserId: admin });
    await expect(library.removeTeamMember({ tenantId, teamId, userId: member, actorUserId: admin })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    const event = (kind: string, action: string) => ({
      tenantId,
      kind,
      principal: { kind: PrincipalKind.USER, id: admin, tenantId },
      object: 'teams',
      action,
      outcome: Outcome.SUCCESS,
      attributes: { team_id: teamId, user_id: member },
    });
    expect(events).toEqual([event('team.member_added', 'add_member'), event('team.member_removed', 'remove_member')]);
  });

  it.each([
    ['addTeamMember', { tenantId: 'x', teamId, userId: member }, 'tenant_id'],
    ['addTeamMember', { tenantId, teamId: '', userId: member }, 'team_id'],
    ['addTeamMember', { tenantId, teamId, userId: 'nobody' }, 'user_id'],
    ['removeTeamMember', { tenantId, teamId: 'x', userId: member }, 'team_id'],
    ['removeTeamMember', { tenantId, teamId, userId: '' }, 'user_id'],
    ['listUserTeams', { tenantId, userId: 'x' }, 'user_id'],
    ['listTeams', { tenantId: '' }, 'tenant_id'],
  ] as const)('%s rejects a malformed id (%o)', async (method, input, field) => {
    const { library, rows } = setup();
    const call = library[method] as (input: object) => Promise<unknown>;
    await expect(call(input)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field } });
    expect(rows.size).toBe(0);
  });
});
