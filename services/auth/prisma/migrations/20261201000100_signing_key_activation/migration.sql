-- Signing-key rotation with overlap: a key is published as soon as it is inserted but signs
-- only from activates_at on; a replaced key keeps a retired_at in the future and stays
-- published until every token it signed has expired. Keys that existed before this migration
-- were active from their creation.

ALTER TABLE signing_keys ADD COLUMN activates_at timestamptz;
UPDATE signing_keys SET activates_at = created_at;
ALTER TABLE signing_keys ALTER COLUMN activates_at SET NOT NULL, ALTER COLUMN activates_at SET DEFAULT now();

-- "Active" now depends on the clock (retired_at may lie in the future), so the partial index
-- on retired_at IS NULL no longer matches the queries.
DROP INDEX signing_keys_active_idx;
CREATE INDEX signing_keys_activates_at_idx ON signing_keys (activates_at DESC);
