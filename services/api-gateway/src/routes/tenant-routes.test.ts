import { describe, expect, it } from '@jest/globals';
import { PrincipalKind, Role } from '@portcullis/proto/common';
import type { ProtectedRoute } from '../http/route.js';
import type { AuthorizedContext } from '../pipeline/index.js';
import { createTenantRoutes, type TenantRouteDeps } from './tenant-routes.js';

const tenantId = '00000000-0000-4000-8000-00000000000a';
const teamId = '00000000-0000-4000-8000-0000000000e1';
const userId = '00000000-0000-4000-8000-0000000000f2';
const assistantId = '00000000-0000-4000-8000-0000000000b1';
const chatGroupId = '00000000-0000-4000-8000-0000000000c1';
const principal = { kind: PrincipalKind.USER, id: '00000000-0000-4000-8000-0000000000f1', tenantId, role: Role.ADMIN };

/** The routes over a fake registry client that records every call. */
function setup() {
  const calls: [string, unknown][] = [];
  const record = (method: string) => (request: unknown) => {
    calls.push([method, request]);
    return Promise.resolve({});
  };
  const tenants = {
    removeMember: record('removeMember'),
    addTeamMember: record('addTeamMember'),
    removeTeamMember: record('removeTeamMember'),
    addChatGroupMember: record('addChatGroupMember'),
    removeChatGroupMember: record('removeChatGroupMember'),
    createChatGroup(request: { name: string }) {
      calls.push(['createChatGroup', request]);
      return Promise.resolve({ chatGroup: { id: chatGroupId, tenantId, assistantId, name: request.name } });
    },
    listChatGroups(request: unknown) {
      calls.push(['listChatGroups', request]);
      return Promise.resolve({
        chatGroups: [
          { id: chatGroupId, tenantId, assistantId, name: 'Alpha' },
          { id: '00000000-0000-4000-8000-0000000000c2', tenantId, assistantId, name: 'Zeta' },
        ],
      });
    },
    listChatGroupMembers(request: unknown) {
      calls.push(['listChatGroupMembers', request]);
      return Promise.resolve({ userIds: [userId] });
    },
    listTeams(request: unknown) {
      calls.push(['listTeams', request]);
      return Promise.resolve({
        teams: [
          { id: teamId, tenantId, name: 'Alpha' },
          { id: '00000000-0000-4000-8000-0000000000e2', tenantId, name: 'Zeta' },
        ],
      });
    },
  } as unknown as TenantRouteDeps['tenants'];
  const routes = createTenantRoutes({ tenants });
  const route = (method: string, path: string): ProtectedRoute => {
    const found = routes.find((r) => r.method === method && r.path === path);
    if (!found) throw new Error(`no route ${method} ${path}`);
    return found;
  };
  // Only the pipeline can make this context; the handlers read request, target and principal.
  const context = {
    request: { requestId: 'req-1' },
    target: { tenantId, tenantName: 'Alpha', assistantId: '' },
    principal,
  } as unknown as AuthorizedContext;
  const run = (method: string, path: string, input: { body?: unknown; params?: Record<string, string> } = {}) =>
    route(method, path).handle(context, { body: input.body, params: input.params ?? {}, query: {} });
  return { calls, route, run };
}

describe('team and member routes', () => {
  it('declares the capability each route needs', () => {
    const { route } = setup();
    expect(route('delete', '/api/members/:userId')).toMatchObject({
      capability: { object: 'members', action: 'manage' },
      humansOnly: true,
    });
    expect(route('get', '/api/teams').capability).toEqual({ object: 'tenant', action: 'read' });
    expect(route('post', '/api/teams/:teamId/members').capability).toEqual({ object: 'teams', action: 'manage' });
    expect(route('delete', '/api/teams/:teamId/members/:userId').capability).toEqual({ object: 'teams', action: 'manage' });
  });

  it("removes a member as the request's principal, within the resolved tenant", async () => {
    const { calls, run } = setup();
    await expect(run('delete', '/api/members/:userId', { params: { userId } })).resolves.toEqual({ status: 204, body: null });
    expect(calls).toEqual([['removeMember', { tenantId, userId, actor: principal }]]);
  });

  it('lists teams as {teamId, name}', async () => {
    const { run } = setup();
    await expect(run('get', '/api/teams')).resolves.toEqual({
      body: {
        teams: [
          { teamId, name: 'Alpha' },
          { teamId: '00000000-0000-4000-8000-0000000000e2', name: 'Zeta' },
        ],
      },
    });
  });

  it('adds and removes team members', async () => {
    const { calls, run } = setup();
    await expect(run('post', '/api/teams/:teamId/members', { params: { teamId }, body: { userId } })).resolves.toEqual({
      status: 204,
      body: null,
    });
    await expect(run('delete', '/api/teams/:teamId/members/:userId', { params: { teamId, userId } })).resolves.toEqual({
      status: 204,
      body: null,
    });
    expect(calls).toEqual([
      ['addTeamMember', { tenantId, teamId, userId, actor: principal }],
      ['removeTeamMember', { tenantId, teamId, userId, actor: principal }],
    ]);
  });

  it('rejects malformed ids before calling the registry', async () => {
    const { calls, run } = setup();
    await expect(run('delete', '/api/members/:userId', { params: { userId: 'me' } })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'userId' },
    });
    await expect(run('post', '/api/teams/:teamId/members', { params: { teamId }, body: {} })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'userId' },
    });
    await expect(run('post', '/api/teams/:teamId/members', { params: { teamId: 'ops' }, body: { userId } })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'teamId' },
    });
    await expect(run('delete', '/api/teams/:teamId/members/:userId', { params: { teamId, userId: 'x' } })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'userId' },
    });
    expect(calls).toEqual([]);
  });
});

