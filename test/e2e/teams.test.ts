import { describe, expect, it } from '@jest/globals';
import { httpJson } from '../../deploy/local/seed.mjs';
import { useDemoPlatform } from '../src/platform.js';

interface ErrorBody {
  error?: { code: string; message: string; requestId: string };
}

describe('teams and member removal through the whole platform', () => {
  const run = useDemoPlatform();

  const call = (token: string, method: string, path: string, body?: unknown) =>
    httpJson(run.platform.gatewayUrl, method, path, { token, ...(body === undefined ? {} : { body }) });
  const errorCode = (response: { body: unknown }) => (response.body as ErrorBody).error?.code;

  it('creates a team, puts the seeded user in it, lists teams, and takes the user out again', async () => {
    const { users } = run.platform.seeded;
    const created = await call(run.tokens.owner, 'POST', '/api/teams', { name: 'Field Robotics' });
    expect(created.status).toBe(201);
    const { teamId } = created.body as { teamId: string };

    const members = `/api/teams/${teamId}/members`;
    expect((await call(run.tokens.admin, 'POST', members, { userId: users.user })).status).toBe(204);
    // Idempotent: adding again changes nothing and still succeeds.
    expect((await call(run.tokens.admin, 'POST', members, { userId: users.user })).status).toBe(204);
    // A plain user lacks teams:manage.
    const refused = await call(run.tokens.user, 'POST', members, { userId: users.user });
    expect(refused.status).toBe(403);
    expect(errorCode(refused)).toBe('PERMISSION_DENIED');

    // Any member may read the tenant's teams (tenant:read).
    const listed = await call(run.tokens.user, 'GET', '/api/teams');
    expect(listed.status).toBe(200);
    expect((listed.body as { teams: { teamId: string; name: string }[] }).teams).toContainEqual({ teamId, name: 'Field Robotics' });

    expect((await call(run.tokens.admin, 'DELETE', `${members}/${users.user}`)).status).toBe(204);
    const again = await call(run.tokens.admin, 'DELETE', `${members}/${users.user}`);
    expect(again.status).toBe(404);
    expect(errorCode(again)).toBe('NOT_FOUND');
  });

  it('refuses to let an admin remove the owner or another admin', async () => {
    const { users } = run.platform.seeded;
    const owner = await call(run.tokens.admin, 'DELETE', `/api/members/${users.owner}`);
    expect(owner.status).toBe(403);
    expect(errorCode(owner)).toBe('PERMISSION_DENIED');
    expect((await call(run.tokens.admin, 'DELETE', `/api/members/${users.admin}`)).status).toBe(403);
    // The owner is still there and still an owner.
    expect((await call(run.tokens.owner, 'GET', '/api/context')).body).toMatchObject({ principal: { id: users.owner, role: 'owner' } });
  });

  it("removes the user from the tenant: the user's still-valid token loses what their role gave it", async () => {
    const { users } = run.platform.seeded;
    expect((await call(run.tokens.user, 'GET', '/api/context')).status).toBe(200);
    const { body } = await call(run.tokens.owner, 'POST', '/api/teams', { name: 'Leavers' });
    const { teamId } = body as { teamId: string };
    expect((await call(run.tokens.owner, 'POST', `/api/teams/${teamId}/members`, { userId: users.user })).status).toBe(204);

    expect((await call(run.tokens.admin, 'DELETE', `/api/members/${users.user}`)).status).toBe(204);

    const denied = await call(run.tokens.user, 'GET', '/api/context');
    expect(denied.status).toBe(403);
    expect(errorCode(denied)).toBe('PERMISSION_DENIED');
    // Their team membership went with the membership, and they cannot be removed twice.
    expect((await call(run.tokens.owner, 'DELETE', `/api/teams/${teamId}/members/${users.user}`)).status).toBe(404);
    expect((await call(run.tokens.owner, 'DELETE', `/api/members/${users.user}`)).status).toBe(404);
    // A removed person can no longer be put into a team.
    const rejoin = await call(run.tokens.owner, 'POST', `/api/teams/${teamId}/members`, { userId: users.user });
    expect(rejoin.status).toBe(400);
    expect(errorCode(rejoin)).toBe('FAILED_PRECONDITION');
  });
});
