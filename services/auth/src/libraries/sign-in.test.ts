import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from '@jest/globals';
import { AppError, createLogger } from '@portcullis/kit';
import { Outcome } from '@portcullis/proto/audit';
import { PrincipalKind, Role } from '@portcullis/proto/common';
import { GetMembershipResponseSchema, ListUserTenantsResponseSchema, type Membership } from '@portcullis/proto/tenant';
import type { RoleName } from '@portcullis/kit';
import { recordingAudit } from '../test-support/audit-events.js';
import { fakeClock, memoryFailureCounter, memoryRefreshTokenStore, memorySessionStore } from '../test-support/memory-stores.js';
import { createLoginThrottle } from './login-throttle.js';
import { createLoginTickets, type TicketStore } from './login-tickets.js';
import { hashRefreshToken } from './refresh-tokens.js';
import { createSessions } from './sessions.js';
import { createSignIn, type TenantDirectory } from './sign-in.js';

const userId = '00000000-0000-4000-8000-0000000000a1';
const tenantA = '00000000-0000-4000-8000-00000000000a';
const tenantB = '00000000-0000-4000-8000-00000000000b';
const tenantC = '00000000-0000-4000-8000-00000000000c';

function memoryStore(): TicketStore {
  const entries = new Map<string, string>();
  return {
    async set(key, value) {
      entries.set(key, value);
      return 'OK';
    },
    async get(key) {
      return entries.get(key) ?? null;
    },
    async getdel(key) {
      const value = entries.get(key) ?? null;
      entries.delete(key);
      return value;
    },
  };
}

type MembershipRow = Omit<Membership, '$typeName'>;

interface DirectoryBehaviour {
  /** Error every getMembership call fails with. */
  getFailure?: AppError;
  /** Answer getMembership with this row, whatever was asked. */
  getAnswer?: MembershipRow;
}

function fakeDirectory(memberships: MembershipRow[], { getFailure, getAnswer }: DirectoryBehaviour = {}) {
  const calls: string[] = [];
  const directory: TenantDirectory = {
    async listUserTenants({ userId: id }) {
      calls.push(`list:${id ?? ''}`);
      return create(ListUserTenantsResponseSchema, { memberships: memberships.filter((m) => m.userId === id) });
    },
    async getMembership({ tenantId, userId: id }) {
      calls.push(`get:${tenantId ?? ''}`);
      if (getFailure) throw getFailure;
      const membership = getAnswer ?? memberships.find((m) => m.tenantId === tenantId && m.userId === id);
      if (!membership) throw new AppError('NOT_FOUND', 'membership not found');
      return create(GetMembershipResponseSchema, { membership });
    },
  };
  return { directory, calls };
}

const logger = createLogger({ name: 'sign-in-test', level: 'silent' });

function setup(memberships: MembershipRow[], behaviour: DirectoryBehaviour = {}) {
  const clock = fakeClock();
  const issued: { userId: string; tenantId: string; role: RoleName; sessionId: string }[] = [];
  const authenticated: string[] = [];
  const { directory, calls } = fakeDirectory(memberships, behaviour);
  const sessionStore = memorySessionStore(clock);
  const refreshStore = memoryRefreshTokenStore(clock);
  const accountCounter = memoryFailureCounter(5, 900_000, clock);
  const ipCounter = memoryFailureCounter(50, 900_000, clock);
  const recorded = recordingAudit();
  const signIn = createSignIn({
    accounts: {
      async authenticate(email, password) {
        authenticated.push(email);
        if (email === 'ada@example.com' && password === 'a long enough pw') return userId;
        throw new AppError('UNAUTHENTICATED', 'invalid email or password');
      },
    },
    throttle: createLoginThrottle({ account: accountCounter.counter, ip: ipCounter.counter, logger }),
    tickets: createLoginTickets({ store: memoryStore(), keyPrefix: 'p:', ttlSeconds: 300 }),
    tenants: directory,
    sessions: createSessions({
      store: sessionStore.store,
      refreshTokens: refreshStore.store,
      ttlSeconds: 3_600,
      audit: recordingAudit().audit,
      logger,
      now: clock.now,
    }),
    tokens: {
      async issue(subject) {
        issued.push(subject);
        return { token: `token-${issued.length}`, jti: `jti-${issued.length}`, expiresInSeconds: 900 };
      },
    },
    audit: recorded.audit,
    logger,
  });
  const login = (password = 'a long enough pw', clientIp = '') => signIn.login({ email: 'ada@example.com', password, clientIp });
  const select = (ticket: string, tenantId: string) => signIn.selectTenant({ ticket, tenantId, clientIp: '', userAgent: '' });
  return { signIn, login, select, issued, calls, authenticated, sessionStore, refreshStore, recorded };
}

