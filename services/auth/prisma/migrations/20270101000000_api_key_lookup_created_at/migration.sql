-- find_api_key also answers when the key was made (created_at): verification compares it with
-- the start of the person's membership, and no longer reads the row a second time for it.
DROP FUNCTION find_api_key(text);

CREATE FUNCTION find_api_key(p_id text)
RETURNS TABLE (
  id text, tenant_id uuid, kind text, user_id uuid, created_by uuid, secret_hash text, scopes text[],
  created_at timestamptz, expires_at timestamptz, revoked_at timestamptz, grace_until timestamptz
)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
AS $$
  SELECT k.id, k.tenant_id, k.kind, k.user_id, k.created_by, k.secret_hash, k.scopes, k.created_at, k.expires_at, k.revoked_at, k.grace_until
  FROM api_keys k
  WHERE k.id = p_id
$$;
