import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { migrate } from '@portcullis/kit';
import { PrincipalKind, Role } from '@portcullis/proto/common';
import { createTestDatabase, infra, testRunId, withPg, type PgClient, type TestDatabase } from '@portcullis/test';
import { logger, migrationsDir, startFakePolicy, startRegistry, type FakePolicy, type Registry } from './harness.js';

const tables = ['tenants', 'assistants', 'domains', 'teams', 'memberships', 'team_members', 'chat_groups', 'chat_group_members'] as const;

/** Each table's own tenant column: `tenants` is keyed by its id. */
const tenantColumn = (table: (typeof tables)[number]) => (table === 'tenants' ? 'id' : 'tenant_id');

interface Seeded {
  tenantId: string;
  assistantId: string;
  teamId: string;
  chatGroupId: string;
  memberId: string;
  ownerUserId: string;
}

describe('row-level security of the tenant registry', () => {
  let db: TestDatabase;
  let policy: FakePolicy;
  let registry: Registry;
  let a: Seeded;
  let b: Seeded;

  const actorOf = ({ tenantId, ownerUserId }: Seeded) => ({ kind: PrincipalKind.USER, id: ownerUserId, tenantId });

  async function seed(label: string): Promise<Seeded> {
    const ownerUserId = randomUUID();
    const { tenant } = await registry.client.createTenant({ name: `Tenant ${label}`, ownerUserId });
    const tenantId = tenant!.id;
    const { assistant } = await registry.client.createAssistant({ tenantId, name: 'Concierge' });
    await registry.addVerifiedDomain({ tenantId, assistantId: assistant!.id, host: `${label}.${testRunId}.rls.example` });
    const { team } = await registry.client.createTeam({ tenantId, name: 'Ops' });
    const memberId = randomUUID();
    await registry.client.addMember({
      tenantId,
      userId: memberId,
      role: Role.ADMIN,
      actor: { kind: PrincipalKind.USER, id: ownerUserId, tenantId },
    });
    await registry.client.addTeamMember({
      tenantId,
      teamId: team!.id,
      userId: memberId,
      actor: { kind: PrincipalKind.USER, id: ownerUserId, tenantId },
    });
    const { chatGroup } = await registry.client.createChatGroup({
      tenantId,
      assistantId: assistant!.id,
      name: 'Support',
      actor: { kind: PrincipalKind.USER, id: ownerUserId, tenantId },
    });
    await registry.client.addChatGroupMember({
      tenantId,
      chatGroupId: chatGroup!.id,
      userId: memberId,
      actor: { kind: PrincipalKind.USER, id: ownerUserId, tenantId },
    });
    return { tenantId, assistantId: assistant!.id, teamId: team!.id, chatGroupId: chatGroup!.id, memberId, ownerUserId };
  }

  beforeAll(async () => {
    db = await createTestDatabase('tenant-registry', migrationsDir);
    policy = await startFakePolicy();
    registry = await startRegistry(db, policy.address);
    a = await seed('a');
    b = await seed('b');
  });

  afterAll(async () => {
    await registry.stop();
    await policy.stop();
    await db.drop();
  });

  it('connects as a role that is neither superuser nor able to bypass RLS, on tables that force it', async () => {
    const role = await withPg(
      db.appUrl,
      async (c) =>
        (
          await c.query<{ rolsuper: boolean; rolbypassrls: boolean }>(
            'SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user',
          )
        ).rows[0],
    );
    expect(role).toEqual({ rolsuper: false, rolbypassrls: false });
    const flags = await withPg(
      db.ownerUrl,
      async (c) =>
        (
          await c.query<{ relname: string; on: boolean; forced: boolean; policy: boolean }>(
            `SELECT relname, relrowsecurity AS on, relforcerowsecurity AS forced,
                    EXISTS (SELECT 1 FROM pg_policies p WHERE p.tablename = relname AND p.policyname = 'tenant_isolation') AS policy
             FROM pg_class WHERE relname = ANY($1) AND relkind = 'r' ORDER BY relname`,
            [tables],
          )
        ).rows,
    );
    expect(flags).toEqual([...tables].sort().map((relname) => ({ relname, on: true, forced: true, policy: true })));
  });

  it('shows the app role zero rows of every table when no tenant is set', async () => {
    for (const table of tables) {
      const [asApp, asOwner] = await Promise.all([
        withPg(db.appUrl, async (c) => (await c.query(`SELECT * FROM ${table}`)).rowCount),
        withPg(db.ownerUrl, async (c) => (await c.query(`SELECT * FROM ${table}`)).rowCount),
      ]);
      expect({ table, rows: asApp }).toEqual({ table, rows: 0 });
      expect(asOwner).toBeGreaterThanOrEqual(2);
    }
  });

  it('with tenant A set, shows no row of tenant B and refuses to write rows for B', async () => {
    await withPg(db.appUrl, async (c: PgClient) => {
      await c.query('BEGIN');
      await c.query("SELECT set_config('app.tenant_id', $1, true)", [a.tenantId]);
      for (const table of tables) {
        const column = tenantColumn(table);
        const rows = (await c.query<{ owner: string }>(`SELECT ${column}::text AS owner FROM ${table}`)).rows;
        expect({ table, seesOwnRows: rows.length > 0 }).toEqual({ table, seesOwnRows: true });
        expect({ table, owners: [...new Set(rows.map((row) => row.owner))] }).toEqual({ table, owners: [a.tenantId] });
      }
      const updated = await c.query("UPDATE tenants SET status = 'suspended' WHERE id = $1", [b.tenantId]);
      expect(updated.rowCount).toBe(0);

      const inserts: Record<(typeof tables)[number], [string, unknown[]]> = {
        tenants: ['INSERT INTO tenants (id, name) VALUES ($1, $2)', [randomUUID(), 'Intruder']],
        assistants: ['INSERT INTO assistants (tenant_id, name) VALUES ($1, $2)', [b.tenantId, 'Intruder']],
        domains: [
          'INSERT INTO domains (tenant_id, assistant_id, host, verification_token) VALUES ($1, $2, $3, $4)',
          [b.tenantId, b.assistantId, `intruder.${testRunId}.example`, randomBytes(16).toString('hex')],
        ],
        teams: ['INSERT INTO teams (tenant_id, name) VALUES ($1, $2)', [b.tenantId, 'Intruders']],
        memberships: ["INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, 'owner')", [b.tenantId, randomUUID()]],
        team_members: ['INSERT INTO team_members (tenant_id, team_id, user_id) VALUES ($1, $2, $3)', [b.tenantId, b.teamId, b.memberId]],
        chat_groups: [
          'INSERT INTO chat_groups (tenant_id, assistant_id, name) VALUES ($1, $2, $3)',
          [b.tenantId, b.assistantId, 'Intruders'],
        ],
        chat_group_members: [
          'INSERT INTO chat_group_members (tenant_id, chat_group_id, user_id) VALUES ($1, $2, $3)',
          [b.tenantId, b.chatGroupId, b.ownerUserId],
        ],
      };
      for (const table of tables) {
        const [sql, values] = inserts[table];
        await c.query('SAVEPOINT attempt');
        await expect(c.query(sql, values)).rejects.toThrow(/row-level security/);
        await c.query('ROLLBACK TO SAVEPOINT attempt');
      }
      await c.query('ROLLBACK');
    });
    const stillActive = await withPg(
      db.ownerUrl,
      async (c) => (await c.query<{ status: string }>('SELECT status FROM tenants WHERE id = $1', [b.tenantId])).rows,
    );
    expect(stillActive).toEqual([{ status: 'active' }]);
  });

  it("keeps tenant A's team members invisible and unreachable with tenant B set", async () => {
    await withPg(db.appUrl, async (c: PgClient) => {
      await c.query('BEGIN');
      await c.query("SELECT set_config('app.tenant_id', $1, true)", [b.tenantId]);
      const seen = await c.query('SELECT * FROM team_members WHERE tenant_id = $1 OR team_id = $2', [a.tenantId, a.teamId]);
      expect(seen.rowCount).toBe(0);
      const deleted = await c.query('DELETE FROM team_members WHERE team_id = $1', [a.teamId]);
      expect(deleted.rowCount).toBe(0);
      await c.query('ROLLBACK');
    });
    // Through the service: tenant B's id never reaches tenant A's team.
    expect((await registry.client.listUserTeams({ tenantId: b.tenantId, userId: a.memberId })).teams).toEqual([]);
    expect((await registry.client.listTeams({ tenantId: b.tenantId })).teams.map((t) => t.id)).toEqual([b.teamId]);
    await expect(
      registry.client.addTeamMember({ tenantId: b.tenantId, teamId: a.teamId, userId: b.memberId, actor: actorOf(b) }),
    ).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(
      registry.client.removeTeamMember({ tenantId: b.tenantId, teamId: a.teamId, userId: a.memberId, actor: actorOf(b) }),
    ).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    const stillThere = await withPg(
      db.ownerUrl,
      async (c) => (await c.query('SELECT 1 FROM team_members WHERE team_id = $1 AND user_id = $2', [a.teamId, a.memberId])).rowCount,
    );
    expect(stillThere).toBe(1);
  });

  it("refuses, even to the owner, a team member row joining one tenant's member to another tenant's team", async () => {
    await withPg(db.ownerUrl, async (c: PgClient) => {
      await expect(
        c.query('INSERT INTO team_members (tenant_id, team_id, user_id) VALUES ($1, $2, $3)', [a.tenantId, b.teamId, a.memberId]),
      ).rejects.toThrow(/foreign key/);
      await expect(
        c.query('INSERT INTO team_members (tenant_id, team_id, user_id) VALUES ($1, $2, $3)', [b.tenantId, b.teamId, a.memberId]),
      ).rejects.toThrow(/foreign key/);
    });
  });

  it("keeps tenant A's chat groups and their members invisible and unreachable with tenant B set", async () => {
    await withPg(db.appUrl, async (c: PgClient) => {
      await c.query('BEGIN');
      await c.query("SELECT set_config('app.tenant_id', $1, true)", [b.tenantId]);
      const groups = await c.query('SELECT * FROM chat_groups WHERE tenant_id = $1 OR id = $2', [a.tenantId, a.chatGroupId]);
      expect(groups.rowCount).toBe(0);
      const members = await c.query('SELECT * FROM chat_group_members WHERE tenant_id = $1 OR chat_group_id = $2', [
        a.tenantId,
        a.chatGroupId,
      ]);
      expect(members.rowCount).toBe(0);
      const deleted = await c.query('DELETE FROM chat_group_members WHERE chat_group_id = $1', [a.chatGroupId]);
      expect(deleted.rowCount).toBe(0);
      const renamed = await c.query("UPDATE chat_groups SET name = 'Taken' WHERE id = $1", [a.chatGroupId]);
      expect(renamed.rowCount).toBe(0);
      await c.query('ROLLBACK');
    });
    // Through the service: tenant B's id never reaches tenant A's assistant, group or members.
    const actor = actorOf(b);
    expect(
      (await registry.client.listChatGroups({ tenantId: b.tenantId, assistantId: b.assistantId })).chatGroups.map((g) => g.id),
    ).toEqual([b.chatGroupId]);
    await expect(registry.client.listChatGroups({ tenantId: b.tenantId, assistantId: a.assistantId })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(registry.client.listChatGroupMembers({ tenantId: b.tenantId, chatGroupId: a.chatGroupId })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(
      registry.client.createChatGroup({ tenantId: b.tenantId, assistantId: a.assistantId, name: 'Intruders', actor }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(
      registry.client.addChatGroupMember({ tenantId: b.tenantId, chatGroupId: a.chatGroupId, userId: b.memberId, actor }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(
      registry.client.removeChatGroupMember({ tenantId: b.tenantId, chatGroupId: a.chatGroupId, userId: a.memberId, actor }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const stillThere = await withPg(db.ownerUrl, async (c) => ({
      members: (await c.query('SELECT user_id::text FROM chat_group_members WHERE chat_group_id = $1', [a.chatGroupId])).rows,
      groups: (await c.query('SELECT name FROM chat_groups WHERE assistant_id = $1', [a.assistantId])).rows,
    }));
    expect(stillThere).toEqual({ members: [{ user_id: a.memberId }], groups: [{ name: 'Support' }] });
  });

  it("refuses, even to the owner, chat group rows joining one tenant's rows to another's", async () => {
    await withPg(db.ownerUrl, async (c: PgClient) => {
      // A group of tenant A in tenant B's assistant.
      await expect(
        c.query('INSERT INTO chat_groups (tenant_id, assistant_id, name) VALUES ($1, $2, $3)', [a.tenantId, b.assistantId, 'Cross']),
      ).rejects.toThrow(/foreign key/);
      // Tenant A's member in tenant B's group, under either tenant's id.
      await expect(
        c.query('INSERT INTO chat_group_members (tenant_id, chat_group_id, user_id) VALUES ($1, $2, $3)', [
          a.tenantId,
          b.chatGroupId,
          a.memberId,
        ]),
      ).rejects.toThrow(/foreign key/);
      await expect(
        c.query('INSERT INTO chat_group_members (tenant_id, chat_group_id, user_id) VALUES ($1, $2, $3)', [
          b.tenantId,
          b.chatGroupId,
          a.memberId,
        ]),
      ).rejects.toThrow(/foreign key/);
    });
  });

  it('crosses tenants only through narrow SECURITY DEFINER functions pinned to the public schema', async () => {
    const functions = await withPg(
      db.ownerUrl,
      async (c) =>
        (
          await c.query<{ proname: string; prosecdef: boolean; proconfig: string[] }>(
            "SELECT proname, prosecdef, proconfig FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY proname",
          )
        ).rows,
    );
    expect(functions).toEqual(
      ['list_user_tenants', 'resolve_assistant', 'resolve_host'].map((proname) => ({
        proname,
        prosecdef: true,
        proconfig: ['search_path=public'],
      })),
    );
    const resolved = await withPg(
      db.appUrl,
      async (c) => (await c.query<Record<string, unknown>>(`SELECT * FROM resolve_host($1)`, [`b.${testRunId}.rls.example`])).rows,
    );
    expect(resolved).toEqual([
      { tenant_id: b.tenantId, tenant_name: 'Tenant b', tenant_status: 'active', tenant_plan: 'free', assistant_id: b.assistantId },
    ]);
  });
});

describe('lookup functions when the migrating owner is not a superuser', () => {
  const suffix = `${testRunId}_${randomBytes(2).toString('hex')}`;
  const ownerRole = `pc_${suffix}_owner`;
  const appRole = `pc_${suffix}_app`;
  const database = `pc_${suffix}_tr_owner`;
  const url = (user: string, db: string) => {
    const u = new URL(infra.postgresAdminUrl);
    u.username = user;
    u.password = '';
    u.pathname = `/${db}`;
    return u.toString();
  };

  beforeAll(async () => {
    await withPg(infra.postgresAdminUrl, (c) => c.query(`CREATE ROLE "${ownerRole}" LOGIN NOSUPERUSER NOBYPASSRLS CREATEDB CREATEROLE`));
    await migrate({ adminUrl: url(ownerRole, 'postgres'), appUrl: url(appRole, database), migrationsDir, logger });
  });

  afterAll(async () => {
    await withPg(infra.postgresAdminUrl, async (c) => {
      await c.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      await c.query(`DROP ROLE IF EXISTS "${appRole}"`);
      await c.query(`DROP ROLE IF EXISTS "${ownerRole}"`);
    });
  });

  it('still resolves across tenants, while the app role alone sees nothing', async () => {
    const tenantId = randomUUID();
    const userId = randomUUID();
    await withPg(url(appRole, database), async (c) => {
      await c.query('BEGIN');
      await c.query("SELECT set_config('app.tenant_id', $1, true)", [tenantId]);
      await c.query("INSERT INTO tenants (id, name) VALUES ($1, 'Owned')", [tenantId]);
      const assistant = await c.query<{ id: string }>("INSERT INTO assistants (tenant_id, name) VALUES ($1, 'Bot') RETURNING id", [
        tenantId,
      ]);
      await c.query(
        "INSERT INTO domains (tenant_id, assistant_id, host, verification_token, verified_at) VALUES ($1, $2, 'owned.example', $3, now())",
        [tenantId, assistant.rows[0]!.id, randomBytes(16).toString('hex')],
      );
      await c.query("INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, 'owner')", [tenantId, userId]);
      await c.query('COMMIT');
    });
    await withPg(url(appRole, database), async (c) => {
      expect((await c.query('SELECT * FROM tenants')).rowCount).toBe(0);
      expect((await c.query("SELECT tenant_id FROM resolve_host('owned.example')")).rows).toEqual([{ tenant_id: tenantId }]);
      expect((await c.query('SELECT tenant_name, role FROM list_user_tenants($1)', [userId])).rows).toEqual([
        { tenant_name: 'Owned', role: 'owner' },
      ]);
    });
  });
});
