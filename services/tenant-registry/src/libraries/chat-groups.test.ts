import { describe, expect, it } from '@jest/globals';
import { AppError } from '@portcullis/kit';
import { createChatGroupLibrary, type ChatGroupStore } from './chat-groups.js';
import type { ChatGroupRecord, TenantChange } from './records.js';

const tenantId = '22222222-2222-4222-8222-222222222222';
const assistantId = '33333333-3333-4333-8333-333333333333';
const groupId = '88888888-8888-4888-8888-888888888888';
const member = '44444444-4444-4444-8444-444444444444';
const stranger = '55555555-5555-4555-8555-555555555555';
const owner = '66666666-6666-4666-8666-666666666666';
const admin = '77777777-7777-4777-8777-777777777777';
const otherGroup = '99999999-9999-4999-8999-999999999999';

/** An in-memory store with one assistant, one group and the tenant's members, enforcing what the SQL enforces. */
function setup() {
  const rows = new Set<string>();
  const announced: [string, TenantChange][] = [];
  const groups: ChatGroupRecord[] = [{ id: groupId, tenantId, assistantId, name: 'Ops' }];
  const roles = new Map<string, 'owner' | 'admin' | 'user'>([
    [owner, 'owner'],
    [admin, 'admin'],
    [member, 'user'],
  ]);
  const store: ChatGroupStore = {
    async insertChatGroup(tid, assistant, name) {
      if (tid !== tenantId || assistant !== assistantId) throw new AppError('NOT_FOUND', 'assistant not found');
      if (groups.some((g) => g.assistantId === assistant && g.name === name)) throw new AppError('ALREADY_EXISTS', 'taken');
      const group = { id: otherGroup, tenantId: tid, assistantId: assistant, name };
      groups.push(group);
      return group;
    },
    async listChatGroups(tid, assistant) {
      if (tid !== tenantId || assistant !== assistantId) throw new AppError('NOT_FOUND', 'assistant not found');
      return groups.filter((g) => g.assistantId === assistant).sort((a, b) => a.name.localeCompare(b.name));
    },
    async insertChatGroupMember(tid, group, user) {
      if (tid !== tenantId || !groups.some((g) => g.id === group)) throw new AppError('NOT_FOUND', 'chat group not found');
      if (!roles.has(user)) throw new AppError('FAILED_PRECONDITION', 'the user is not a member of this tenant');
      const key = `${group}/${user}`;
      if (rows.has(key)) return false;
      rows.add(key);
      return true;
    },
    async deleteChatGroupMember(_tid, group, user) {
      return rows.delete(`${group}/${user}`);
    },
    async listChatGroupMembers(tid, group) {
      if (tid !== tenantId || !groups.some((g) => g.id === group)) throw new AppError('NOT_FOUND', 'chat group not found');
      return [...rows].filter((key) => key.startsWith(`${group}/`)).map((key) => key.slice(group.length + 1));
    },
  };
  const members = {
    async find(tid: string, user: string) {
      const role = tid === tenantId ? roles.get(user) : undefined;
      return role && { tenantId: tid, tenantName: 'Acme', userId: user, role, memberSince: new Date(0) };
    },
  };
  const library = createChatGroupLibrary({ store, members, announce: (id, change) => announced.push([id, change]) });
  return { library, rows, groups, announced };
}

