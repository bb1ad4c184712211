-- 0003_sender.sql - what tern-sender needs beyond the base schema.
--
-- outbound_messages gets the columns a send and its dead letter are rebuilt
-- from (kind, reply_to, reason, transport, expires_at, trace, the source
-- stream entry) and the timestamps of its state machine. 'sending' is
-- recorded (sending_at) before the provider call; a row found in 'sending'
-- after a crash waits for the provider's status echo before it is resent.
-- The state 'canceled' is new: a scheduled message canceled before its time
-- (the sender checks the state when it releases the message).
--
-- States and their order (a status never moves a row backwards):
--   queued < sending < sent < delivered < read; failed, dead, canceled end it
--   (delivered/read may still override a failed status: multi-device).
--
-- Suppressions: address_hash is the lowercase hex SHA-256 of the address
-- exactly as contacts.address stores it (E.164, chat id or email); any kind
-- suppresses every channel.
--
-- Grants: tern_sender reads the columns of conversations that link a
-- contact and a channel, for the 24-hour WhatsApp window (the last inbound
-- message of that contact on that channel, from messages). RLS stays forced.

ALTER TABLE outbound_messages
    ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'text'
        CHECK (kind IN ('text', 'template', 'interactive', 'media')),
    ADD COLUMN IF NOT EXISTS transport text,
    ADD COLUMN IF NOT EXISTS reply_to text,
    ADD COLUMN IF NOT EXISTS reason text,
    ADD COLUMN IF NOT EXISTS expires_at timestamptz,
    ADD COLUMN IF NOT EXISTS trace text,
    ADD COLUMN IF NOT EXISTS source_entry_id text,
    ADD COLUMN IF NOT EXISTS sending_at timestamptz,
    ADD COLUMN IF NOT EXISTS sent_at timestamptz,
    ADD COLUMN IF NOT EXISTS delivered_at timestamptz,
    ADD COLUMN IF NOT EXISTS read_at timestamptz;

ALTER TABLE outbound_messages DROP CONSTRAINT outbound_messages_state_check;
ALTER TABLE outbound_messages ADD CONSTRAINT outbound_messages_state_check
    CHECK (state IN ('queued', 'sending', 'sent', 'delivered', 'read', 'failed', 'dead',
                     'canceled'));

GRANT SELECT (tenant_id, id, contact_id, channel_id) ON conversations TO tern_sender;
