-- Refresh tokens: one row per token ever issued, grouped in families (a family is one session,
-- family_id = session_id). Only the SHA-256 of a token is stored. A token is spent by setting
-- used_at; presenting a spent or revoked token again revokes its whole family.
--
-- Like users, this is account-level identity data, not tenant-owned: a refresh token is looked
-- up by its hash before any tenant is known (the row says which tenant the session is bound
-- to). The table therefore has no row-level security; the service's application role still
-- connects without owning it.

CREATE TABLE refresh_tokens (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  family_id uuid NOT NULL,
  session_id uuid NOT NULL,
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  tenant_id uuid NOT NULL,
  -- Lowercase hex SHA-256 of the token; the token itself never reaches the database.
  token_hash text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  used_at timestamptz,
  revoked_at timestamptz
);

CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_live_idx ON refresh_tokens (user_id) WHERE revoked_at IS NULL;
