import { randomBytes } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from '@jest/globals';
import { AppError, createLogger, type RoleName } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind, Role } from '@portcullis/proto/common';
import { GetMembershipResponseSchema } from '@portcullis/proto/tenant';
import fc from 'fast-check';
import { recordingAudit } from '../test-support/audit-events.js';
import { fakeClock, memoryRefreshTokenStore, memorySessionStore } from '../test-support/memory-stores.js';
import type { TenantDirectory } from './memberships.js';
import { hashRefreshToken, parseRefreshToken } from './refresh-tokens.js';
import { createSessions } from './sessions.js';
import { createTokenRefresh, REUSE_MESSAGE } from './token-refresh.js';

const logger = createLogger({ name: 'token-refresh-test', level: 'silent' });
const userId = '00000000-0000-4000-8000-0000000000a1';
const tenantId = '00000000-0000-4000-8000-00000000000a';

function setup() {
  const clock = fakeClock();
  const sessionStore = memorySessionStore(clock);
  const refreshStore = memoryRefreshTokenStore(clock);
  const recorded = recordingAudit();
  const sessions = createSessions({
    store: sessionStore.store,
    refreshTokens: refreshStore.store,
    ttlSeconds: 3_600,
    audit: recordingAudit().audit,
    logger,
    now: clock.now,
  });
  const membership: { role: Role | undefined; since: Date; failure?: AppError } = {
    role: Role.ADMIN,
    since: new Date(clock.now() - 86_400_000),
  };
  const membershipCalls: string[] = [];
  const tenants: Pick<TenantDirectory, 'getMembership'> = {
    async getMembership(request) {
      membershipCalls.push(`${request.tenantId ?? ''}/${request.userId ?? ''}`);
      if (membership.failure) throw membership.failure;
      if (membership.role === undefined) throw new AppError('NOT_FOUND', 'membership not found');
      return create(GetMembershipResponseSchema, {
        membership: { tenantId, userId, tenantName: 'Alpha', role: membership.role, memberSince: timestampFromDate(membership.since) },
      });
    },
  };
  const issued: { role: RoleName; sessionId: string }[] = [];
  const refresh = createTokenRefresh({
    refreshTokens: refreshStore.store,
    sessions,
    tenants,
    tokens: {
      async issue(subject) {
        issued.push({ role: subject.role, sessionId: subject.sessionId });
        return { token: `access-${issued.length}`, jti: `jti-${issued.length}`, expiresInSeconds: 900 };
      },
    },
    ttlSeconds: 3_600,
    audit: recorded.audit,
    logger,
    now: clock.now,
  });
  const open = () => sessions.open({ userId, tenantId, clientIp: '', userAgent: '' });
  return { clock, sessionStore, refreshStore, sessions, refresh, open, membership, membershipCalls, issued, recorded };
}

