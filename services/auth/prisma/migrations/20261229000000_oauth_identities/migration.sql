-- Google and GitHub sign-in. An OAuth identity is the provider's stable subject (Google `sub`,
-- GitHub numeric user id) mapped to a user. Like users, it is account-level identity data,
-- looked up before any tenant is known: not tenant-owned, no tenant_id, no row-level security.

-- Accounts created by OAuth sign-in have no password; so do password accounts reclaimed by a
-- provider-verified sign-in (see services/auth/README.md, "Google and GitHub sign-in").
-- The argon2id CHECK still applies to every password that is set (a CHECK passes on NULL).
ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL;

-- When a provider vouched for the account's email address; NULL while nobody did (password
-- sign-ups never verify their email).
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;

CREATE TABLE oauth_identities (
  provider text NOT NULL CHECK (provider IN ('google', 'github')),
  subject text NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 255),
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- The verified email the provider gave when the identity was linked.
  email text NOT NULL CHECK (email = lower(email) AND char_length(email) <= 254),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (provider, subject)
);

CREATE INDEX oauth_identities_user_id_idx ON oauth_identities (user_id);
