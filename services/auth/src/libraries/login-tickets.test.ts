import { describe, expect, it } from '@jest/globals';
import { AppError } from '@portcullis/kit';
import fc from 'fast-check';
import { createLoginTickets, hashTicket, type TicketIndex, type TicketStore } from './login-tickets.js';

function fakeStore() {
  const entries = new Map<string, { value: string; ttl: number }>();
  const calls: string[] = [];
  const store: TicketStore = {
    async set(key, value, _mode, seconds) {
      calls.push('set');
      entries.set(key, { value, ttl: seconds });
      return 'OK';
    },
    async get(key) {
      calls.push('get');
      return entries.get(key)?.value ?? null;
    },
    async getdel(key) {
      calls.push('getdel');
      const entry = entries.get(key);
      entries.delete(key);
      return entry?.value ?? null;
    },
  };
  return { store, entries, calls };
}

const userId = '00000000-0000-4000-8000-000000000001';

describe('login tickets', () => {
  it('issues 32 random bytes and stores only their SHA-256, with the TTL', async () => {
    const { store, entries } = fakeStore();
    const tickets = createLoginTickets({ store, keyPrefix: 'p:', ttlSeconds: 300 });
    const { ticket, expiresInSeconds } = await tickets.issue(userId);
    expect(Buffer.from(ticket, 'base64url')).toHaveLength(32);
    expect(expiresInSeconds).toBe(300);
    expect([...entries]).toEqual([[`p:login-ticket:${hashTicket(ticket)}`, { value: userId, ttl: 300 }]]);
    expect(JSON.stringify([...entries])).not.toContain(ticket);
  });

  it('can be inspected repeatedly but consumed only once', async () => {
    const { store } = fakeStore();
    const tickets = createLoginTickets({ store, keyPrefix: 'p:', ttlSeconds: 300 });
    const { ticket } = await tickets.issue(userId);
    await expect(tickets.inspect(ticket)).resolves.toBe(userId);
    await expect(tickets.inspect(ticket)).resolves.toBe(userId);
    await expect(tickets.consume(ticket)).resolves.toBe(userId);
    await expect(tickets.consume(ticket)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(tickets.inspect(ticket)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('refuses unknown and malformed tickets; malformed ones never reach the store', async () => {
    const { store, calls } = fakeStore();
    const tickets = createLoginTickets({ store, keyPrefix: 'p:', ttlSeconds: 300 });
    await expect(tickets.consume('A'.repeat(43))).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(calls).toEqual(['getdel']);
    for (const malformed of ['', 'short', 'A'.repeat(44), `${'A'.repeat(42)}=`, `${'A'.repeat(42)}/`]) {
      await expect(tickets.consume(malformed)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
      await expect(tickets.inspect(malformed)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    }
    expect(calls).toEqual(['getdel']);
  });

  it('never accepts random input and never fails with anything but UNAUTHENTICATED or INVALID_ARGUMENT', async () => {
    const { store } = fakeStore();
    const tickets = createLoginTickets({ store, keyPrefix: 'p:', ttlSeconds: 300 });
    await tickets.issue(userId);
    const expectRefused = async (call: Promise<string>) => {
      const outcome = await call.then(
        () => 'accepted',
        (error: unknown) => error,
      );
      expect(outcome).toBeInstanceOf(AppError);
      expect(['UNAUTHENTICATED', 'INVALID_ARGUMENT']).toContain((outcome as AppError).code);
    };
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 100 }),
          fc.string({ unit: 'binary', maxLength: 60 }),
          fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => Buffer.from(bytes).toString('base64url')),
          fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
        ),
        async (input) => {
          await expectRefused(tickets.inspect(input));
          await expectRefused(tickets.consume(input));
        },
      ),
    );
  });

  it("ends every outstanding ticket of one user through the per-user index, and no one else's", async () => {
    const { store, entries } = fakeStore();
    const indexed = new Map<string, Set<string>>();
    const index: TicketIndex = {
      async add(user, key) {
        indexed.set(user, (indexed.get(user) ?? new Set()).add(key));
      },
      async revokeAll(user) {
        const keys = [...(indexed.get(user) ?? [])];
        indexed.delete(user);
        return keys.filter((key) => entries.delete(key)).length;
      },
    };
    const tickets = createLoginTickets({ store, index, keyPrefix: 'p:', ttlSeconds: 300 });
    const other = '00000000-0000-4000-8000-000000000002';
    const first = await tickets.issue(userId);
    const second = await tickets.issue(userId);
    const spent = await tickets.issue(userId);
    await tickets.consume(spent.ticket);
    const theirs = await tickets.issue(other);
    await expect(tickets.revokeAll(userId)).resolves.toBe(2);
    for (const { ticket } of [first, second]) await expect(tickets.consume(ticket)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(tickets.consume(theirs.ticket)).resolves.toBe(other);
  });

  it('cannot end tickets without an index', async () => {
    const tickets = createLoginTickets({ store: fakeStore().store, keyPrefix: 'p:', ttlSeconds: 300 });
    await expect(tickets.revokeAll(userId)).rejects.toThrow('per-user index');
  });
});
