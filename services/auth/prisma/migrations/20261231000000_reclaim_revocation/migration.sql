-- Reclaim revocation. When a provider-verified sign-in reclaims a password account nobody had
-- verified (see services/auth/README.md, "Google and GitHub sign-in"), whoever registered the
-- address first may have made credentials that outlive its sessions: user API keys of the
-- account, tenant API keys it created (or last rotated), and robots it created, in any tenant.
-- They all end in the reclaim's own transaction.
--
-- api_keys and robots are tenant-owned (row-level security), and a reclaim knows the user, not
-- the tenants. Like find_api_key, the cross-tenant step is a SECURITY DEFINER function that does
-- one fixed thing: revoke_credentials_of_user(user) sets revoked_at on every api_keys row with
-- user_id = user or created_by = user, and revoked_at/revoked_by on every robots row with
-- creator_id = user, that is not revoked yet — including a key replaced by rotation and still
-- in its grace period (revoked_at is checked before grace_until). It returns one row per
-- credential it revoked (kind, id, tenant), never a secret or hash; it reads nothing else.
-- A robot's revoked_by is the account itself: the reclaiming owner ended it.
--
-- The migration runner grants EXECUTE on every function to the application role and revokes it
-- from PUBLIC afterwards; it is revoked from PUBLIC here too, so no other role can call it even
-- between this migration's commit and the runner's grants.

CREATE FUNCTION revoke_credentials_of_user(p_user uuid)
RETURNS TABLE (kind text, id text, tenant_id uuid)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
  WITH keys AS (
    UPDATE api_keys k SET revoked_at = now()
     WHERE k.revoked_at IS NULL AND (k.user_id = p_user OR k.created_by = p_user)
    RETURNING k.id, k.tenant_id
  ), bots AS (
    UPDATE robots r SET revoked_at = now(), revoked_by = p_user
     WHERE r.revoked_at IS NULL AND r.creator_id = p_user
    RETURNING r.id, r.tenant_id
  )
  SELECT 'api_key'::text, keys.id, keys.tenant_id FROM keys
  UNION ALL
  SELECT 'robot'::text, bots.id::text, bots.tenant_id FROM bots
$$;

REVOKE EXECUTE ON FUNCTION revoke_credentials_of_user(uuid) FROM PUBLIC;

-- FORCE ROW LEVEL SECURITY applies to the owner too (see find_api_key's definer_lookup). For an
-- owner that is not a superuser, these policies let revoke_credentials_of_user (which runs as
-- the owner) find and revoke the rows without a tenant set, and allow no update that leaves a
-- row unrevoked. They name the owner only: the application role gains nothing from them.
DO $$
BEGIN
  EXECUTE format('CREATE POLICY definer_revoke ON api_keys FOR UPDATE TO %I USING (true) WITH CHECK (revoked_at IS NOT NULL)', current_user);
  EXECUTE format('CREATE POLICY definer_lookup ON robots FOR SELECT TO %I USING (true)', current_user);
  EXECUTE format('CREATE POLICY definer_revoke ON robots FOR UPDATE TO %I USING (true) WITH CHECK (revoked_at IS NOT NULL)', current_user);
END
$$;
