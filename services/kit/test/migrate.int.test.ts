import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate } from '../src/db/migrate.js';
import { createLogger } from '../src/logger.js';

const logger = createLogger({ name: 'migrate-test', level: 'silent' });
// The kit cannot use @portcullis/test (that package depends on the kit), so this test keeps its own few helpers.
const adminUrl = process.env['TEST_POSTGRES_ADMIN_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const runId = randomBytes(4).toString('hex');

async function withPg<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function urlAs(base: string, user: string, database?: string): string {
  const url = new URL(base);
  url.username = user;
  if (database) url.pathname = `/${database}`;
  return url.toString();
}

describe('migration runner', () => {
  let dir: string;
  const database = `pc_kit_migrate_${runId}`;
  const outsider = `pc_outsider_${runId}`;
  const db = { appUrl: urlAs(adminUrl, 'portcullis_test_app', database), ownerUrl: urlAs(adminUrl, new URL(adminUrl).username, database) };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-migrations-'));
    mkdirSync(join(dir, '20260101000000_init'));
    writeFileSync(
      join(dir, '20260101000000_init', 'migration.sql'),
      'CREATE TABLE things (id int PRIMARY KEY); CREATE FUNCTION secret_lookup() RETURNS int LANGUAGE sql AS $$ SELECT 42 $$;',
    );
    await migrate({ adminUrl, appUrl: db.appUrl, migrationsDir: dir, logger });
    await withPg(adminUrl, (c) => c.query(`CREATE ROLE ${outsider} LOGIN`));
  });

  afterAll(async () => {
    await withPg(adminUrl, async (c) => {
      await c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await c.query(`DROP ROLE IF EXISTS ${outsider}`);
    });
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies each migration once and refuses one edited after it was applied', async () => {
    const original = readFileSync(join(dir, '20260101000000_init', 'migration.sql'), 'utf8');
    await expect(migrate({ adminUrl, appUrl: db.appUrl, migrationsDir: dir, logger })).resolves.toEqual([]);
    writeFileSync(join(dir, '20260101000000_init', 'migration.sql'), 'CREATE TABLE things (id bigint PRIMARY KEY);');
    await expect(migrate({ adminUrl, appUrl: db.appUrl, migrationsDir: dir, logger })).rejects.toThrow(/edited after it was applied/);
    writeFileSync(join(dir, '20260101000000_init', 'migration.sql'), original);
  });

  it('refuses an application role that row-level security would not bind', async () => {
    const superuserApp = urlAs(db.appUrl, 'postgres');
    await expect(migrate({ adminUrl, appUrl: superuserApp, migrationsDir: dir, logger })).rejects.toThrow(/must not be a superuser/);
  });

  it('lets no other role connect to the database or execute its functions', async () => {
    await expect(withPg(urlAs(adminUrl, outsider, database), (c) => c.query('SELECT 1'))).rejects.toThrow(/permission denied/);
    const granted = await withPg(
      db.ownerUrl,
      async (c) =>
        (
          await c.query<{ app: boolean; public: boolean }>(
            "SELECT has_function_privilege($1, 'secret_lookup()', 'EXECUTE') AS app, has_function_privilege($2, 'secret_lookup()', 'EXECUTE') AS public",
            [new URL(db.appUrl).username, outsider],
          )
        ).rows[0],
    );
    expect(granted).toEqual({ app: true, public: false });
  });
});
