-- Appending to a tenant's hash chain in one statement (one round trip per transaction): lock the
-- head, check it is the one the caller linked its records onto, insert them in order and move the
-- head. The caller hashes the records (src/libraries/hash-chain.ts) before it calls; when the head
-- is not the one it expected (another writer appended, or the caller's copy is from before a
-- restart) or an event id is stored already, nothing is written and the function answers the head
-- it holds locked and the ids already stored, so the caller can link again and call once more in
-- the same transaction.
--
-- Runs as the caller (SECURITY INVOKER): row-level security applies to every row it reads or
-- writes, so the caller sets app.tenant_id for the transaction as always.
--
-- p_events: a JSON array with one array per record, in chain order:
--   [event_id, kind, principal_kind, principal_id, principal_role, principal_tenant_id,
--    assistant_id, object, action, outcome, reason, trace_id, request_id, occurred_at (ISO 8601),
--    attributes (object), record_hash (hex)]
-- Each record's chain_seq is the head's plus its position; its prev_hash is its predecessor's
-- record_hash, the first one's the head's hash.
CREATE FUNCTION audit_append_chained(p_tenant_id uuid, p_after_seq bigint, p_after_hash bytea, p_events jsonb)
RETURNS TABLE (appended bigint, head_seq bigint, head_hash bytea, stored_ids text[])
LANGUAGE plpgsql
AS $$
DECLARE
  v_seq bigint;
  v_hash bytea;
  v_count bigint;
  v_last bytea;
BEGIN
  SELECT h.last_seq, h.last_hash INTO v_seq, v_hash FROM audit_chain_heads h WHERE h.tenant_id = p_tenant_id FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO audit_chain_heads (tenant_id, last_seq, last_hash)
    VALUES (p_tenant_id, 0, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
    ON CONFLICT (tenant_id) DO NOTHING;
    SELECT h.last_seq, h.last_hash INTO STRICT v_seq, v_hash FROM audit_chain_heads h WHERE h.tenant_id = p_tenant_id FOR UPDATE;
  END IF;

  IF v_seq IS DISTINCT FROM p_after_seq OR v_hash IS DISTINCT FROM p_after_hash THEN
    RETURN QUERY SELECT 0::bigint, v_seq, v_hash,
      (SELECT array_agg(a.event_id::text) FROM audit_events a
       WHERE a.tenant_id = p_tenant_id AND a.event_id IN (SELECT (e->>0)::uuid FROM jsonb_array_elements(p_events) e));
    RETURN;
  END IF;

  -- Optimistic: no look-up first. A stored id violates the unique key and undoes this block only.
  BEGIN
    INSERT INTO audit_events (
      event_id, tenant_id, kind, principal_kind, principal_id, principal_role, principal_tenant_id,
      assistant_id, object, action, outcome, reason, trace_id, request_id, occurred_at, attributes,
      chain_seq, prev_hash, record_hash
    )
    SELECT (e->>0)::uuid, p_tenant_id, e->>1, e->>2, e->>3, e->>4, e->>5,
           e->>6, e->>7, e->>8, e->>9, e->>10, e->>11, e->>12, (e->>13)::timestamptz, e->14,
           v_seq + ord,
           coalesce(lag(decode(e->>15, 'hex')) OVER (ORDER BY ord), v_hash),
           decode(e->>15, 'hex')
    FROM jsonb_array_elements(p_events) WITH ORDINALITY AS r(e, ord)
    ORDER BY ord;
    GET DIAGNOSTICS v_count = ROW_COUNT;
  EXCEPTION WHEN unique_violation THEN
    RETURN QUERY SELECT 0::bigint, v_seq, v_hash,
      (SELECT array_agg(a.event_id::text) FROM audit_events a
       WHERE a.tenant_id = p_tenant_id AND a.event_id IN (SELECT (e->>0)::uuid FROM jsonb_array_elements(p_events) e));
    RETURN;
  END;

  IF v_count = 0 THEN
    RETURN QUERY SELECT 0::bigint, v_seq, v_hash, NULL::text[];
    RETURN;
  END IF;
  v_last := decode(p_events->(v_count::int - 1)->>15, 'hex');
  UPDATE audit_chain_heads SET last_seq = v_seq + v_count, last_hash = v_last, updated_at = now() WHERE tenant_id = p_tenant_id;
  RETURN QUERY SELECT v_count, v_seq + v_count, v_last, NULL::text[];
END
$$;
