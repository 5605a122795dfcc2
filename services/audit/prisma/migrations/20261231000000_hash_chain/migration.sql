-- Tamper evidence: every record stored from now on joins its tenant's hash chain. A record's hash
-- covers its fields, its sequence number and the previous record's hash; the head row names the
-- last record, so removing records from the end shows too. Records stored before this migration
-- stay outside the chain (chain_seq NULL).
ALTER TABLE audit_events ADD COLUMN chain_seq bigint;
ALTER TABLE audit_events ADD COLUMN prev_hash bytea;
ALTER TABLE audit_events ADD COLUMN record_hash bytea;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_chain_complete
  CHECK ((chain_seq IS NULL) = (prev_hash IS NULL) AND (chain_seq IS NULL) = (record_hash IS NULL));
CREATE UNIQUE INDEX audit_events_tenant_id_chain_seq_key ON audit_events (tenant_id, chain_seq);

-- One row per tenant: the last record of its chain. Locked (FOR UPDATE) while records are
-- appended, so concurrent consumers extend a chain one after the other.
CREATE TABLE audit_chain_heads (
  tenant_id uuid PRIMARY KEY,
  last_seq bigint NOT NULL CHECK (last_seq >= 0),
  last_hash bytea NOT NULL CHECK (octet_length(last_hash) = 32),
  updated_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE audit_chain_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_chain_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_chain_heads
  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
