-- Wrong activation codes are limited per user instead of per session: a wrong code no longer
-- touches anyone's activation session, so the per-session counter goes.
ALTER TABLE activation_sessions DROP COLUMN attempts;
COMMENT ON COLUMN activation_sessions.code_hash IS
  'HMAC-SHA256 (hex) of the activation code, keyed with ACTIVATION_CODE_SECRET; the code itself is never stored.';

-- One row per bind whose well-formed code matched no live session; counted per (tenant, user)
-- over a sliding window, and pruned per user as new failures are recorded.
CREATE TABLE bind_failures (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL,
  user_id uuid NOT NULL,
  assistant_id uuid NOT NULL,
  failed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bind_failures_by_user ON bind_failures (tenant_id, user_id, failed_at);

ALTER TABLE bind_failures ENABLE ROW LEVEL SECURITY;
ALTER TABLE bind_failures FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON bind_failures
  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);
