-- Roles held on one assistant, per-user permissions and the tenant's plan.

-- A role is held tenant-wide (assistant_id NULL) or on one assistant; the owner only tenant-wide.
ALTER TABLE role_assignments ADD COLUMN assistant_id uuid;
ALTER TABLE role_assignments DROP CONSTRAINT role_assignments_tenant_id_subject_role_key;
CREATE UNIQUE INDEX role_assignments_grant_key
  ON role_assignments (tenant_id, subject, role, COALESCE(assistant_id, '00000000-0000-0000-0000-000000000000'::uuid));
ALTER TABLE role_assignments ADD CONSTRAINT role_assignments_owner_tenant_wide CHECK (assistant_id IS NULL OR role <> 'role:owner');
ALTER TABLE role_assignments ADD CONSTRAINT role_assignments_person CHECK (subject LIKE 'user:%');

-- One capability held by one person on top of their roles, tenant-wide or on one assistant.
CREATE TABLE permissions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL,
  subject text NOT NULL CHECK (subject LIKE 'user:%'),
  object text NOT NULL CHECK (object ~ '^[a-z][a-z0-9_-]{0,31}$'),
  action text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_-]{0,31}$'),
  assistant_id uuid,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX permissions_grant_key
  ON permissions (tenant_id, subject, object, action, COALESCE(assistant_id, '00000000-0000-0000-0000-000000000000'::uuid));

ALTER TABLE permissions ENABLE ROW LEVEL SECURITY;
ALTER TABLE permissions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON permissions
  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- The tenant's plan (tier); a tenant without a row is on the configured default plan.
CREATE TABLE tenant_plans (
  tenant_id uuid PRIMARY KEY,
  plan text NOT NULL CHECK (plan ~ '^[a-z][a-z0-9_-]{0,31}$'),
  updated_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE tenant_plans ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_plans FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_plans
  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
