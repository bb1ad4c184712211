-- 0008_suppression_hmac - suppressions.address_hash is a keyed hash.
--
-- tern-sweeper writes, and tern-sender checks, the lowercase hex
-- HMAC-SHA256 of an address under TN_SUPPRESSION_KEY (the same secret in
-- both daemons). A bare SHA-256 of a phone number is reversible by trying
-- every number; a keyed hash is not without the key. The sender compares in
-- SQL, with pgcrypto's hmac().
CREATE EXTENSION IF NOT EXISTS pgcrypto;

COMMENT ON COLUMN suppressions.address_hash IS
    'lowercase hex HMAC-SHA256 of the address under TN_SUPPRESSION_KEY (tern-sweeper writes, tern-sender checks)';