const memberships = [
  { tenantId: tenantA, tenantName: 'Alpha', userId, role: Role.OWNER },
  { tenantId: tenantB, tenantName: 'Beta', userId, role: Role.USER },
  { tenantId: tenantC, tenantName: 'Gamma', userId, role: Role.UNSPECIFIED },
];

describe('sign-in', () => {
  it('login returns a ticket and the tenants the user has a known role in', async () => {
    const { signIn, login } = setup(memberships);
    const result = await login();
    expect(result).toMatchObject({ userId, ticketExpiresInSeconds: 300 });
    expect(result.tenants).toEqual([
      { tenantId: tenantA, tenantName: 'Alpha', role: 'owner' },
      { tenantId: tenantB, tenantName: 'Beta', role: 'user' },
    ]);
    await expect(signIn.inspectTicket(result.ticket)).resolves.toBe(userId);
  });

  it('a failed login asks tenant-registry nothing and issues no ticket', async () => {
    const { login, calls } = setup(memberships);
    await expect(login('the wrong password')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(calls).toEqual([]);
  });

  it('select-tenant opens a session, issues a token for the membership role with its sid, and spends the ticket', async () => {
    const { signIn, login, issued, sessionStore, refreshStore } = setup(memberships);
    const { ticket } = await login();
    const result = await signIn.selectTenant({ ticket, tenantId: tenantB, clientIp: ' 192.0.2.7 ', userAgent: 'Browser/1.0\u0000\n' });
    expect(result).toEqual({
      accessToken: 'token-1',
      expiresInSeconds: 900,
      tenantId: tenantB,
      role: 'user',
      sessionId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      refreshToken: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      refreshExpiresInSeconds: 3_600,
    });
    expect(issued).toEqual([{ userId, tenantId: tenantB, role: 'user', sessionId: result.sessionId }]);
    expect(sessionStore.get(result.sessionId)).toMatchObject({
      userId,
      tenantId: tenantB,
      clientIp: '192.0.2.7',
      userAgent: 'Browser/1.0',
    });
    // The first refresh token of a new family; family = session; only its hash is kept.
    expect(refreshStore.rows).toEqual([
      expect.objectContaining({
        tokenHash: hashRefreshToken(result.refreshToken),
        familyId: result.sessionId,
        sessionId: result.sessionId,
        userId,
        tenantId: tenantB,
        usedAt: null,
        revokedAt: null,
      }),
    ]);
    await expect(signIn.selectTenant({ ticket, tenantId: tenantA, clientIp: '', userAgent: '' })).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
    });
    await expect(signIn.inspectTicket(ticket)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(issued).toHaveLength(1);
  });

  it('records the sign-in in the tenant’s audit trail: the user with their role, the session and the address', async () => {
    const { signIn, login, recorded } = setup(memberships);
    const { ticket } = await login();
    const result = await signIn.selectTenant({ ticket, tenantId: tenantA, clientIp: '192.0.2.7', userAgent: '' });
    expect(recorded.events).toEqual([
      {
        tenantId: tenantA,
        kind: 'auth.signin',
        principal: { kind: PrincipalKind.USER, id: userId, tenantId: tenantA, role: Role.OWNER },
        object: 'sessions',
        action: 'create',
        outcome: Outcome.SUCCESS,
        attributes: { session_id: result.sessionId, role: 'owner', client_ip: '192.0.2.7' },
      },
    ]);
    expect(JSON.stringify(recorded.events)).not.toContain(result.refreshToken);
  });

  it('hands out no tokens for a sign-in whose record was not stored, and ends its session', async () => {
    const { login, select, recorded, sessionStore, refreshStore } = setup(memberships);
    const { ticket } = await login();
    recorded.fail();
    await expect(select(ticket, tenantA)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    await expect(sessionStore.store.listForUser(userId)).resolves.toEqual([]);
    expect(refreshStore.rows.every((row) => row.revokedAt !== null)).toBe(true);
  });

  it('records nothing for a refused tenant selection', async () => {
    const { login, select, recorded } = setup(memberships);
    const { ticket } = await login();
    await expect(select(ticket, tenantC)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(recorded.events).toEqual([]);
  });

  it('refuses a malformed client_ip before spending the ticket', async () => {
    const { signIn, login, sessionStore } = setup(memberships);
    const { ticket } = await login();
    await expect(signIn.selectTenant({ ticket, tenantId: tenantA, clientIp: 'not-an-ip', userAgent: '' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'client_ip' },
    });
    await expect(signIn.inspectTicket(ticket)).resolves.toBe(userId);
    await expect(sessionStore.store.listForUser(userId)).resolves.toEqual([]);
  });

  it('throttles password logins before the password is checked', async () => {
    const { login, authenticated } = setup(memberships);
    for (let attempt = 0; attempt < 5; attempt += 1) {
      await expect(login('the wrong password', '192.0.2.1')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    }
    await expect(login('a long enough pw', '192.0.2.1')).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    expect(authenticated).toHaveLength(5);
  });

  it('denies a tenant the user is not in, or holds no known role in, and still spends the ticket', async () => {
    const { signIn, login, select, issued, sessionStore } = setup(memberships);
    for (const tenantId of ['00000000-0000-4000-8000-0000000000ff', tenantC]) {
      const { ticket } = await login();
      await expect(select(ticket, tenantId)).rejects.toMatchObject({
        code: 'PERMISSION_DENIED',
        message: 'not a member of this tenant',
      });
      await expect(signIn.inspectTicket(ticket)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    }
    expect(issued).toEqual([]);
    await expect(sessionStore.store.listForUser(userId)).resolves.toEqual([]);
  });

  it('denies when tenant-registry answers with a membership for someone else', async () => {
    const other = '00000000-0000-4000-8000-0000000000b2';
    const { login, select, issued } = setup([], { getAnswer: { tenantId: tenantA, tenantName: 'Alpha', userId: other, role: Role.OWNER } });
    const { ticket } = await login();
    await expect(select(ticket, tenantA)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(issued).toEqual([]);
  });

  it('rejects a malformed tenant id before spending the ticket', async () => {
    const { signIn, login, select } = setup(memberships);
    const { ticket } = await login();
    await expect(select(ticket, 'not-a-uuid')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(signIn.inspectTicket(ticket)).resolves.toBe(userId);
  });

  it('passes tenant-registry outages through instead of treating them as "not a member"', async () => {
    const { login, select, issued } = setup(memberships, {
      getFailure: new AppError('DEPENDENCY_UNAVAILABLE', 'tenant-registry is unavailable'),
    });
    const { ticket } = await login();
    await expect(select(ticket, tenantA)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(issued).toEqual([]);
  });

  it('ends the session it opened when the access token cannot be signed', async () => {
    const { sessionStore, refreshStore } = setup(memberships);
    const failing = createSignIn({
      accounts: { authenticate: async () => userId },
      throttle: createLoginThrottle({
        account: memoryFailureCounter(5, 1_000, fakeClock()).counter,
        ip: memoryFailureCounter(5, 1_000, fakeClock()).counter,
        logger,
      }),
      tickets: createLoginTickets({ store: memoryStore(), keyPrefix: 'p:', ttlSeconds: 300 }),
      tenants: fakeDirectory(memberships).directory,
      sessions: createSessions({
        store: sessionStore.store,
        refreshTokens: refreshStore.store,
        ttlSeconds: 3_600,
        audit: recordingAudit().audit,
        logger,
      }),
      tokens: {
        async issue() {
          throw new AppError('INTERNAL', 'no active signing key');
        },
      },
      audit: recordingAudit().audit,
      logger,
    });
    const { ticket } = await failing.login({ email: 'ada@example.com', password: 'a long enough pw', clientIp: '' });
    await expect(failing.selectTenant({ ticket, tenantId: tenantA, clientIp: '', userAgent: '' })).rejects.toMatchObject({
      code: 'INTERNAL',
    });
    await expect(sessionStore.store.listForUser(userId)).resolves.toEqual([]);
    expect(refreshStore.rows.every((row) => row.revokedAt !== null)).toBe(true);
  });
});
