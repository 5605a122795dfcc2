-- Team memberships: which member of a tenant belongs to which of its teams. A row needs both
-- the team and the tenant membership, of the same tenant; removing either (a team, or a
-- person from the tenant) removes the row with it.

-- The team side of the composite key below: a team id together with its own tenant.
ALTER TABLE teams ADD CONSTRAINT teams_tenant_id_id_key UNIQUE (tenant_id, id);

CREATE TABLE team_members (
  tenant_id uuid NOT NULL,
  team_id uuid NOT NULL,
  user_id uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (team_id, user_id),
  FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, user_id) REFERENCES memberships (tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX team_members_tenant_id_user_id_idx ON team_members (tenant_id, user_id);

ALTER TABLE team_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE team_members FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON team_members
  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
