import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import type { Logger } from '../logger.js';

export interface MigrateOptions {
  /** Connection as a role allowed to create databases and roles (the table owner). */
  adminUrl: string;
  /** The service's own connection URL: its database is created and its user becomes the app role. */
  appUrl: string;
  /** Folder holding `<timestamp>_<name>/migration.sql` (Prisma's layout). */
  migrationsDir: string;
  /** Tables the app role may only read and insert into (append-only). */
  appendOnlyTables?: readonly string[];
  /** Tables the app role may read, insert into and update, but never delete from or truncate. */
  undeletableTables?: readonly string[];
  logger: Logger;
}

const MIGRATIONS_TABLE = '_portcullis_migrations';

function ident(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`unsafe SQL identifier: ${name}`);
  return `"${name}"`;
}

/** Runs a CREATE that may race with another process; the given SQLSTATEs mean "already there". */
async function ignoreDuplicate(run: () => Promise<unknown>, ...sqlStates: string[]): Promise<void> {
  try {
    await run();
  } catch (error) {
    if (!sqlStates.includes((error as { code?: string }).code ?? '')) throw error;
  }
}

/**
 * Refuses an application role that row-level security would not bind: a superuser, a role
 * with BYPASSRLS, or the owner of a table.
 */
async function assertRowLevelSecurityApplies(client: pg.Client, appRole: string): Promise<void> {
  const { rows } = await client.query<{ rolsuper: boolean; rolbypassrls: boolean; owned: number }>(
    `SELECT r.rolsuper, r.rolbypassrls,
            (SELECT count(*)::int FROM pg_tables t WHERE t.schemaname = 'public' AND t.tableowner = r.rolname) AS owned
       FROM pg_roles r WHERE r.rolname = $1`,
    [appRole],
  );
  const role = rows[0];
  if (!role) throw new Error(`application role ${appRole} does not exist`);
  if (role.rolsuper || role.rolbypassrls || role.owned > 0) {
    throw new Error(
      `application role ${appRole} must not be a superuser, have BYPASSRLS or own tables: row-level security would not apply to it`,
    );
  }
}

/**
 * Applies the service's SQL migrations in order, once each, recording a checksum so an
 * edited migration is refused. Creates the database and the application role if missing,
 * and grants that role DML (or read+insert for append-only tables) without ownership, so
 * row-level security always applies to it.
 */
export async function migrate({
  adminUrl,
  appUrl,
  migrationsDir,
  appendOnlyTables = [],
  undeletableTables = [],
  logger,
}: MigrateOptions): Promise<string[]> {
  const app = new URL(appUrl);
  const database = decodeURIComponent(app.pathname.replace(/^\//, ''));
  const appRole = decodeURIComponent(app.username);
  if (!database || !appRole) throw new Error('DATABASE_URL must name a database and a user');

  const server = new pg.Client({ connectionString: adminUrl });
  await server.connect();
  try {
    await ignoreDuplicate(() => server.query(`CREATE DATABASE ${ident(database)}`), '42P04', '23505');
    const password = app.password ? ` PASSWORD '${decodeURIComponent(app.password).replaceAll("'", "''")}'` : '';
    // Two services racing on first start: the loser sees 42710 or a unique violation (23505).
    await ignoreDuplicate(() => server.query(`CREATE ROLE ${ident(appRole)} LOGIN NOSUPERUSER NOBYPASSRLS${password}`), '42710', '23505');
  } finally {
    await server.end();
  }

  const adminOnTarget = new URL(adminUrl);
  adminOnTarget.pathname = `/${encodeURIComponent(database)}`;
  const client = new pg.Client({ connectionString: adminOnTarget.toString() });
  await client.connect();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [MIGRATIONS_TABLE]);
    await assertRowLevelSecurityApplies(client, appRole);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const done = new Map(
      (await client.query<{ name: string; checksum: string }>(`SELECT name, checksum FROM ${MIGRATIONS_TABLE}`)).rows.map((r) => [
        r.name,
        r.checksum,
      ]),
    );
    const names = (await readdir(migrationsDir, { withFileTypes: true }))
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
    for (const name of names) {
      const sql = await readFile(join(migrationsDir, name, 'migration.sql'), 'utf8');
      const checksum = createHash('sha256').update(sql).digest('hex');
      const previous = done.get(name);
      if (previous !== undefined) {
        if (previous !== checksum) throw new Error(`migration ${name} was edited after it was applied`);
        continue;
      }
      await client.query('BEGIN');
      try {
        await client.query(sql);
        await client.query(`INSERT INTO ${MIGRATIONS_TABLE} (name, checksum) VALUES ($1, $2)`, [name, checksum]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${name} failed: ${(error as Error).message}`, { cause: error });
      }
      applied.push(name);
      logger.info({ migration: name, database }, 'migration applied');
    }

    const role = ident(appRole);
    // Nothing is granted to PUBLIC: other services' roles on the same server get no way in.
    await client.query(`REVOKE CONNECT, TEMPORARY ON DATABASE ${ident(database)} FROM PUBLIC`);
    await client.query(`REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC`);
    await client.query(`GRANT CONNECT ON DATABASE ${ident(database)} TO ${role}`);
    await client.query(`GRANT USAGE ON SCHEMA public TO ${role}`);
    await client.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`);
    await client.query(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${role}`);
    await client.query(`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO ${role}`);
    await client.query(`REVOKE ALL ON ${MIGRATIONS_TABLE} FROM ${role}`);
    for (const table of appendOnlyTables) await client.query(`REVOKE UPDATE, DELETE, TRUNCATE ON ${ident(table)} FROM ${role}`);
    for (const table of undeletableTables) await client.query(`REVOKE DELETE, TRUNCATE ON ${ident(table)} FROM ${role}`);
  } finally {
    await client.query('SELECT pg_advisory_unlock(hashtext($1))', [MIGRATIONS_TABLE]).catch(() => undefined);
    await client.end();
  }
  return applied;
}
