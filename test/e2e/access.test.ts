// Per-assistant roles, per-user permissions and the caller's capability list, through the
// gateway with every process spawned: the policy service decides who may grant what.
import { describe, expect, it } from '@jest/globals';
import { demo, httpJson } from '../../deploy/local/seed.mjs';
import { useDemoPlatform } from '../src/platform.js';

interface ErrorBody {
  error?: { code: string; message: string };
}

describe('assistant roles, per-user permissions and capabilities through the whole platform', () => {
  const run = useDemoPlatform();

  /** On the demo assistant's domain, so requests carry that assistant. */
  const onAssistant = (token: string, method: string, path: string, body?: unknown) =>
    httpJson(run.platform.gatewayUrl, method, path, { token, host: demo.host, ...(body === undefined ? {} : { body }) });
  const invoke = (token: string) => onAssistant(token, 'POST', `/api/tools/${demo.toolName}/invoke`, { input: { from: 'e2e' } });
  const capabilities = async (token: string) => {
    const answer = await onAssistant(token, 'GET', '/api/capabilities');
    expect(answer.status).toBe(200);
    return (answer.body as { assistantId: string; capabilities: string[] }).capabilities;
  };
  const errorCode = (response: { body: unknown }) => (response.body as ErrorBody).error?.code;

  it("lists each caller's capabilities on the assistant", async () => {
    const owner = await capabilities(run.tokens.owner);
    const user = await capabilities(run.tokens.user);
    expect(owner).toEqual(expect.arrayContaining(['billing:manage', 'members:manage', 'tools:invoke']));
    expect(user).toContain('tools:read');
    expect(user).not.toContain('tools:invoke');
    expect(user).not.toContain('members:manage');
    // The free plan excludes MCP calls, even for the owner.
    expect(owner).not.toContain('mcp:invoke');
  });

  it('gives a user one capability on the assistant, then takes it back', async () => {
    const { users } = run.platform.seeded;
    expect((await invoke(run.tokens.user)).status).toBe(403);
    const grant = await onAssistant(run.tokens.admin, 'POST', `/api/members/${users.user}/permissions`, {
      capability: 'tools:invoke',
      assistantId: run.platform.seeded.assistantId,
    });
    expect(grant.status).toBe(204);
    expect((await invoke(run.tokens.user)).status).toBe(200);
    expect(await capabilities(run.tokens.user)).toContain('tools:invoke');

    const revoke = await onAssistant(
      run.tokens.admin,
      'DELETE',
      `/api/members/${users.user}/permissions/tools:invoke?assistantId=${run.platform.seeded.assistantId}`,
    );
    expect(revoke.status).toBe(204);
    expect((await invoke(run.tokens.user)).status).toBe(403);
  });

  it('lets the owner make a user admin of one assistant, but never an admin make anyone admin', async () => {
    const { users, assistantId } = run.platform.seeded;
    const roles = `/api/assistants/${assistantId}/roles`;
    const byAdmin = await onAssistant(run.tokens.admin, 'POST', roles, { userId: users.user, role: 'admin' });
    expect(byAdmin.status).toBe(403);
    expect(errorCode(byAdmin)).toBe('PERMISSION_DENIED');
    expect((await invoke(run.tokens.user)).status).toBe(403);

    expect((await onAssistant(run.tokens.owner, 'POST', roles, { userId: users.user, role: 'admin' })).status).toBe(204);
    // Admin of this assistant: its tools, but still no tenant-wide capability such as members:manage.
    expect((await invoke(run.tokens.user)).status).toBe(200);
    const held = await capabilities(run.tokens.user);
    expect(held).toContain('tools:manage');
    expect(held).not.toContain('members:manage');

    expect((await onAssistant(run.tokens.owner, 'DELETE', `${roles}/${users.user}/admin`)).status).toBe(204);
    expect((await invoke(run.tokens.user)).status).toBe(403);
  });

  it('refuses an unknown assistant, a non-member and a malformed capability', async () => {
    const { users, beta } = run.platform.seeded;
    const unknownAssistant = await onAssistant(run.tokens.owner, 'POST', '/api/assistants/00000000-0000-4000-8000-00000000dead/roles', {
      userId: users.user,
      role: 'user',
    });
    expect(unknownAssistant.status).toBe(404);
    const stranger = await onAssistant(run.tokens.owner, 'POST', `/api/members/${beta.userId}/permissions`, { capability: 'tools:read' });
    expect(stranger.status).toBe(404);
    const bogus = await onAssistant(run.tokens.owner, 'POST', `/api/members/${users.user}/permissions`, { capability: 'everything' });
    expect(bogus.status).toBe(400);
  });
});