describe('chat group library', () => {
  it('creates a chat group (trimmed name) for an owner or admin, announcing it', async () => {
    const { library, announced } = setup();
    await expect(library.createChatGroup({ tenantId, assistantId, name: '  Support ', actorUserId: owner })).resolves.toEqual({
      id: otherGroup,
      tenantId,
      assistantId,
      name: 'Support',
    });
    expect(announced).toEqual([[tenantId, 'chat-group.created']]);
    await expect(library.listChatGroups({ tenantId, assistantId: assistantId.toUpperCase() })).resolves.toEqual([
      { id: groupId, tenantId, assistantId, name: 'Ops' },
      { id: otherGroup, tenantId, assistantId, name: 'Support' },
    ]);
  });

  it('lets only owners and admins, by their stored role, create groups and change members', async () => {
    const { library, rows, groups, announced } = setup();
    for (const actorUserId of [member, stranger]) {
      await expect(library.createChatGroup({ tenantId, assistantId, name: 'X', actorUserId })).rejects.toMatchObject({
        code: 'PERMISSION_DENIED',
        message: 'only owners and admins may create chat groups',
      });
      await expect(library.addChatGroupMember({ tenantId, chatGroupId: groupId, userId: member, actorUserId })).rejects.toMatchObject({
        code: 'PERMISSION_DENIED',
        message: 'only owners and admins may change chat group members',
      });
    }
    expect(groups).toHaveLength(1);
    expect(rows.size).toBe(0);
    await library.addChatGroupMember({ tenantId, chatGroupId: groupId, userId: member, actorUserId: admin });
    await expect(
      library.removeChatGroupMember({ tenantId, chatGroupId: groupId, userId: member, actorUserId: member }),
    ).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
    });
    expect(rows.size).toBe(1);
    expect(announced).toEqual([[tenantId, 'chat-group.members.changed']]);
  });

  it('adds a tenant member once, announcing only a real change, and lists them', async () => {
    const { library, announced } = setup();
    await library.addChatGroupMember({ tenantId, chatGroupId: groupId, userId: member, actorUserId: admin });
    await library.addChatGroupMember({ tenantId, chatGroupId: groupId.toUpperCase(), userId: member, actorUserId: admin });
    await expect(library.listChatGroupMembers({ tenantId, chatGroupId: groupId })).resolves.toEqual([member]);
    expect(announced).toEqual([[tenantId, 'chat-group.members.changed']]);
  });

  it('passes on NOT_FOUND, ALREADY_EXISTS and FAILED_PRECONDITION from the store without announcing', async () => {
    const { library, announced } = setup();
    await expect(library.createChatGroup({ tenantId, assistantId: stranger, name: 'X', actorUserId: owner })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(library.createChatGroup({ tenantId, assistantId, name: 'Ops', actorUserId: owner })).rejects.toMatchObject({
      code: 'ALREADY_EXISTS',
    });
    await expect(
      library.addChatGroupMember({ tenantId, chatGroupId: otherGroup, userId: member, actorUserId: admin }),
    ).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(
      library.addChatGroupMember({ tenantId, chatGroupId: groupId, userId: stranger, actorUserId: admin }),
    ).rejects.toMatchObject({
      code: 'FAILED_PRECONDITION',
    });
    expect(announced).toEqual([]);
  });

  it('removes a member, and answers NOT_FOUND when they are not in the group', async () => {
    const { library, rows, announced } = setup();
    await library.addChatGroupMember({ tenantId, chatGroupId: groupId, userId: member, actorUserId: admin });
    await library.removeChatGroupMember({ tenantId, chatGroupId: groupId, userId: member, actorUserId: owner });
    expect(rows.size).toBe(0);
    await expect(
      library.removeChatGroupMember({ tenantId, chatGroupId: groupId, userId: member, actorUserId: owner }),
    ).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: 'the user is not a member of this chat group',
    });
    expect(announced).toEqual([
      [tenantId, 'chat-group.members.changed'],
      [tenantId, 'chat-group.members.changed'],
    ]);
  });

  it.each([
    ['createChatGroup', { tenantId: 'x', assistantId, name: 'A', actorUserId: owner }, 'tenant_id'],
    ['createChatGroup', { tenantId, assistantId: '', name: 'A', actorUserId: owner }, 'assistant_id'],
    ['createChatGroup', { tenantId, assistantId, name: '  ', actorUserId: owner }, 'name'],
    ['createChatGroup', { tenantId, assistantId, name: 'a'.repeat(101), actorUserId: owner }, 'name'],
    ['createChatGroup', { tenantId, assistantId, name: 'A', actorUserId: 'me' }, 'actor.id'],
    ['listChatGroups', { tenantId, assistantId: 'x' }, 'assistant_id'],
    ['addChatGroupMember', { tenantId, chatGroupId: 'x', userId: member, actorUserId: admin }, 'chat_group_id'],
    ['addChatGroupMember', { tenantId, chatGroupId: groupId, userId: 'nobody', actorUserId: admin }, 'user_id'],
    ['removeChatGroupMember', { tenantId, chatGroupId: groupId, userId: '', actorUserId: admin }, 'user_id'],
    ['listChatGroupMembers', { tenantId: '', chatGroupId: groupId }, 'tenant_id'],
  ] as const)('%s rejects malformed input (%o)', async (method, input, field) => {
    const { library, rows, groups } = setup();
    const call = library[method] as (input: object) => Promise<unknown>;
    await expect(call(input)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field } });
    expect(rows.size).toBe(0);
    expect(groups).toHaveLength(1);
  });
});
