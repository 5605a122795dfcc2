-- Robots ("assign a PC"): a robot acts for its creator in some of the creator's teams, with a
-- token that is a JWT signed by auth's signing key (typ robot+jwt). The token is not stored
-- anywhere: it is verifiable, not a secret to compare. What is stored is the registration
-- the token must match on every verification, and whether (and when) it was revoked.
--
-- Robots are tenant-owned: row-level security applies like on api_keys, and the application
-- role reads and writes them only inside a transaction that set app.tenant_id. Unlike API keys,
-- verification needs no SECURITY DEFINER lookup: the tenant comes from the token's verified
-- signature, so the row is read in that tenant's scope.

CREATE TABLE robots (
  id uuid PRIMARY KEY,
  tenant_id uuid NOT NULL,
  name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
  -- The signed-in user who created the robot; it never exceeds their current rights.
  creator_id uuid NOT NULL,
  -- The teams the robot acts in (checked against the creator's teams when it was created).
  team_ids uuid[] NOT NULL CHECK (cardinality(team_ids) BETWEEN 1 AND 20),
  -- The kid of the signing key that signed its token: verification accepts only that key, so
  -- every robot of one key can be revoked at once (UPDATE robots SET revoked_at ... WHERE signing_kid = ...).
  signing_kid text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- NULL: the token does not expire.
  expires_at timestamptz,
  revoked_at timestamptz,
  revoked_by uuid,
  CONSTRAINT robots_revocation_names_who CHECK ((revoked_at IS NULL) = (revoked_by IS NULL)),
  CONSTRAINT robots_expiry_after_creation CHECK (expires_at IS NULL OR expires_at > created_at)
);

CREATE INDEX robots_tenant_idx ON robots (tenant_id, created_at DESC);

ALTER TABLE robots ENABLE ROW LEVEL SECURITY;
ALTER TABLE robots FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON robots
  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
