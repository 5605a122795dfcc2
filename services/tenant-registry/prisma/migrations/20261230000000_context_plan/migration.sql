-- A resolved context carries the tenant's plan, so the gateway can apply the plan's rate limits
-- without another lookup. A function's result columns cannot be changed in place: both lookups
-- are dropped and created again (the migration runner grants EXECUTE to the application role).
DROP FUNCTION resolve_host(text);
CREATE FUNCTION resolve_host(p_host text)
RETURNS TABLE (tenant_id uuid, tenant_name text, tenant_status text, tenant_plan text, assistant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
AS $$
  SELECT t.id, t.name, t.status, t.plan, d.assistant_id
  FROM domains d JOIN tenants t ON t.id = d.tenant_id
  WHERE d.host = lower(p_host) AND d.verified_at IS NOT NULL
$$;

DROP FUNCTION resolve_assistant(uuid);
CREATE FUNCTION resolve_assistant(p_assistant_id uuid)
RETURNS TABLE (tenant_id uuid, tenant_name text, tenant_status text, tenant_plan text, assistant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
AS $$
  SELECT t.id, t.name, t.status, t.plan, a.id
  FROM assistants a JOIN tenants t ON t.id = a.tenant_id
  WHERE a.id = p_assistant_id
$$;
