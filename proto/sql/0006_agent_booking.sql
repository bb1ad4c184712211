-- 0006_agent_booking.sql - what tern-agent's booking tools need beyond 0004:
-- the lead's confirmation and reminders, and restriction of processing.
--
-- Applied by `ternctl migrate` after the earlier files (same rules: one
-- transaction, never edited once applied).
--
-- Notices of a booking are outbound_messages rows linked to it
-- (outbound_messages.booking_id):
--   confirmation  reason 'notice', sent at once, when a booking becomes
--                 confirmed (booked) or is moved (rescheduled); the date and
--                 time are formatted here, by Postgres, in the tenant's zone
--   reminders     reason 'reminder', one per offset of
--                 agent_profiles.reminder_offsets_min (minutes before the
--                 start; default 24 h and 1 h), not_before = start - offset;
--                 offsets already past are skipped
-- Keys are "bk:<booking>:<sync_version>:confirm" and
-- "bk:<booking>:<sync_version>:rem:<minutes>", so a repeated call writes
-- nothing new. A new version (reschedule, cancel) marks the queued reminders
-- of older versions 'canceled' (tern-sender drops a canceled row when it
-- comes due) and, while the booking stays confirmed, schedules new ones at
-- the new times: a move earlier than an old reminder must not wait for the
-- old member on the sender's schedule, so reminders are replaced, not edited.
--
-- bookings.notified_version is the sync_version whose notices exist.
-- tern-agent calls tern_agent_booking_notices() right after a booking tool
-- changed a booking (tn_booking commits its own transaction first), and
-- tern_agent_unnotified() lets its periodic scan finish the notices of a
-- booking whose change committed but whose notices did not (a crash between
-- the two transactions, Postgres down for a moment).
--
-- outbound_messages.booking_id is not a foreign key: erasure and offboarding
-- (tern-sweeper) delete bookings and outbound rows in their own order, and a
-- cascade would run outside the sweeper's statements.
--
-- Restriction of processing (0005): a contact with restricted_at gets no
-- turn; its messages are recorded with agent_outcome 'restricted'.

ALTER TABLE agent_profiles
    ADD COLUMN reminder_offsets_min int[] NOT NULL DEFAULT '{1440,60}'
        CHECK (cardinality(reminder_offsets_min) <= 5 AND array_position(reminder_offsets_min, NULL) IS NULL
               AND 0 < ALL (reminder_offsets_min) AND 43200 >= ALL (reminder_offsets_min)),
    -- the tenant's texts; {service} and {when} are replaced; NULL: tern-agent's default
    ADD COLUMN booking_confirmation text CHECK (length(booking_confirmation) <= 1000),
    ADD COLUMN booking_moved text CHECK (length(booking_moved) <= 1000),
    ADD COLUMN booking_reminder text CHECK (length(booking_reminder) <= 1000);

ALTER TABLE outbound_messages ADD COLUMN booking_id uuid;
CREATE INDEX outbound_booking ON outbound_messages (tenant_id, booking_id)
    WHERE booking_id IS NOT NULL;

ALTER TABLE bookings ADD COLUMN notified_version int NOT NULL DEFAULT 0;
UPDATE bookings SET notified_version = sync_version; -- history gets no notices
CREATE INDEX bookings_unnotified ON bookings (updated_at)
    WHERE notified_version < sync_version;

ALTER TABLE messages DROP CONSTRAINT messages_agent_outcome_check;
ALTER TABLE messages ADD CONSTRAINT messages_agent_outcome_check
    CHECK (agent_outcome IN ('replied', 'holding', 'opt_out', 'opt_in', 'opted_out', 'human',
                             'restricted'));

-- tern_agent_booking_notices - bring the notices of one booking of the bound
-- tenant up to its sync_version. p_conversation: where to send (NULL: the
-- contact's most recent conversation; none: nothing is sent, the version is
-- still recorded). p_booked, p_moved, p_remind: the daemon's texts for a
-- tenant without its own. Returns the ids of the new rows,
-- which the caller XADDs to tern:out (tern_agent_unpublished() finds them
-- otherwise).
CREATE FUNCTION tern_agent_booking_notices(p_booking uuid, p_conversation uuid,
                                           p_booked text, p_moved text, p_remind text)
    RETURNS SETOF uuid
    LANGUAGE plpgsql VOLATILE
    SET jit = off
    AS $$
DECLARE
    t uuid := tern_current_tenant();
    b record;
    cv record;
    prof record;
    pfx text;
    when_text text;
    txt text;
    k text;
    o int;
    nid uuid;
