-- Chat groups: named groups of a tenant's members inside one of its assistants. A group needs
-- its assistant, of the same tenant; a member row needs both the group and the tenant
-- membership, of the same tenant. Removing the assistant, the group, or the person from the
-- tenant removes the rows with it.

CREATE TABLE chat_groups (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL,
  assistant_id uuid NOT NULL,
  name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
  created_at timestamptz NOT NULL DEFAULT now(),
  -- The group side of the composite key of chat_group_members: a group id with its own tenant.
  UNIQUE (tenant_id, id),
  UNIQUE (assistant_id, name),
  FOREIGN KEY (tenant_id, assistant_id) REFERENCES assistants (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX chat_groups_tenant_id_idx ON chat_groups (tenant_id);

CREATE TABLE chat_group_members (
  tenant_id uuid NOT NULL,
  chat_group_id uuid NOT NULL,
  user_id uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (chat_group_id, user_id),
  FOREIGN KEY (tenant_id, chat_group_id) REFERENCES chat_groups (tenant_id, id) ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, user_id) REFERENCES memberships (tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX chat_group_members_tenant_id_user_id_idx ON chat_group_members (tenant_id, user_id);

ALTER TABLE chat_groups ENABLE ROW LEVEL SECURITY;
ALTER TABLE chat_groups FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chat_groups
  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE chat_group_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE chat_group_members FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chat_group_members
  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
