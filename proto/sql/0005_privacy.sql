-- 0005_privacy.sql - what tern-sweeper and `ternctl privacy|calendar` need
-- beyond the base schema.
--
-- Applied by `ternctl migrate` after the earlier files (same rules: one
-- transaction, never edited once applied).
--
-- privacy_requests.kind gains unrestrict, disconnect and offboard (the
-- kinds ternctl enqueues on tern:privacy). subject_ref never holds personal
-- data: "contact:<uuid>" or "account:<uuid>" (ternctl resolves a phone or
-- email to contact ids before it writes the row or the stream entry).
--
-- Restriction of processing: contacts.restricted_at (from 0001) is the flag.
-- tern-sweeper sets it on a restrict request and clears it on unrestrict;
-- tern-agent and tern-sender must do nothing for a contact whose
-- restricted_at is set (both already have SELECT on contacts).
--
-- oauth_accounts.disconnected_at: when the sweeper deleted the account's
-- tokens (a disconnect or an offboarding); the tokens columns are then NULL.
--
-- Suppressions written by the sweeper: kind 'erased', address_hash = lowercase
-- hex HMAC-SHA256(TN_SUPPRESSION_KEY, address) of the address exactly as
-- contacts.address (or the email as stored) held it. A keyed hash, so the
-- table cannot be reversed by hashing every phone number.
--
-- Indexes: erasure and export find a contact's rows by contact_id; status
-- retention scans finished outbound messages by age.
--
-- Grants (least privilege; row-level security stays forced on every table):
-- tern_sweeper may INSERT consent_events (the restrict/unrestrict record).

ALTER TABLE privacy_requests DROP CONSTRAINT privacy_requests_kind_check;
ALTER TABLE privacy_requests ADD CONSTRAINT privacy_requests_kind_check
    CHECK (kind IN ('erase', 'export', 'restrict', 'unrestrict', 'disconnect', 'offboard'));

ALTER TABLE oauth_accounts ADD COLUMN IF NOT EXISTS disconnected_at timestamptz;

CREATE INDEX IF NOT EXISTS conversations_contact ON conversations (tenant_id, contact_id);
CREATE INDEX IF NOT EXISTS outbound_contact ON outbound_messages (tenant_id, contact_id);
CREATE INDEX IF NOT EXISTS outbound_updated ON outbound_messages (tenant_id, updated_at)
    WHERE state NOT IN ('queued', 'sending');
CREATE INDEX IF NOT EXISTS consent_events_contact ON consent_events (tenant_id, contact_id);
CREATE INDEX IF NOT EXISTS privacy_requests_completed ON privacy_requests (tenant_id, completed_at)
    WHERE status IN ('done', 'failed');

GRANT INSERT ON consent_events TO tern_sweeper;
