-- API keys: `pck_<id>_<secret>`. Only the SHA-256 of the secret is stored (hex); the key is
-- shown once, at creation or rotation. A TENANT key is tenant-wide (created by an owner or an
-- admin); a USER key acts as user_id and never exceeds that user's current rights.
--
-- Unlike the global identity tables, API keys are tenant-owned: row-level security applies
-- like on every other service's tenant tables, and the application role reads and writes them
-- only inside a transaction that set app.tenant_id.
--
-- Verification is the exception: a presented key names its id, not its tenant, so the lookup
-- by id happens before any tenant is known. It goes through find_api_key below, a SECURITY
-- DEFINER function that takes one id and returns only what verification needs (no name, no
-- creator, no timestamps of use). Everything after it (recording the time of use) runs in the
-- key's tenant scope again.

CREATE TABLE api_keys (
  -- 16 characters [a-z0-9]: the public half of the key, used to look it up.
  id text PRIMARY KEY CHECK (id ~ '^[a-z0-9]{16}$'),
  tenant_id uuid NOT NULL,
  kind text NOT NULL CHECK (kind IN ('tenant', 'user')),
  -- The user a 'user' key acts as; NULL for 'tenant' keys.
  user_id uuid,
  created_by uuid NOT NULL,
  name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
  -- Lowercase hex SHA-256 of the secret half; the secret itself never reaches the database.
  secret_hash text NOT NULL CHECK (secret_hash ~ '^[0-9a-f]{64}$'),
  scopes text[] NOT NULL CHECK (cardinality(scopes) BETWEEN 1 AND 64),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  revoked_at timestamptz,
  last_used_at timestamptz,
  -- Set on a key replaced by rotation: it keeps working until then.
  grace_until timestamptz,
  rotated_from text REFERENCES api_keys (id),
  CONSTRAINT api_keys_user_key_has_user CHECK ((kind = 'user') = (user_id IS NOT NULL))
);

CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id, created_at DESC);

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_keys
  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

CREATE FUNCTION find_api_key(p_id text)
RETURNS TABLE (
  id text, tenant_id uuid, kind text, user_id uuid, secret_hash text, scopes text[],
  expires_at timestamptz, revoked_at timestamptz, grace_until timestamptz
)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
AS $$
  SELECT k.id, k.tenant_id, k.kind, k.user_id, k.secret_hash, k.scopes, k.expires_at, k.revoked_at, k.grace_until
  FROM api_keys k
  WHERE k.id = p_id
$$;

-- FORCE ROW LEVEL SECURITY applies to the owner too. A superuser owner bypasses it anyway; for
-- an owner that is not a superuser this read-only policy lets find_api_key (which runs as the
-- owner) see the row. It names the owner only: the application role gains nothing from it.
DO $$
BEGIN
  EXECUTE format('CREATE POLICY definer_lookup ON api_keys FOR SELECT TO %I USING (true)', current_user);
END
$$;