BEGIN
    SELECT bk.id, bk.contact_id, bk.status, bk.during, bk.sync_version, bk.notified_version,
           s.name AS service
      INTO b FROM bookings bk JOIN services s ON s.tenant_id = bk.tenant_id AND s.id = bk.service_id
     WHERE bk.tenant_id = t AND bk.id = p_booking FOR UPDATE OF bk;
    IF NOT FOUND OR b.notified_version >= b.sync_version THEN
        RETURN;
    END IF;
    pfx := format('bk:%s:%s:', b.id, b.sync_version);
    UPDATE outbound_messages SET state = 'canceled', updated_at = now()
     WHERE tenant_id = t AND booking_id = b.id AND reason = 'reminder' AND state = 'queued'
       AND (b.status <> 'confirmed' OR left(idempotency_key, length(pfx)) <> pfx);
    SELECT c.id, c.channel_id INTO cv FROM conversations c
     WHERE c.tenant_id = t AND c.contact_id = b.contact_id
       AND (p_conversation IS NULL OR c.id = p_conversation)
     ORDER BY c.last_inbound_at DESC NULLS LAST LIMIT 1;
    IF b.status = 'confirmed' AND cv.id IS NOT NULL AND upper(b.during) > now() THEN
        SELECT COALESCE(p.reminder_offsets_min, '{1440,60}') AS offs,
               COALESCE(p.booking_confirmation, p_booked) AS booked,
               COALESCE(p.booking_moved, p_moved) AS moved,
               COALESCE(p.booking_reminder, p_remind) AS remind
          INTO prof FROM (SELECT 1) one LEFT JOIN agent_profiles p ON p.tenant_id = t;
        -- the tenant's zone for to_char (transaction-local, Postgres's rules)
        PERFORM set_config('TimeZone', tern_tenant_zone(), true);
        when_text := to_char(lower(b.during), 'FMDay, FMDD FMMonth YYYY, HH24:MI TZ');
        txt := CASE WHEN EXISTS (SELECT 1 FROM outbound_messages x
                                   WHERE x.tenant_id = t AND x.booking_id = b.id
                                     AND x.reason = 'notice')
                     THEN prof.moved ELSE prof.booked END;
        txt := left(replace(replace(txt, '{service}', b.service), '{when}', when_text), 4096);
        k := pfx || 'confirm';
        INSERT INTO outbound_messages (tenant_id, conversation_id, contact_id, channel_id,
                                       idempotency_key, body, producer, reason, booking_id)
        VALUES (t, cv.id, b.contact_id, cv.channel_id, k, txt, 'agent', 'notice', b.id)
        ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING outbound_messages.id INTO nid;
        IF nid IS NOT NULL THEN
            INSERT INTO messages (tenant_id, conversation_id, channel_id, direction, body,
                                  outbound_id, processed_at)
            VALUES (t, cv.id, cv.channel_id, 'out', txt, nid, now());
            RETURN NEXT nid;
        END IF;
        txt := left(replace(replace(prof.remind, '{service}', b.service), '{when}', when_text),
                     4096);
        FOREACH o IN ARRAY prof.offs LOOP
            CONTINUE WHEN lower(b.during) - o * interval '1 minute' <= now();
            nid := NULL;
            INSERT INTO outbound_messages (tenant_id, conversation_id, contact_id, channel_id,
                                           idempotency_key, body, producer, reason, booking_id,
                                           not_before)
            VALUES (t, cv.id, b.contact_id, cv.channel_id, pfx || 'rem:' || o, txt, 'agent',
                    'reminder', b.id, lower(b.during) - o * interval '1 minute')
            ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
            RETURNING outbound_messages.id INTO nid;
            IF nid IS NOT NULL THEN
                RETURN NEXT nid;
            END IF;
        END LOOP;
    END IF;
    UPDATE bookings SET notified_version = b.sync_version WHERE tenant_id = t AND id = b.id;
END
$$;

-- tern_agent_unnotified - bookings whose notices are behind, changed at
-- least older_ms ago (the booking tool normally wrote them already). Ids
-- only, like tern_agent_due().
CREATE FUNCTION tern_agent_unnotified(older_ms int, lim int)
    RETURNS TABLE (tenant_id uuid, booking_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
        SELECT b.tenant_id, b.id FROM public.bookings b
          JOIN public.tenants t ON t.id = b.tenant_id
         WHERE b.notified_version < b.sync_version AND t.deleted_at IS NULL
           AND b.updated_at < now() - make_interval(secs => older_ms / 1000.0)
         ORDER BY b.updated_at
         LIMIT lim
    $$;

REVOKE ALL ON FUNCTION tern_agent_unnotified(int, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tern_agent_unnotified(int, int) TO tern_agent;

GRANT UPDATE (notified_version) ON bookings TO tern_agent;
