-- Expired refresh tokens are purged after a retention period (REFRESH_TOKEN_RETENTION_SECONDS);
-- the purge finds them by expiry.
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);
