-- 0009_agent_voice.sql - what tern-agent needs to answer voice notes.
--
-- Applied by `ternctl migrate` after the earlier files (same rules: one
-- transaction, never edited once applied).
--
-- A voice note (an inbound message of type audio or voice with a media
-- reference) is fetched from the provider with the channel's own credentials
-- (WhatsApp access_token, Twilio account_sid/auth_token, Telegram bot_token)
-- and transcribed before the turn runs. So tern-agent now reads the sealed
-- channel secrets, the way tern-sender does; it opens them with TN_MASTER_KEY
-- (aad "channel:<tenant>:<channel>") and never stores or logs them.
--
-- messages.transcript is the text the transcription endpoint returned for an
-- inbound voice note (NULL: not a voice note, not transcribed yet, or the
-- transcription failed). The media bytes are never stored. The column is
-- personal data like messages.body: it goes with the row (erasure, retention
-- and export handle whole rows; export includes every column).

ALTER TABLE messages ADD COLUMN transcript text;

GRANT SELECT (secrets_sealed, secrets_key_id) ON channels TO tern_agent;
