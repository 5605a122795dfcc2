-- list_user_tenants also answers when each membership began (memberships.created_at): a person
-- removed and added again has a new membership, and credentials made before it stay dead.
DROP FUNCTION list_user_tenants(uuid);

CREATE FUNCTION list_user_tenants(p_user_id uuid)
RETURNS TABLE (tenant_id uuid, tenant_name text, role text, member_since timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
AS $$
  SELECT t.id, t.name, m.role, m.created_at
  FROM memberships m JOIN tenants t ON t.id = m.tenant_id
  WHERE m.user_id = p_user_id
  ORDER BY t.name, t.id
$$;
