-- Global identity tables. Neither table is tenant-owned: a user exists once and belongs to
-- tenants through memberships kept by tenant-registry, and signing keys sign tokens for every
-- tenant. They therefore have no tenant_id column and no row-level security; the service's
-- application role still connects without owning them.

CREATE TABLE users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email text NOT NULL UNIQUE CHECK (email = lower(email) AND char_length(email) <= 254),
  password_hash text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
  display_name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE signing_keys (
  kid text PRIMARY KEY,
  alg text NOT NULL CHECK (alg = 'ES256'),
  public_jwk jsonb NOT NULL CHECK (NOT public_jwk ? 'd'),
  -- AES-256-GCM ciphertext of the private JWK (see src/libraries/key-encryption.ts).
  private_key_encrypted text NOT NULL CHECK (private_key_encrypted LIKE 'v1.%'),
  created_at timestamptz NOT NULL DEFAULT now(),
  retired_at timestamptz
);

CREATE INDEX signing_keys_active_idx ON signing_keys (created_at DESC) WHERE retired_at IS NULL;
