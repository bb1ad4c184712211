-- 0010_calsync_twoway.sql - two-way calendar sync: the business deletes or
-- moves one of Tern's events in its calendar, and the booking follows.
--
-- Applied by `ternctl migrate` after 0009 (one transaction, never edited once
-- applied).
--
-- tern-calsync finds such events during its periodic busy-time import (see
-- services/calsync/calsync_twoway.c) and confirms each with a GET of the
-- event (Google: 404, 410 or status "cancelled"; CalDAV: 404). It then calls,
-- bound to the tenant:
--   tern_calsync_provider_cancel  the event is gone: the booking is
--       cancelled, its queued reminders are canceled, and a notice (reason
--       'notice', producer 'calsync') to the contact's latest conversation
--       says so. Returns the new outbound row as a tern:out entry's fields.
--   tern_calsync_provider_move    the event was moved: the booking takes
--       the event's times (the exclusion constraint still decides: a move
--       onto another booking is refused with 'taken'); notified_version is
--       left behind sync_version, so tern-agent's scan
--       (tern_agent_unnotified, 0006) sends the "moved" notice and replaces
--       the reminders exactly as after a reschedule by the lead.
-- Both act only when the booking is still confirmed and still at the version
-- whose event calsync verified (p_version = sync_version = synced_version, on
-- the same calendar account): a booking Tern itself cancelled or changed in
-- the meantime is left alone, so nothing is cancelled twice.
-- Both set synced_version to the new sync_version: the calendar already
-- shows the change, so no calendar call follows.
--
-- The notice is committed before calsync XADDs it; tern_calsync_enqueued()
-- records the XADD. A notice whose XADD was lost (crash, Redis down) is
-- republished by tern-agent's scan: tern_agent_unpublished (0002) is
-- replaced to take producer 'calsync' rows too (tern-sender dedupes on the
-- outbound id, so a repeat is harmless).
--
--   agent_profiles + booking_cancelled: the tenant's text for a notice of a
--                    calendar-side cancellation ({service} and {when} are
--                    replaced); NULL: tern-calsync's default

ALTER TABLE agent_profiles
    ADD COLUMN booking_cancelled text CHECK (length(booking_cancelled) <= 1000);

CREATE INDEX outbound_unpublished_calsync ON outbound_messages (created_at)
    WHERE producer = 'calsync' AND enqueued_at IS NULL AND state = 'queued';

