-- Phone verification: every new account gives a phone number (E.164, normalised by the
-- service), which must be verified by SMS code before the account can create a tenant.
-- Accounts created before this migration have no phone number (NULL) and none verified.

ALTER TABLE users ADD COLUMN phone text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$');
-- Set once the code sent to `phone` was confirmed; NULL while unverified.
ALTER TABLE users ADD COLUMN phone_verified_at timestamptz;
ALTER TABLE users ADD CONSTRAINT users_phone_verified_needs_phone CHECK (phone_verified_at IS NULL OR phone IS NOT NULL);
