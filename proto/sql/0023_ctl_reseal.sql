-- 0023_ctl_reseal.sql - the operator can seal calendar tokens again under a
-- new master key (`ternctl keys reseal`, services/ctl/ctl_keys.c).
--
-- Applied by `ternctl migrate` after the earlier files (same rules: one
-- transaction, never edited once applied).
--
-- A connected calendar's tokens (oauth_accounts.access_token_sealed and
-- refresh_token_sealed, aad "oauth:<tenant>:<account>:access|refresh") are
-- sealed with the key ring, like channel secrets. After a new key is put
-- first, a refresh token stayed under the old key until Google sent a new
-- one, so the old key could never leave the ring. ternctl now opens each
-- token with the ring and seals it again under the current key, the row
-- locked (SELECT ... FOR UPDATE needs an UPDATE privilege on the table).
--
-- Exactly these three columns: tern_ctl still cannot change an account's
-- calendar, cursor or state; tern-sweeper alone clears tokens (disconnect).

GRANT UPDATE (access_token_sealed, refresh_token_sealed, key_id) ON oauth_accounts TO tern_ctl;
