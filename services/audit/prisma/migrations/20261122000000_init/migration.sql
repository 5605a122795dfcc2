-- Append-only audit trail. The kit's migration runner grants the application role only
-- SELECT and INSERT on this table (UPDATE, DELETE and TRUNCATE are revoked).
CREATE TABLE audit_events (
  id bigserial PRIMARY KEY,
  event_id uuid NOT NULL UNIQUE,
  tenant_id uuid NOT NULL,
  kind text NOT NULL CHECK (kind <> ''),
  principal_kind text,
  principal_id text,
  principal_role text,
  principal_tenant_id text,
  assistant_id text,
  object text,
  action text,
  outcome text,
  reason text,
  trace_id text,
  request_id text,
  occurred_at timestamptz,
  attributes jsonb NOT NULL DEFAULT '{}'::jsonb,
  received_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX audit_events_tenant_id_id_idx ON audit_events (tenant_id, id DESC);

ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_events
  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
