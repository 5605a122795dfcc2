// Every kind of fact the platform audits, produced through the gateway on the real platform and
// found again in the tenant's trail (GET /api/audit/events?kind=…), each with its tenant,
// principal, trace id and time: sign-ins, token and session events, API-key and robot
// lifecycle, role changes, and the conversation and feedback records an assistant submits.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { demo, httpJson } from '../../deploy/local/seed.mjs';
import { pollUntil } from '../src/infra.js';
import { useDemoPlatform } from '../src/platform.js';

interface TrailEvent {
  eventId: string;
  tenantId: string;
  kind: string;
  occurredAt: string | null;
  principal: { kind: string; id: string; role: string | null } | null;
  assistantId: string | null;
  object: string;
  action: string;
  outcome: string;
  reason: string;
  traceId: string;
  requestId: string;
  attributes: Record<string, string>;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

describe('audit coverage: every audited fact reaches the tenant’s trail', () => {
  const run = useDemoPlatform();

  const call = (
    method: string,
    path: string,
    options: { token?: string; host?: string; body?: unknown; headers?: Record<string, string> } = {},
  ) => httpJson(run.platform.gatewayUrl, method, path, options) as Promise<Answer>;
  const expectStatus = (answer: Answer, status: number) => {
    expect({ status: answer.status, body: answer.status === status ? null : answer.body }).toEqual({ status, body: null });
  };

  /** Polls the tenant's trail (read by its owner) for an event of `kind` that `matches`. */
  const findInTrail = (kind: string, matches: (event: TrailEvent) => boolean, tenantHost = demo.host) =>
    pollUntil(
      async () => {
        const answer = await call('GET', `/api/audit/events?kind=${encodeURIComponent(kind)}&pageSize=200`, {
          token: run.tokens.owner,
          host: tenantHost,
        });
        expectStatus(answer, 200);
        return (answer.body as { events: TrailEvent[] }).events.find(matches);
      },
      { timeoutMs: 20_000, what: `a ${kind} event in the trail` },
    );

  /** What every audit event must carry: its tenant, a principal, a trace id, an id and a time. */
  const expectWellFormed = (event: TrailEvent, principalId: string) => {
    expect({
      tenantId: event.tenantId,
      principal: event.principal?.id,
      traceId: event.traceId,
      eventId: event.eventId,
      occurredAt: event.occurredAt,
    }).toEqual({
      tenantId: run.platform.seeded.tenantId,
      principal: principalId,
      traceId: expect.stringMatching(/^(?!0{32})[0-9a-f]{32}$/),
      eventId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      occurredAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(Date.now() - Date.parse(event.occurredAt ?? '')).toBeLessThan(10 * 60_000);
  };

  it('records a sign-in into the tenant and the end of its session', async () => {
    const { seeded, passwords } = run.platform;
    const login = await call('POST', '/api/auth/login', { body: { email: demo.accounts.admin, password: passwords.admin } });
    expectStatus(login, 200);
    const selected = await call('POST', '/api/auth/select-tenant', {
      body: { loginTicket: (login.body as { loginTicket: string }).loginTicket, tenantId: seeded.tenantId },
    });
    expectStatus(selected, 200);
    const { accessToken, sessionId } = selected.body as { accessToken: string; sessionId: string };

    const signin = await findInTrail('auth.signin', (event) => event.attributes['session_id'] === sessionId);
    expectWellFormed(signin, seeded.users.admin);
    expect(signin).toMatchObject({ outcome: 'success', principal: { kind: 'user', role: 'admin' }, attributes: { role: 'admin' } });

    expectStatus(await call('POST', '/api/auth/logout', { token: accessToken }), 204);
    const revoked = await findInTrail('auth.session_revoked', (event) => event.attributes['session_id'] === sessionId);
    expectWellFormed(revoked, seeded.users.admin);
  });

  it('records the life of an API key and of a robot, never a secret', async () => {
    const { seeded } = run.platform;
    const created = await call('POST', '/api/api-keys', {
      token: run.tokens.owner,
      host: demo.host,
      body: { kind: 'tenant', name: 'audit coverage', scopes: ['tenant:read'] },
    });
    expectStatus(created, 201);
    const { apiKey, key } = created.body as { apiKey: { id: string }; key: string };
    expectStatus(await call('DELETE', `/api/api-keys/${apiKey.id}`, { token: run.tokens.owner, host: demo.host }), 204);

    const team = await call('POST', '/api/teams', { token: run.tokens.owner, body: { name: `Audit ${randomUUID().slice(0, 8)}` } });
    expectStatus(team, 201);
    const robot = await call('POST', '/api/robots', {
      token: run.tokens.owner,
      body: { name: 'audit robot', teamIds: [(team.body as { teamId: string }).teamId] },
    });
    expectStatus(robot, 201);
    const { robot: registered, token: robotToken } = robot.body as { robot: { id: string }; token: string };
    expectStatus(await call('DELETE', `/api/robots/${registered.id}`, { token: run.tokens.owner }), 204);

    const ofKey = (event: TrailEvent) => event.attributes['key_id'] === apiKey.id;
    const keyCreated = await findInTrail('apikey.created', ofKey);
    expect(keyCreated.attributes).toMatchObject({ key_prefix: `pck_${apiKey.id}`, scopes: 'tenant:read', key_kind: 'tenant' });
    const keyRevoked = await findInTrail('apikey.revoked', ofKey);
    const ofRobot = (event: TrailEvent) => event.attributes['robot_id'] === registered.id;
    const robotCreated = await findInTrail('robots.created', ofRobot);
    const robotRevoked = await findInTrail('robots.revoked', ofRobot);
    for (const event of [keyCreated, keyRevoked, robotCreated, robotRevoked]) expectWellFormed(event, seeded.users.owner);

    // The family filter finds both API-key events; no event holds a secret.
    const family = await call('GET', '/api/audit/events?kind=apikey.&pageSize=200', { token: run.tokens.owner, host: demo.host });
    const kinds = (family.body as { events: TrailEvent[] }).events.filter(ofKey).map((event) => event.kind);
    expect(kinds.sort()).toEqual(['apikey.created', 'apikey.revoked']);
    const text = JSON.stringify([keyCreated, keyRevoked, robotCreated, robotRevoked]);
    expect(text).not.toContain(key.slice(21));
    expect(text).not.toContain(robotToken.split('.')[2]);
  });

  it("records a member's role change, by the owner who made it", async () => {
    const { seeded } = run.platform;
    const promote = await call('POST', '/api/members', { token: run.tokens.owner, body: { userId: seeded.users.user, role: 'admin' } });
    expectStatus(promote, 201);
    const demote = await call('POST', '/api/members', { token: run.tokens.owner, body: { userId: seeded.users.user, role: 'user' } });
    expectStatus(demote, 201);
    const changed = await findInTrail(
      'member.role_changed',
      (event) => event.attributes['user_id'] === seeded.users.user && event.attributes['role'] === 'user',
    );
    expectWellFormed(changed, seeded.users.owner);
    expect(changed).toMatchObject({ object: 'members', action: 'change_role', attributes: { previous_role: 'admin' } });
  });

  it('stores conversation and feedback records an assistant backend submits with its API key, and the decision with the policy’s reason', async () => {
    const { seeded } = run.platform;
    const created = await call('POST', '/api/api-keys', {
      token: run.tokens.owner,
      host: demo.host,
      body: { kind: 'tenant', name: 'assistant backend', scopes: ['conversations:record'] },
    });
    expectStatus(created, 201);
    const { apiKey, key } = created.body as { apiKey: { id: string }; key: string };
    const conversationId = randomUUID();
    const asAssistant = { host: demo.host, headers: { 'x-api-key': key } };

    const record = {
      recordId: randomUUID(),
      turn: 0,
      userId: seeded.users.user,
      messages: [
        { role: 'user', content: 'Where is my parcel?' },
        { role: 'assistant', content: 'It arrives tomorrow.' },
      ],
      metadata: { model: 'demo-1' },
    };
    const submitted = await call('POST', `/api/conversations/${conversationId}/records`, { ...asAssistant, body: record });
    expectStatus(submitted, 201);
    const answer = submitted.body as { eventId: string; transcriptSha256: string; messages: { sha256: string }[] };
    // Sent again (a retry): stored once, under the same event id.
    const retried = await call('POST', `/api/conversations/${conversationId}/records`, { ...asAssistant, body: record });
    expectStatus(retried, 201);
    expect((retried.body as { eventId: string }).eventId).toBe(answer.eventId);

    const feedback = await call('POST', `/api/conversations/${conversationId}/feedback`, {
      ...asAssistant,
      body: { recordId: randomUUID(), rating: 'down', comment: 'The parcel came a day late.', messageSha256: answer.messages[1]?.sha256 },
    });
    expectStatus(feedback, 201);

    const ofConversation = (event: TrailEvent) => event.attributes['conversation_id'] === conversationId;
    const stored = await findInTrail('conversation.record', ofConversation);
    expectWellFormed(stored, apiKey.id);
    expect(stored).toMatchObject({
      eventId: answer.eventId,
      assistantId: seeded.assistantId,
      principal: { kind: 'api_key' },
      requestId: submitted.headers['x-request-id'],
      attributes: { transcript_sha256: answer.transcriptSha256, message_count: '2', 'meta.model': 'demo-1' },
    });
    expect(JSON.stringify(stored)).not.toContain('parcel');
    const rated = await findInTrail('feedback.record', ofConversation);
    expectWellFormed(rated, apiKey.id);
    expect(rated.attributes).toMatchObject({ rating: 'down', comment: 'The parcel came a day late.' });

    const records = await call('GET', '/api/audit/events?kind=conversation.record&pageSize=200', {
      token: run.tokens.owner,
      host: demo.host,
    });
    expect((records.body as { events: TrailEvent[] }).events.filter(ofConversation)).toHaveLength(1);

    // The decision that let the key in carries the policy's explanation: the grant that matched.
    const decision = await findInTrail('authz.decision', (event) => event.requestId === submitted.headers['x-request-id']);
    expect(decision).toMatchObject({ outcome: 'allow', object: 'conversations', action: 'record' });
    expect(decision.reason).toBe(`as user ${seeded.users.owner}: granted by role:owner (conversations:record)`);

    // A person without the capability is refused, and the denial says why.
    const refused = await call('POST', `/api/conversations/${conversationId}/feedback`, {
      token: run.tokens.user,
      host: demo.host,
      body: { recordId: randomUUID(), rating: 'up' },
    });
    expectStatus(refused, 403);
    const denial = await findInTrail('authz.decision', (event) => event.requestId === refused.headers['x-request-id']);
    expect(denial).toMatchObject({ outcome: 'deny', reason: expect.stringContaining('grants conversations:record') });
  });
});