-- tern_calsync_provider_cancel - see above. p_text: calsync's text for a
-- tenant without its own. Returns no row when nothing was done (stale
-- version, not confirmed, no conversation to tell).
CREATE FUNCTION tern_calsync_provider_cancel(p_booking uuid, p_version int, p_account uuid,
                                             p_text text)
    RETURNS TABLE (outbound_id uuid, channel_id text, channel_kind text, to_address text,
                   conversation_id uuid, contact_id uuid, body text, created_at text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public
    SET jit = off
    AS $$
DECLARE
    t uuid := tern_current_tenant();
    b record;
    cv record;
    txt text;
    nid uuid;
BEGIN
    IF t IS NULL THEN
        RAISE EXCEPTION 'no tenant bound' USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT bk.id, bk.contact_id, bk.during, bk.sync_version, s.name AS service
      INTO b FROM public.bookings bk
      JOIN public.services s ON s.tenant_id = bk.tenant_id AND s.id = bk.service_id
     WHERE bk.tenant_id = t AND bk.id = p_booking AND bk.status = 'confirmed'
       AND bk.sync_version = p_version AND bk.synced_version = p_version
       AND bk.calendar_account_id = p_account AND bk.external_event_id IS NOT NULL
       FOR UPDATE OF bk;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE public.bookings SET status = 'cancelled', cancelled_at = now(),
           sync_version = b.sync_version + 1, synced_version = b.sync_version + 1,
           notified_version = b.sync_version + 1, external_event_id = NULL,
           external_href = NULL, external_etag = NULL, sync_error = NULL, synced_at = now(),
           updated_at = now()
     WHERE tenant_id = t AND id = b.id;
    UPDATE public.outbound_messages SET state = 'canceled', updated_at = now()
     WHERE tenant_id = t AND booking_id = b.id AND reason = 'reminder' AND state = 'queued';
    INSERT INTO public.audit_log (tenant_id, actor, action, detail)
    VALUES (t, 'tern-calsync', 'booking.cancelled_in_calendar',
            jsonb_build_object('booking_id', b.id, 'account_id', p_account));
    SELECT c.id, c.channel_id, ch.kind, ct.address INTO cv
      FROM public.conversations c
      JOIN public.channels ch ON ch.tenant_id = c.tenant_id AND ch.id = c.channel_id
      JOIN public.contacts ct ON ct.tenant_id = c.tenant_id AND ct.id = c.contact_id
     WHERE c.tenant_id = t AND c.contact_id = b.contact_id
     ORDER BY c.last_inbound_at DESC NULLS LAST LIMIT 1;
    IF cv.id IS NULL OR upper(b.during) <= now() THEN
        RETURN;
    END IF;
    SELECT COALESCE(p.booking_cancelled, p_text) INTO txt
      FROM (SELECT 1) one LEFT JOIN public.agent_profiles p ON p.tenant_id = t;
    -- the tenant's zone for to_char (transaction-local), as in 0006
    PERFORM set_config('TimeZone', tern_tenant_zone(), true);
    txt := left(replace(replace(txt, '{service}', b.service), '{when}',
                        to_char(lower(b.during), 'FMDay, FMDD FMMonth YYYY, HH24:MI TZ')), 4096);
    INSERT INTO public.outbound_messages (tenant_id, conversation_id, contact_id, channel_id,
                                          idempotency_key, body, producer, reason, booking_id)
    VALUES (t, cv.id, b.contact_id, cv.channel_id,
            format('bk:%s:%s:calendar_cancel', b.id, b.sync_version + 1), txt, 'calsync',
            'notice', b.id)
    ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
    RETURNING public.outbound_messages.id INTO nid;
    IF nid IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO public.messages (tenant_id, conversation_id, channel_id, direction, body,
                                 outbound_id, processed_at)
    VALUES (t, cv.id, cv.channel_id, 'out', txt, nid, now());
    RETURN QUERY
        SELECT o.id, o.channel_id::text, cv.kind::text, cv.address::text, o.conversation_id,
               o.contact_id, o.body,
               to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
          FROM public.outbound_messages o WHERE o.tenant_id = t AND o.id = nid;
END
$$;

-- tern_calsync_provider_move - see above. Returns 'moved', 'stale' (nothing
-- done) or 'taken' (the new times overlap another booking: nothing done,
-- bookings.sync_error says 'provider_move_refused').
CREATE FUNCTION tern_calsync_provider_move(p_booking uuid, p_version int, p_account uuid,
                                           p_start timestamptz, p_end timestamptz)
    RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public
    SET jit = off
    AS $$
DECLARE
    t uuid := tern_current_tenant();
    v int;
BEGIN
    IF t IS NULL THEN
        RAISE EXCEPTION 'no tenant bound' USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT bk.sync_version INTO v FROM public.bookings bk
     WHERE bk.tenant_id = t AND bk.id = p_booking AND bk.status = 'confirmed'
       AND bk.sync_version = p_version AND bk.synced_version = p_version
       AND bk.calendar_account_id = p_account AND bk.external_event_id IS NOT NULL
       FOR UPDATE OF bk;
    IF NOT FOUND OR p_end <= p_start THEN
        RETURN 'stale';
    END IF;
    BEGIN
        UPDATE public.bookings SET during = tstzrange(p_start, p_end), sync_version = v + 1,
               synced_version = v + 1, sync_error = NULL, synced_at = now(), updated_at = now()
         WHERE tenant_id = t AND id = p_booking;
    EXCEPTION WHEN exclusion_violation THEN
        UPDATE public.bookings SET sync_error = 'provider_move_refused', synced_at = now()
         WHERE tenant_id = t AND id = p_booking;
        RETURN 'taken';
    END;
    INSERT INTO public.audit_log (tenant_id, actor, action, detail)
    VALUES (t, 'tern-calsync', 'booking.moved_in_calendar',
            jsonb_build_object('booking_id', p_booking, 'account_id', p_account));
    RETURN 'moved';
END
$$;

-- tern_calsync_enqueued - the notice p_outbound is on tern:out
CREATE FUNCTION tern_calsync_enqueued(p_outbound uuid) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
        UPDATE public.outbound_messages SET enqueued_at = now()
         WHERE tenant_id = tern_current_tenant() AND id = p_outbound AND producer = 'calsync'
           AND enqueued_at IS NULL
    $$;

-- tern_agent_unpublished (0002) - now also calsync's notices
CREATE OR REPLACE FUNCTION tern_agent_unpublished(older_ms int, lim int)
    RETURNS TABLE (tenant_id uuid, outbound_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
        SELECT x.tenant_id, x.id FROM (
            (SELECT o.tenant_id, o.id, o.created_at
               FROM public.outbound_messages o
              WHERE o.producer = 'agent' AND o.enqueued_at IS NULL AND o.state = 'queued'
                AND o.created_at < now() - make_interval(secs => older_ms / 1000.0)
              ORDER BY o.created_at LIMIT lim)
            UNION ALL
            (SELECT o.tenant_id, o.id, o.created_at
               FROM public.outbound_messages o
              WHERE o.producer = 'calsync' AND o.enqueued_at IS NULL AND o.state = 'queued'
                AND o.created_at < now() - make_interval(secs => older_ms / 1000.0)
              ORDER BY o.created_at LIMIT lim)) x
         ORDER BY x.created_at LIMIT lim
    $$;

REVOKE ALL ON FUNCTION tern_calsync_provider_cancel(uuid, int, uuid, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION tern_calsync_provider_move(uuid, int, uuid, timestamptz, timestamptz)
    FROM PUBLIC;
REVOKE ALL ON FUNCTION tern_calsync_enqueued(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tern_calsync_provider_cancel(uuid, int, uuid, text),
    tern_calsync_provider_move(uuid, int, uuid, timestamptz, timestamptz),
    tern_calsync_enqueued(uuid) TO tern_calsync;