describe('token refresh', () => {
  it('spends the token and returns a new access token (same sid, current role) and a successor in the same family', async () => {
    const { open, refresh, refreshStore, sessionStore, membership, issued, clock } = setup();
    const { sessionId, refreshToken } = await open();
    clock.advance(60_000);
    membership.role = Role.USER;
    const result = await refresh.refresh(refreshToken);
    expect(result).toEqual({
      accessToken: 'access-1',
      expiresInSeconds: 900,
      refreshToken: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      refreshExpiresInSeconds: 3_600,
      tenantId,
      role: 'user',
      sessionId,
    });
    expect(result.refreshToken).not.toBe(refreshToken);
    expect(issued).toEqual([{ role: 'user', sessionId }]);
    expect(refreshStore.rows).toEqual([
      expect.objectContaining({ tokenHash: hashRefreshToken(refreshToken), usedAt: new Date(clock.now()), revokedAt: null }),
      expect.objectContaining({ tokenHash: hashRefreshToken(result.refreshToken), familyId: sessionId, sessionId, usedAt: null }),
    ]);
    expect(sessionStore.get(sessionId)?.lastUsedAt).toEqual(new Date(clock.now()));
    // The successor works in turn.
    await expect(refresh.refresh(result.refreshToken)).resolves.toMatchObject({ sessionId });
  });

  it('treats a second use as reuse: the whole family is revoked and the session ended', async () => {
    const { open, refresh, refreshStore, sessionStore } = setup();
    const { sessionId, refreshToken } = await open();
    const { refreshToken: successor } = await refresh.refresh(refreshToken);
    await expect(refresh.refresh(refreshToken)).rejects.toMatchObject({ code: 'UNAUTHENTICATED', message: REUSE_MESSAGE });
    expect(sessionStore.exists(sessionId)).toBe(false);
    expect(refreshStore.rows.every((row) => row.revokedAt !== null)).toBe(true);
    // The successor, held by whoever refreshed first, is dead too.
    await expect(refresh.refresh(successor)).rejects.toMatchObject({ code: 'UNAUTHENTICATED', message: REUSE_MESSAGE });
  });

  it('records a refresh and a detected reuse in the session’s tenant, never a token', async () => {
    const { open, refresh, recorded } = setup();
    const { sessionId, refreshToken } = await open();
    const { refreshToken: successor } = await refresh.refresh(refreshToken);
    await expect(refresh.refresh(refreshToken)).rejects.toMatchObject({ message: REUSE_MESSAGE });
    expect(recorded.events).toEqual([
      {
        tenantId,
        kind: 'auth.token_refreshed',
        principal: { kind: PrincipalKind.USER, id: userId, tenantId, role: Role.ADMIN },
        object: 'sessions',
        action: 'refresh',
        outcome: Outcome.SUCCESS,
        attributes: { session_id: sessionId },
      },
      {
        tenantId,
        kind: 'auth.token_reuse',
        principal: { kind: PrincipalKind.USER, id: userId, tenantId },
        object: 'sessions',
        action: 'refresh',
        outcome: Outcome.FAILURE,
        reason: expect.stringContaining('token family revoked'),
        attributes: { session_id: sessionId, family_id: sessionId },
      },
    ]);
    const text = JSON.stringify(recorded.events);
    for (const token of [refreshToken, successor]) expect(text).not.toContain(token);
  });

  it('hands out no tokens for a refresh whose record was not stored, and ends the session', async () => {
    const { open, refresh, recorded, sessionStore } = setup();
    const { sessionId, refreshToken } = await open();
    recorded.fail();
    await expect(refresh.refresh(refreshToken)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(sessionStore.exists(sessionId)).toBe(false);
  });

  it('of two concurrent refreshes with one token exactly one succeeds; the other is reuse', async () => {
    const { open, refresh, refreshStore, sessionStore } = setup();
    const { sessionId, refreshToken } = await open();
    const results = await Promise.allSettled([refresh.refresh(refreshToken), refresh.refresh(refreshToken)]);
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    const [rejected] = results.filter((result) => result.status === 'rejected');
    expect(rejected?.reason).toMatchObject({ code: 'UNAUTHENTICATED', message: REUSE_MESSAGE });
    // One successor was minted, never two.
    expect(refreshStore.rows).toHaveLength(2);
    expect(sessionStore.exists(sessionId)).toBe(false);
  });

  it('refuses unknown and expired tokens without touching anything', async () => {
    const { open, refresh, refreshStore, clock, membershipCalls } = setup();
    const { refreshToken } = await open();
    await expect(refresh.refresh(randomBytes(32).toString('base64url'))).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      message: 'invalid or expired refresh token',
    });
    clock.advance(3_600_000);
    await expect(refresh.refresh(refreshToken)).rejects.toMatchObject({ message: 'invalid or expired refresh token' });
    expect(refreshStore.rows[0]?.usedAt).toBeNull();
    expect(membershipCalls).toEqual([]);
  });

  it('ends the session when the user is no longer a member', async () => {
    const { open, refresh, refreshStore, sessionStore, membership, issued } = setup();
    const { sessionId, refreshToken } = await open();
    membership.role = undefined;
    await expect(refresh.refresh(refreshToken)).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
      message: 'not a member of this tenant',
    });
    expect(sessionStore.exists(sessionId)).toBe(false);
    expect(refreshStore.rows[0]?.revokedAt).toEqual(expect.any(Date));
    expect(issued).toEqual([]);
  });

  it('ends for good a session from before the person was removed and added again', async () => {
    const { open, refresh, sessionStore, membership, issued, clock } = setup();
    const { sessionId, refreshToken } = await open();
    clock.advance(60_000);
    // Removed and added again since the token was issued: a new membership.
    membership.since = new Date(clock.now());
    await expect(refresh.refresh(refreshToken)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(sessionStore.exists(sessionId)).toBe(false);
    expect(issued).toEqual([]);
    // A session opened in the current membership refreshes.
    const fresh = await open();
    await expect(refresh.refresh(fresh.refreshToken)).resolves.toMatchObject({ role: 'admin' });
  });

  it('ends the session when the membership has no known role', async () => {
    const { open, refresh, sessionStore, membership } = setup();
    const { sessionId, refreshToken } = await open();
    membership.role = Role.UNSPECIFIED;
    await expect(refresh.refresh(refreshToken)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(sessionStore.exists(sessionId)).toBe(false);
  });

  it('keeps the token unspent when tenant-registry cannot answer', async () => {
    const { open, refresh, refreshStore, sessionStore, membership } = setup();
    const { sessionId, refreshToken } = await open();
    membership.failure = new AppError('DEPENDENCY_UNAVAILABLE', 'tenant-registry is unavailable');
    await expect(refresh.refresh(refreshToken)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(refreshStore.rows[0]?.usedAt).toBeNull();
    expect(sessionStore.exists(sessionId)).toBe(true);
    delete membership.failure;
    await expect(refresh.refresh(refreshToken)).resolves.toMatchObject({ sessionId });
  });

  it('refuses a token whose session was revoked, and a token of an ended session stays unusable', async () => {
    const { open, refresh, sessions, issued } = setup();
    const { sessionId, refreshToken } = await open();
    await sessions.revoke(userId, sessionId);
    await expect(refresh.refresh(refreshToken)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(issued).toEqual([]);
  });

  it('refuses when the session key is gone even though the token is live, and spends nothing', async () => {
    const { open, refresh, refreshStore, sessionStore, issued } = setup();
    const { sessionId, refreshToken } = await open();
    // The session key vanished (e.g. deleted by an operator) while its tokens were not revoked.
    await sessionStore.store.remove(sessionId, userId);
    await expect(refresh.refresh(refreshToken)).rejects.toMatchObject({ code: 'UNAUTHENTICATED', message: 'the session has ended' });
    expect(refreshStore.rows).toHaveLength(1);
    expect(refreshStore.rows[0]?.usedAt).toBeNull();
    expect(issued).toEqual([]);
  });

  it('parses nothing but a 43-character base64url token', () => {
    expect(parseRefreshToken('A'.repeat(43))).toBe(hashRefreshToken('A'.repeat(43)));
    for (const malformed of ['', 'A'.repeat(42), 'A'.repeat(44), `${'A'.repeat(42)}=`, `${'A'.repeat(42)}+`, ` ${'A'.repeat(43)}`]) {
      expect(() => parseRefreshToken(malformed)).toThrow(expect.objectContaining({ code: 'UNAUTHENTICATED' }));
    }
  });

  it('never accepts random input and never fails with anything but UNAUTHENTICATED or INVALID_ARGUMENT', async () => {
    const { open, refresh, issued } = setup();
    await open();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 100 }),
          fc.string({ unit: 'binary', maxLength: 60 }),
          fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes).toString('base64url')),
          fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => Buffer.from(bytes).toString('base64url')),
          fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
        ),
        async (input) => {
          const outcome = await refresh.refresh(input).then(
            () => 'accepted',
            (error: unknown) => error,
          );
          expect(outcome).toBeInstanceOf(AppError);
          expect(['UNAUTHENTICATED', 'INVALID_ARGUMENT']).toContain((outcome as AppError).code);
        },
      ),
    );
    expect(issued).toEqual([]);
  });
});
