-- Tenants and everything they own. Every table is protected by row-level security keyed on
-- the transaction setting app.tenant_id; the application role never owns a table and never
-- bypasses RLS, so a query that forgets the tenant sees zero rows.

CREATE TABLE tenants (
  id uuid PRIMARY KEY,
  name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE assistants (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, id)
);

CREATE TABLE domains (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  assistant_id uuid NOT NULL,
  -- Unique across all tenants: one host routes to exactly one assistant.
  host text NOT NULL UNIQUE CHECK (host = lower(host) AND position(':' IN host) = 0 AND char_length(host) BETWEEN 1 AND 253),
  created_at timestamptz NOT NULL DEFAULT now(),
  -- The assistant must belong to the same tenant as the domain.
  FOREIGN KEY (tenant_id, assistant_id) REFERENCES assistants (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX domains_tenant_id_idx ON domains (tenant_id);

CREATE TABLE teams (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX teams_tenant_id_idx ON teams (tenant_id);

CREATE TABLE memberships (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  user_id uuid NOT NULL,
  role text NOT NULL CHECK (role IN ('owner', 'admin', 'user')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_user_id_idx ON memberships (user_id);

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
  USING (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE assistants ENABLE ROW LEVEL SECURITY;
ALTER TABLE assistants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON assistants
  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE domains ENABLE ROW LEVEL SECURITY;
ALTER TABLE domains FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON domains
  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE teams ENABLE ROW LEVEL SECURITY;
ALTER TABLE teams FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON teams
  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE memberships FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON memberships
  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- Lookups that cross tenants by nature. They run as their owner (the role applying this
-- migration) through SECURITY DEFINER, take one key and return only the columns a caller
-- needs; the application role reaches the data behind them in no other way.

CREATE FUNCTION resolve_host(p_host text)
RETURNS TABLE (tenant_id uuid, tenant_name text, tenant_status text, assistant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
AS $$
  SELECT t.id, t.name, t.status, d.assistant_id
  FROM domains d JOIN tenants t ON t.id = d.tenant_id
  WHERE d.host = lower(p_host)
$$;

CREATE FUNCTION resolve_assistant(p_assistant_id uuid)
RETURNS TABLE (tenant_id uuid, tenant_name text, tenant_status text, assistant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
AS $$
  SELECT t.id, t.name, t.status, a.id
  FROM assistants a JOIN tenants t ON t.id = a.tenant_id
  WHERE a.id = p_assistant_id
$$;

CREATE FUNCTION list_user_tenants(p_user_id uuid)
RETURNS TABLE (tenant_id uuid, tenant_name text, role text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
AS $$
  SELECT t.id, t.name, m.role
  FROM memberships m JOIN tenants t ON t.id = m.tenant_id
  WHERE m.user_id = p_user_id
  ORDER BY t.name, t.id
$$;

-- FORCE ROW LEVEL SECURITY applies to the owner too. A superuser owner bypasses it anyway;
-- for an owner that is not a superuser, these read-only policies let the functions above
-- (which run as the owner) see the rows they join. They name the owner only: the
-- application role gains nothing from them.
DO $$
BEGIN
  EXECUTE format('CREATE POLICY definer_lookup ON tenants FOR SELECT TO %I USING (true)', current_user);
  EXECUTE format('CREATE POLICY definer_lookup ON assistants FOR SELECT TO %I USING (true)', current_user);
  EXECUTE format('CREATE POLICY definer_lookup ON domains FOR SELECT TO %I USING (true)', current_user);
  EXECUTE format('CREATE POLICY definer_lookup ON memberships FOR SELECT TO %I USING (true)', current_user);
END
$$;
