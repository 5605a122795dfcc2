-- Verification now also returns who created (or last rotated) a key: a tenant key never acts
-- beyond its creator's current rights, so the gateway needs to know whose rights those are.
-- The return type changes, so the function is dropped and created again; the migration runner
-- grants EXECUTE to the application role and revokes it from PUBLIC afterwards.
DROP FUNCTION find_api_key(text);

CREATE FUNCTION find_api_key(p_id text)
RETURNS TABLE (
  id text, tenant_id uuid, kind text, user_id uuid, created_by uuid, secret_hash text, scopes text[],
  expires_at timestamptz, revoked_at timestamptz, grace_until timestamptz
)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
AS $$
  SELECT k.id, k.tenant_id, k.kind, k.user_id, k.created_by, k.secret_hash, k.scopes, k.expires_at, k.revoked_at, k.grace_until
  FROM api_keys k
  WHERE k.id = p_id
$$;
