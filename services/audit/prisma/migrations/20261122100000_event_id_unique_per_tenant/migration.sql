-- Event ids are unique per tenant, not across tenants: under RLS a tenant cannot see another
-- tenant's rows, so a global constraint would make an event whose id another tenant already
-- used look like a duplicate and be dropped.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_event_id_key;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_tenant_id_event_id_key UNIQUE (tenant_id, event_id);
