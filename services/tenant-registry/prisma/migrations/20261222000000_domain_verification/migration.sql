-- Domain ownership: a domain routes nothing until its tenant has proved it owns the host (a DNS
-- TXT record carrying the domain's verification token). Until then any tenant may claim the same
-- host, so a claim cannot be squatted; only one tenant can hold it verified.
--
-- The defaults fill existing rows while the table is rewritten (row-level security does not apply
-- to that): domains attached before verification existed keep routing, as verified.
ALTER TABLE domains ADD COLUMN verification_token text NOT NULL DEFAULT md5(random()::text || clock_timestamp()::text);
ALTER TABLE domains ALTER COLUMN verification_token DROP DEFAULT;
ALTER TABLE domains ADD CONSTRAINT domains_verification_token_check CHECK (char_length(verification_token) BETWEEN 16 AND 128);
ALTER TABLE domains ADD COLUMN verified_at timestamptz DEFAULT now();
ALTER TABLE domains ALTER COLUMN verified_at DROP DEFAULT;

ALTER TABLE domains DROP CONSTRAINT domains_host_key;
CREATE UNIQUE INDEX domains_verified_host_key ON domains (host) WHERE verified_at IS NOT NULL;
ALTER TABLE domains ADD CONSTRAINT domains_tenant_id_host_key UNIQUE (tenant_id, host);

-- Only a verified domain resolves.
CREATE OR REPLACE FUNCTION resolve_host(p_host text)
RETURNS TABLE (tenant_id uuid, tenant_name text, tenant_status text, assistant_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
AS $$
  SELECT t.id, t.name, t.status, d.assistant_id
  FROM domains d JOIN tenants t ON t.id = d.tenant_id
  WHERE d.host = lower(p_host) AND d.verified_at IS NOT NULL
$$;
