import { describe, expect, it } from '@jest/globals';
import { createLogger } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind } from '@portcullis/proto/common';
import { recordingAudit } from '../test-support/audit-events.js';
import { fakeClock, memoryRefreshTokenStore, memorySessionStore } from '../test-support/memory-stores.js';
import { hashRefreshToken } from './refresh-tokens.js';
import { createSessions } from './sessions.js';

const logger = createLogger({ name: 'sessions-test', level: 'silent' });
const ada = '00000000-0000-4000-8000-0000000000a1';
const bob = '00000000-0000-4000-8000-0000000000b1';
const tenant = '00000000-0000-4000-8000-00000000000a';
const otherTenant = '00000000-0000-4000-8000-00000000000b';

function setup() {
  const clock = fakeClock();
  const sessionStore = memorySessionStore(clock);
  const refreshStore = memoryRefreshTokenStore(clock);
  const recorded = recordingAudit();
  const sessions = createSessions({
    store: sessionStore.store,
    refreshTokens: refreshStore.store,
    ttlSeconds: 3_600,
    audit: recorded.audit,
    logger,
    now: clock.now,
  });
  const open = (userId: string, clientIp = '', tenantId = tenant) => sessions.open({ userId, tenantId, clientIp, userAgent: 'test-agent' });
  return { clock, sessionStore, refreshStore, sessions, open, recorded };
}

/** The `auth.session_revoked` event of one of ada's sessions. */
const revokedEvent = (sessionId: string, tenantId: string, reason: string) => ({
  tenantId,
  kind: 'auth.session_revoked',
  principal: { kind: PrincipalKind.USER, id: ada, tenantId },
  object: 'sessions',
  action: 'revoke',
  outcome: Outcome.SUCCESS,
  reason,
  attributes: { session_id: sessionId },
});

describe('sessions', () => {
  it('opens a session with the first refresh token of its own family, storing only the token hash', async () => {
    const { open, sessionStore, refreshStore, clock } = setup();
    const opened = await open(ada, '192.0.2.1');
    expect(opened).toEqual({
      sessionId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      refreshToken: expect.any(String),
      refreshExpiresInSeconds: 3_600,
    });
    expect(sessionStore.get(opened.sessionId)).toEqual({
      sessionId: opened.sessionId,
      userId: ada,
      tenantId: tenant,
      createdAt: new Date(clock.now()),
      lastUsedAt: new Date(clock.now()),
      clientIp: '192.0.2.1',
      userAgent: 'test-agent',
    });
    expect(refreshStore.rows).toEqual([
      expect.objectContaining({
        tokenHash: hashRefreshToken(opened.refreshToken),
        familyId: opened.sessionId,
        sessionId: opened.sessionId,
      }),
    ]);
    expect(JSON.stringify(refreshStore.rows)).not.toContain(opened.refreshToken);
  });

  it('lists live sessions newest first and drops expired ones', async () => {
    const { open, sessions, clock } = setup();
    const first = await open(ada);
    clock.advance(1_800_000);
    const second = await open(ada);
    await open(bob);
    expect((await sessions.list(ada)).map((s) => s.sessionId)).toEqual([second.sessionId, first.sessionId]);
    clock.advance(1_800_000);
    expect((await sessions.list(ada)).map((s) => s.sessionId)).toEqual([second.sessionId]);
  });

  it('touch restarts the TTL of a live session and never brings an ended one back', async () => {
    const { open, sessions, sessionStore, clock } = setup();
    const { sessionId } = await open(ada);
    clock.advance(3_000_000);
    await expect(sessions.touch(sessionId, ada)).resolves.toBe(true);
    clock.advance(3_000_000);
    expect(sessionStore.exists(sessionId)).toBe(true);
    await expect(sessions.touch(sessionId, bob)).resolves.toBe(false);
    await sessions.revoke(ada, sessionId);
    await expect(sessions.touch(sessionId, ada)).resolves.toBe(false);
    expect(sessionStore.exists(sessionId)).toBe(false);
  });

  it("revokes only the user's own session: deletes it and revokes its refresh-token family", async () => {
    const { open, sessions, sessionStore, refreshStore } = setup();
    const mine = await open(ada);
    const theirs = await open(bob);
    await expect(sessions.revoke(ada, theirs.sessionId)).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'session not found' });
    expect(sessionStore.exists(theirs.sessionId)).toBe(true);
    expect(refreshStore.rows.find((row) => row.sessionId === theirs.sessionId)?.revokedAt).toBeNull();

    await sessions.revoke(ada, mine.sessionId);
    expect(sessionStore.exists(mine.sessionId)).toBe(false);
    expect(refreshStore.rows.find((row) => row.sessionId === mine.sessionId)?.revokedAt).toEqual(expect.any(Date));
    await expect(sessions.revoke(ada, mine.sessionId)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('records a revoked session in its tenant’s trail, and only a session that was live', async () => {
    const { open, sessions, recorded } = setup();
    const mine = await open(ada);
    const theirs = await open(bob);
    await expect(sessions.revoke(ada, theirs.sessionId)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await sessions.revoke(ada, mine.sessionId);
    await expect(sessions.revoke(ada, mine.sessionId)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(recorded.events).toEqual([revokedEvent(mine.sessionId, tenant, 'signed out')]);
  });

  it('ends the session even when its record is not stored, and says so (DEPENDENCY_UNAVAILABLE)', async () => {
    const { open, sessions, sessionStore, recorded } = setup();
    const mine = await open(ada);
    recorded.fail();
    await expect(sessions.revoke(ada, mine.sessionId)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(sessionStore.exists(mine.sessionId)).toBe(false);
  });

  it("records every live session ended by revokeAll in that session's own tenant, with the reason given", async () => {
    const { open, sessions, recorded, clock } = setup();
    await open(ada);
    clock.advance(3_600_000);
    const inA = await open(ada);
    const inB = await open(ada, '', otherTenant);
    await open(bob);
    await expect(sessions.revokeAll(ada, 'account linked to google')).resolves.toBe(2);
    expect(recorded.events).toEqual(
      expect.arrayContaining([
        revokedEvent(inA.sessionId, tenant, 'account linked to google'),
        revokedEvent(inB.sessionId, otherTenant, 'account linked to google'),
      ]),
    );
    expect(recorded.events).toHaveLength(2);
  });

  it('revokes every session of the user and counts the live ones', async () => {
    const { open, sessions, sessionStore, refreshStore, clock } = setup();
    const expired = await open(ada);
    clock.advance(3_600_000);
    const live = [await open(ada), await open(ada)];
    const other = await open(bob);
    await expect(sessions.revokeAll(ada)).resolves.toBe(2);
    for (const { sessionId } of [...live, expired]) {
      expect(sessionStore.exists(sessionId)).toBe(false);
      expect(refreshStore.rows.find((row) => row.sessionId === sessionId)?.revokedAt).toEqual(expect.any(Date));
    }
    expect(sessionStore.exists(other.sessionId)).toBe(true);
    await expect(sessions.list(ada)).resolves.toEqual([]);
    await expect(sessions.revokeAll(ada)).resolves.toBe(0);
  });

  it.each([
    ['user_id', () => setup().sessions.list('nope')],
    ['user_id', () => setup().sessions.revoke('nope', ada)],
    ['session_id', () => setup().sessions.revoke(ada, 'nope')],
    ['user_id', () => setup().sessions.revokeAll('')],
  ])('refuses a malformed %s with INVALID_ARGUMENT', async (field, call) => {
    await expect(call()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', details: { field } });
  });
});