describe('chat group routes', () => {
  it('declares the capability each route needs', () => {
    const { route } = setup();
    expect(route('post', '/api/assistants/:assistantId/chat-groups').capability).toEqual({ object: 'teams', action: 'manage' });
    expect(route('get', '/api/assistants/:assistantId/chat-groups').capability).toEqual({ object: 'tenant', action: 'read' });
    expect(route('post', '/api/chat-groups/:chatGroupId/members').capability).toEqual({ object: 'teams', action: 'manage' });
    expect(route('delete', '/api/chat-groups/:chatGroupId/members/:userId').capability).toEqual({ object: 'teams', action: 'manage' });
    expect(route('get', '/api/chat-groups/:chatGroupId/members').capability).toEqual({ object: 'tenant', action: 'read' });
  });

  it("creates a chat group as the request's principal and answers 201 {chatGroupId, name}", async () => {
    const { calls, run } = setup();
    await expect(
      run('post', '/api/assistants/:assistantId/chat-groups', { params: { assistantId }, body: { name: 'Support' } }),
    ).resolves.toEqual({
      status: 201,
      body: { chatGroupId, name: 'Support' },
    });
    expect(calls).toEqual([['createChatGroup', { tenantId, assistantId, name: 'Support', actor: principal }]]);
  });

  it('lists chat groups as {chatGroupId, name} and members as user ids', async () => {
    const { calls, run } = setup();
    await expect(run('get', '/api/assistants/:assistantId/chat-groups', { params: { assistantId } })).resolves.toEqual({
      body: {
        chatGroups: [
          { chatGroupId, name: 'Alpha' },
          { chatGroupId: '00000000-0000-4000-8000-0000000000c2', name: 'Zeta' },
        ],
      },
    });
    await expect(run('get', '/api/chat-groups/:chatGroupId/members', { params: { chatGroupId } })).resolves.toEqual({
      body: { userIds: [userId] },
    });
    expect(calls).toEqual([
      ['listChatGroups', { tenantId, assistantId }],
      ['listChatGroupMembers', { tenantId, chatGroupId }],
    ]);
  });

  it('adds and removes chat group members', async () => {
    const { calls, run } = setup();
    await expect(run('post', '/api/chat-groups/:chatGroupId/members', { params: { chatGroupId }, body: { userId } })).resolves.toEqual({
      status: 204,
      body: null,
    });
    await expect(run('delete', '/api/chat-groups/:chatGroupId/members/:userId', { params: { chatGroupId, userId } })).resolves.toEqual({
      status: 204,
      body: null,
    });
    expect(calls).toEqual([
      ['addChatGroupMember', { tenantId, chatGroupId, userId, actor: principal }],
      ['removeChatGroupMember', { tenantId, chatGroupId, userId, actor: principal }],
    ]);
  });

  it('rejects malformed input before calling the registry', async () => {
    const { calls, run } = setup();
    await expect(
      run('post', '/api/assistants/:assistantId/chat-groups', { params: { assistantId: 'a' }, body: { name: 'x' } }),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'assistantId' },
    });
    await expect(
      run('post', '/api/assistants/:assistantId/chat-groups', { params: { assistantId }, body: { name: '' } }),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'name' },
    });
    await expect(run('get', '/api/assistants/:assistantId/chat-groups', { params: { assistantId: 'a' } })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'assistantId' },
    });
    await expect(
      run('post', '/api/chat-groups/:chatGroupId/members', { params: { chatGroupId }, body: { userId: 'me' } }),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'userId' },
    });
    await expect(
      run('delete', '/api/chat-groups/:chatGroupId/members/:userId', { params: { chatGroupId: 'g', userId } }),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'chatGroupId' },
    });
    await expect(run('get', '/api/chat-groups/:chatGroupId/members', { params: { chatGroupId: 'g' } })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'chatGroupId' },
    });
    expect(calls).toEqual([]);
  });
});
