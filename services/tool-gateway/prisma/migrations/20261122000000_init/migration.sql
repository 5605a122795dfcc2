CREATE TABLE tools (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL,
  assistant_id uuid NOT NULL,
  name text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
  description text NOT NULL DEFAULT '',
  endpoint_url text NOT NULL CHECK (endpoint_url ~ '^https?://'),
  capability text NOT NULL DEFAULT 'tools:invoke',
  created_at timestamptz NOT NULL DEFAULT now(),
  -- The tenant is part of the key so a name taken in one tenant never shows through in another.
  UNIQUE (tenant_id, assistant_id, name)
);

ALTER TABLE tools ENABLE ROW LEVEL SECURITY;
ALTER TABLE tools FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tools
  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
