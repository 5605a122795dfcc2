import { describe, expect, it } from '@jest/globals';
import { AppError } from '@portcullis/kit';
import { PrincipalKind, Role } from '@portcullis/proto/common';
import type { ProtectedRoute } from '../http/route.js';
import type { AuthorizedContext, Credential } from '../pipeline/index.js';
import { createAccessRoutes, type AccessRouteDeps } from './access-routes.js';

const tenantId = '00000000-0000-4000-8000-00000000000a';
const otherTenant = '00000000-0000-4000-8000-00000000000b';
const assistantId = '00000000-0000-4000-8000-0000000000c1';
const foreignAssistant = '00000000-0000-4000-8000-0000000000c2';
const userId = '00000000-0000-4000-8000-0000000000f2';
const stranger = '00000000-0000-4000-8000-0000000000f3';
const creator = '00000000-0000-4000-8000-0000000000f4';
const principal = { kind: PrincipalKind.USER, id: '00000000-0000-4000-8000-0000000000f1', tenantId, role: Role.ADMIN };

/** The routes over fake policy and registry clients that record every call. */
function setup(credential: Credential = { kind: 'access_token', sessionId: 's1', via: 'header' }) {
  const calls: [string, unknown][] = [];
  const record = (method: string) => (request: unknown) => {
    calls.push([method, request]);
    return Promise.resolve({});
  };
  const policy = {
    listCapabilities(request: unknown) {
      calls.push(['listCapabilities', request]);
      return Promise.resolve({ capabilities: ['devices:read', 'tenant:read', 'tools:invoke', 'tools:read'] });
    },
    assignRole: record('assignRole'),
    revokeRole: record('revokeRole'),
    grantPermission: record('grantPermission'),
    revokePermission: record('revokePermission'),
  } as unknown as AccessRouteDeps['policy'];
  const tenants = {
    resolveContext({ assistantId: id }: { assistantId: string }) {
      if (id === assistantId) return Promise.resolve({ context: { tenantId, assistantId: id } });
      if (id === foreignAssistant) return Promise.resolve({ context: { tenantId: otherTenant, assistantId: id } });
      return Promise.reject(new AppError('NOT_FOUND', 'no tenant is configured for this request'));
    },
    getMembership({ userId: id }: { userId: string }) {
      if (id === stranger) return Promise.reject(new AppError('NOT_FOUND', 'membership not found'));
      return Promise.resolve({ membership: { tenantId, userId: id } });
    },
  } as unknown as AccessRouteDeps['tenants'];
  const routes = createAccessRoutes({ policy, tenants });
  const route = (method: string, path: string): ProtectedRoute => {
    const found = routes.find((r) => r.method === method && r.path === path);
    if (!found) throw new Error(`no route ${method} ${path}`);
    return found;
  };
  const context = {
    request: { requestId: 'req-1' },
    target: { tenantId, tenantName: 'Alpha', assistantId },
    principal,
    credential,
  } as unknown as AuthorizedContext;
  const run = (
    method: string,
    path: string,
    input: { body?: unknown; params?: Record<string, string>; query?: Record<string, unknown> } = {},
  ) => route(method, path).handle(context, { body: input.body, params: input.params ?? {}, query: input.query ?? {} });
  return { calls, route, run };
}

