import { randomBytes } from 'node:crypto';
import { migrate, createLogger } from '@portcullis/kit';
import pg from 'pg';

/** Local infrastructure the integration and end-to-end tests use for real. */
export const infra = {
  postgresAdminUrl: process.env['TEST_POSTGRES_ADMIN_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  redisUrl: process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379',
  natsUrl: process.env['TEST_NATS_URL'] ?? 'nats://127.0.0.1:4222',
};

/** Unique per test process, so concurrent runs never share databases, keys or subjects. */
export const testRunId = `t${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;

/** Application role the services connect as in tests: not an owner, cannot bypass RLS. */
export const testAppRole = 'portcullis_test_app';

export interface TestDatabase {
  /** Connection as the application role (RLS applies). */
  appUrl: string;
  /** Connection as the owner, for fixtures and assertions that must see everything. */
  ownerUrl: string;
  drop(): Promise<void>;
}

function withDatabase(url: string, database: string, user?: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  if (user !== undefined) {
    u.username = user;
    u.password = '';
  }
  return u.toString();
}

/** Creates a fresh database for one service, applies its migrations and returns its URLs. */
export async function createTestDatabase(
  service: string,
  migrationsDir: string,
  options: { appendOnlyTables?: readonly string[]; undeletableTables?: readonly string[] } = {},
): Promise<TestDatabase> {
  const database = `pc_${testRunId}_${service.replaceAll('-', '_')}_${randomBytes(2).toString('hex')}`;
  const appUrl = withDatabase(infra.postgresAdminUrl, database, testAppRole);
  await migrate({
    adminUrl: infra.postgresAdminUrl,
    appUrl,
    migrationsDir,
    appendOnlyTables: options.appendOnlyTables ?? [],
    undeletableTables: options.undeletableTables ?? [],
    logger: createLogger({ name: 'test-migrate', level: 'silent' }),
  });
  return {
    appUrl,
    ownerUrl: withDatabase(infra.postgresAdminUrl, database),
    async drop() {
      const client = new pg.Client({ connectionString: infra.postgresAdminUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function pollUntil<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  { timeoutMs = 10_000, intervalMs = 50, what = 'condition' } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`, { cause: lastError });
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export type PgClient = pg.Client;

/** Runs `fn` with a plain pg connection (as whichever role the URL names), closing it after. */
export async function withPg<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
