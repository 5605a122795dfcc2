-- Signed checkpoints: a periodic, signed statement of where each tenant's chain stood. Someone
-- able to write the database could rewrite records and recompute every hash after them and the
-- head; they cannot re-sign a checkpoint without the signing key, which the database never holds.
CREATE TABLE audit_checkpoints (
  tenant_id uuid NOT NULL,
  chain_seq bigint NOT NULL CHECK (chain_seq > 0),
  record_hash bytea NOT NULL CHECK (octet_length(record_hash) = 32),
  signed_at timestamptz NOT NULL,
  key_id text NOT NULL,
  jws text NOT NULL,
  PRIMARY KEY (tenant_id, chain_seq)
);

ALTER TABLE audit_checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_checkpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_checkpoints
  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

-- The head remembers how far its chain is checkpointed, so the checkpointer finds grown chains
-- from the heads alone.
ALTER TABLE audit_chain_heads ADD COLUMN checkpointed_seq bigint NOT NULL DEFAULT 0 CHECK (checkpointed_seq >= 0);

-- The one cross-tenant read the service makes: which chains grew since their last checkpoint.
-- It sees heads only (tenant id, sequence number, hash), never a record, and only in a
-- transaction that names this purpose; every other query still sees its own tenant or nothing.
CREATE POLICY checkpoint_scan ON audit_chain_heads FOR SELECT
  USING (current_setting('app.audit_scan', true) = 'grown_chains');