describe('access routes', () => {
  it('lets only people who manage members change roles and permissions', () => {
    const { route } = setup();
    expect(route('get', '/api/capabilities').capability).toEqual({ object: 'tenant', action: 'read' });
    for (const [method, path] of [
      ['post', '/api/assistants/:assistantId/roles'],
      ['delete', '/api/assistants/:assistantId/roles/:userId/:role'],
      ['post', '/api/members/:userId/permissions'],
      ['delete', '/api/members/:userId/permissions/:capability'],
    ] as const) {
      expect(route(method, path)).toMatchObject({ capability: { object: 'members', action: 'manage' }, humansOnly: true });
    }
  });

  it("lists the caller's capabilities on the resolved assistant", async () => {
    const { run, calls } = setup();
    await expect(run('get', '/api/capabilities')).resolves.toEqual({
      body: { assistantId, capabilities: ['devices:read', 'tenant:read', 'tools:invoke', 'tools:read'] },
    });
    expect(calls).toEqual([['listCapabilities', { principal, tenantId, assistantId }]]);
  });

  it('lists an API key as the person it acts for, within its scopes', async () => {
    const { run, calls } = setup({
      kind: 'api_key',
      keyId: 'k1',
      keyKind: 'tenant',
      userId: '',
      createdBy: creator,
      scopes: ['tools:invoke'],
    });
    await expect(run('get', '/api/capabilities')).resolves.toMatchObject({ body: { capabilities: ['tools:invoke'] } });
    expect(calls[0]?.[1]).toMatchObject({ principal: { kind: PrincipalKind.USER, id: creator } });
  });

  it('assigns a role on an assistant of the tenant to a member, as the calling person', async () => {
    const { run, calls } = setup();
    await expect(
      run('post', '/api/assistants/:assistantId/roles', { params: { assistantId }, body: { userId, role: 'user' } }),
    ).resolves.toEqual({
      status: 204,
      body: null,
    });
    expect(calls).toEqual([['assignRole', { tenantId, userId, role: Role.USER, assistantId, actor: principal }]]);
  });

  it("refuses another tenant's or an unknown assistant, and a non-member, before asking policy", async () => {
    const { run, calls } = setup();
    for (const id of [foreignAssistant, '00000000-0000-4000-8000-0000000000c9']) {
      await expect(
        run('post', '/api/assistants/:assistantId/roles', { params: { assistantId: id }, body: { userId, role: 'user' } }),
      ).rejects.toMatchObject({
        code: 'NOT_FOUND',
        message: 'assistant not found',
      });
    }
    await expect(
      run('post', '/api/assistants/:assistantId/roles', { params: { assistantId }, body: { userId: stranger, role: 'user' } }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(
      run('post', '/api/members/:userId/permissions', {
        params: { userId },
        body: { capability: 'tools:invoke', assistantId: foreignAssistant },
      }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(calls).toEqual([]);
  });

  it('grants and revokes a per-user permission, tenant-wide or on one assistant', async () => {
    const { run, calls } = setup();
    await run('post', '/api/members/:userId/permissions', { params: { userId }, body: { capability: 'tools:invoke', assistantId } });
    await run('post', '/api/members/:userId/permissions', { params: { userId }, body: { capability: 'audit:read' } });
    await run('delete', '/api/members/:userId/permissions/:capability', {
      params: { userId, capability: 'tools:invoke' },
      query: { assistantId },
    });
    await run('delete', '/api/assistants/:assistantId/roles/:userId/:role', { params: { assistantId, userId, role: 'admin' } });
    expect(calls).toEqual([
      ['grantPermission', { tenantId, userId, assistantId, object: 'tools', action: 'invoke', actor: principal }],
      ['grantPermission', { tenantId, userId, assistantId: '', object: 'audit', action: 'read', actor: principal }],
      ['revokePermission', { tenantId, userId, assistantId, object: 'tools', action: 'invoke', actor: principal }],
      ['revokeRole', { tenantId, userId, role: Role.ADMIN, assistantId, actor: principal }],
    ]);
  });

  it('rejects malformed input before calling anything', async () => {
    const { run, calls } = setup();
    await expect(
      run('post', '/api/members/:userId/permissions', { params: { userId }, body: { capability: 'everything' } }),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(
      run('post', '/api/assistants/:assistantId/roles', { params: { assistantId }, body: { userId, role: 'superuser' } }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(
      run('post', '/api/assistants/:assistantId/roles', { params: { assistantId: 'a1' }, body: { userId, role: 'user' } }),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(calls).toEqual([]);
  });
});
