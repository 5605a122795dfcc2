import { describe, expect, it } from '@jest/globals';
import { PrincipalKind, Role } from '@portcullis/proto/common';
import type { ProtectedRoute } from '../http/route.js';
import type { AuthorizedContext } from '../pipeline/index.js';
import { createTenantRoutes, type TenantRouteDeps } from './tenant-routes.js';

const tenantId = '00000000-0000-4000-8000-00000000000a';
const teamId = '00000000-0000-4000-8000-0000000000e1';
const userId = '00000000-0000-4000-8000-0000000000f2';
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
