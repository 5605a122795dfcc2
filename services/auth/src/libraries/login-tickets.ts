import { createHash, randomBytes } from 'node:crypto';
import { AppError } from '@portcullis/kit';

/** The Redis commands tickets need (ioredis satisfies it; unit tests pass a map). */
export interface TicketStore {
  set(key: string, value: string, expiryMode: 'EX', seconds: number): Promise<unknown>;
  get(key: string): Promise<string | null>;
  /** Atomic read-and-delete (Redis ≥ 6.2 GETDEL). */
  getdel(key: string): Promise<string | null>;
}

/**
 * Per-user index of outstanding tickets, so every ticket of one user can be ended at once
 * (when Google/GitHub sign-in reclaims an account whose password someone else may know).
 */
export interface TicketIndex {
  /** Records that the ticket stored under `ticketKey` belongs to the user, for at least `ttlSeconds`. */
  add(userId: string, ticketKey: string, ttlSeconds: number): Promise<void>;
  /** Deletes every indexed ticket of the user and the index; returns how many tickets were live. */
  revokeAll(userId: string): Promise<number>;
}

export interface LoginTicketsDeps {
  store: TicketStore;
  /** Without it, revokeAll is unavailable (and throws). */
  index?: TicketIndex;
  /** Prefix of every Redis key, e.g. `portcullis:`. */
  keyPrefix: string;
  ttlSeconds: number;
}

/** 32 random bytes in unpadded base64url. */
const TICKET_SHAPE = /^[A-Za-z0-9_-]{43}$/;

const invalidTicket = () => new AppError('UNAUTHENTICATED', 'invalid or expired login ticket');

/** SHA-256 of the ticket, hex: the only form of a ticket that is ever stored. */
export function hashTicket(ticket: string): string {
  return createHash('sha256').update(ticket).digest('hex');
}

/**
 * Single-use login tickets: proof that a password was verified, exchanged once for a
 * tenant-bound token. Redis holds only the SHA-256 of each ticket, with a TTL.
 */
export function createLoginTickets({ store, index, keyPrefix, ttlSeconds }: LoginTicketsDeps) {
  const keyOf = (ticket: string): string => {
    if (!TICKET_SHAPE.test(ticket)) throw invalidTicket();
    return `${keyPrefix}login-ticket:${hashTicket(ticket)}`;
  };

  return {
    async issue(userId: string): Promise<{ ticket: string; expiresInSeconds: number }> {
      const ticket = randomBytes(32).toString('base64url');
      const key = keyOf(ticket);
      await store.set(key, userId, 'EX', ttlSeconds);
      // Indexed before it is handed out: a ticket revokeAll cannot find is never returned.
      await index?.add(userId, key, ttlSeconds);
      return { ticket, expiresInSeconds: ttlSeconds };
    },
    /** Ends every outstanding ticket of the user; returns how many were live. */
    revokeAll(userId: string): Promise<number> {
      if (!index) return Promise.reject(new Error('login tickets were created without a per-user index'));
      return index.revokeAll(userId);
    },
    /** The user a valid ticket belongs to; the ticket stays usable. */
    async inspect(ticket: string): Promise<string> {
      const userId = await store.get(keyOf(ticket));
      if (userId === null) throw invalidTicket();
      return userId;
    },
    /** The user a valid ticket belongs to; the ticket is gone afterwards, whoever asks next. */
    async consume(ticket: string): Promise<string> {
      const userId = await store.getdel(keyOf(ticket));
      if (userId === null) throw invalidTicket();
      return userId;
    },
  };
}

export type LoginTickets = ReturnType<typeof createLoginTickets>;
