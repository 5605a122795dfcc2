import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from '@jest/globals';
import { AppError, createLogger } from '@portcullis/kit';
import { Role } from '@portcullis/proto/common';
import { GetMembershipResponseSchema, ListUserTenantsResponseSchema, type Membership } from '@portcullis/proto/tenant';
import { createLoginTickets, type TicketStore } from './login-tickets.js';
import type { RoleName } from '@portcullis/kit';
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

function setup(memberships: MembershipRow[], behaviour: DirectoryBehaviour = {}) {
  const issued: { userId: string; tenantId: string; role: RoleName }[] = [];
  const { directory, calls } = fakeDirectory(memberships, behaviour);
  const signIn = createSignIn({
    accounts: {
      async authenticate(email, password) {
        if (email === 'ada@example.com' && password === 'a long enough pw') return userId;
        throw new AppError('UNAUTHENTICATED', 'invalid email or password');
      },
    },
    tickets: createLoginTickets({ store: memoryStore(), keyPrefix: 'p:', ttlSeconds: 300 }),
    tenants: directory,
    tokens: {
      async issue(subject) {
        issued.push(subject);
        return { token: `token-${issued.length}`, jti: `jti-${issued.length}`, expiresInSeconds: 900 };
      },
    },
    logger: createLogger({ name: 'sign-in-test', level: 'silent' }),
  });
  return { signIn, issued, calls };
}

const memberships = [
  { tenantId: tenantA, tenantName: 'Alpha', userId, role: Role.OWNER },
  { tenantId: tenantB, tenantName: 'Beta', userId, role: Role.USER },
  { tenantId: tenantC, tenantName: 'Gamma', userId, role: Role.UNSPECIFIED },
];

describe('sign-in', () => {
  it('login returns a ticket and the tenants the user has a known role in', async () => {
    const { signIn } = setup(memberships);
    const result = await signIn.login('ada@example.com', 'a long enough pw');
    expect(result).toMatchObject({ userId, ticketExpiresInSeconds: 300 });
    expect(result.tenants).toEqual([
      { tenantId: tenantA, tenantName: 'Alpha', role: 'owner' },
      { tenantId: tenantB, tenantName: 'Beta', role: 'user' },
    ]);
    await expect(signIn.inspectTicket(result.ticket)).resolves.toBe(userId);
  });

  it('a failed login asks tenant-registry nothing and issues no ticket', async () => {
    const { signIn, calls } = setup(memberships);
    await expect(signIn.login('ada@example.com', 'the wrong password')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(calls).toEqual([]);
  });

  it('select-tenant issues a token for the membership role and spends the ticket', async () => {
    const { signIn, issued } = setup(memberships);
    const { ticket } = await signIn.login('ada@example.com', 'a long enough pw');
    await expect(signIn.selectTenant(ticket, tenantB)).resolves.toEqual({
      accessToken: 'token-1',
      expiresInSeconds: 900,
      tenantId: tenantB,
      role: 'user',
    });
    expect(issued).toEqual([{ userId, tenantId: tenantB, role: 'user' }]);
    await expect(signIn.selectTenant(ticket, tenantA)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(signIn.inspectTicket(ticket)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(issued).toHaveLength(1);
  });

  it('denies a tenant the user is not in, or holds no known role in, and still spends the ticket', async () => {
    const { signIn, issued } = setup(memberships);
    for (const tenantId of ['00000000-0000-4000-8000-0000000000ff', tenantC]) {
      const { ticket } = await signIn.login('ada@example.com', 'a long enough pw');
      await expect(signIn.selectTenant(ticket, tenantId)).rejects.toMatchObject({
        code: 'PERMISSION_DENIED',
        message: 'not a member of this tenant',
      });
      await expect(signIn.inspectTicket(ticket)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    }
    expect(issued).toEqual([]);
  });

  it('denies when tenant-registry answers with a membership for someone else', async () => {
    const other = '00000000-0000-4000-8000-0000000000b2';
    const { signIn, issued } = setup([], { getAnswer: { tenantId: tenantA, tenantName: 'Alpha', userId: other, role: Role.OWNER } });
    const { ticket } = await signIn.login('ada@example.com', 'a long enough pw');
    await expect(signIn.selectTenant(ticket, tenantA)).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(issued).toEqual([]);
  });

  it('rejects a malformed tenant id before spending the ticket', async () => {
    const { signIn } = setup(memberships);
    const { ticket } = await signIn.login('ada@example.com', 'a long enough pw');
    await expect(signIn.selectTenant(ticket, 'not-a-uuid')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(signIn.inspectTicket(ticket)).resolves.toBe(userId);
  });

  it('passes tenant-registry outages through instead of treating them as "not a member"', async () => {
    const { signIn, issued } = setup(memberships, { getFailure: new AppError('DEPENDENCY_UNAVAILABLE', 'tenant-registry is unavailable') });
    const { ticket } = await signIn.login('ada@example.com', 'a long enough pw');
    await expect(signIn.selectTenant(ticket, tenantA)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    expect(issued).toEqual([]);
  });
});
