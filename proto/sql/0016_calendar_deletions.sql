-- 0016_calendar_deletions.sql - erasing a person removes the events Tern
-- created for their bookings from the business's calendars.
--
-- Applied by `ternctl migrate` after the earlier files (one transaction,
-- never edited once applied).
--
-- An erasure (tern-sweeper, sweeper_erase.c) deletes the person's bookings;
-- the booking row is what tern-calsync needed to find Tern's event, so what
-- it needs travels in a row of its own, written in the erasure's
-- transaction (a crash after COMMIT loses nothing):
--
--   calendar_deletions  one row per erased booking that had an event in a
--       calendar: the booking id (Tern's event id and CalDAV UID derive from
--       it: "tern" + the id without dashes, and the event carries the id as
--       its mark), the account and the calendar (Google calendar id or
--       CalDAV collection URL) the event lives in. Ids only: no name,
--       address or text of the person. After COMMIT the sweeper XADDs a
--       cal.request op delete_event naming the row; tern-calsync deletes the
--       event (only when it carries Tern's mark for that booking) and then
--       the row. next_at is when the scan may take the row again: a minute
--       after the erasure (the entry normally does it first), then doubling
--       per attempt up to a day, until the event is gone.
--
--   tern_calsync_deletions_due(lim)  rows due (an entry that was lost, or a
--       deletion that failed), across tenants, for tern-calsync's scan; each
--       row returned is pushed back (attempts + 1). Ids only, like
--       tern_calsync_watch_due.
--   tern_calsync_event_deleted(id)  tern-calsync's "done" for a row of the
--       bound tenant: only tern_sweeper may DELETE from a table (0001), so
--       calsync deletes through this function.

CREATE TABLE calendar_deletions (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    booking_id uuid NOT NULL,
    account_id uuid NOT NULL,
    calendar_id text NOT NULL CHECK (length(calendar_id) <= 2048),
    attempts int NOT NULL DEFAULT 0,
    next_at timestamptz NOT NULL DEFAULT now() + interval '1 minute',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX calendar_deletions_due ON calendar_deletions (next_at);

ALTER TABLE calendar_deletions ENABLE ROW LEVEL SECURITY;
ALTER TABLE calendar_deletions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON calendar_deletions
    USING (tenant_id = tern_current_tenant())
    WITH CHECK (tenant_id = tern_current_tenant());

-- tern_calsync_deletions_due - see above
CREATE FUNCTION tern_calsync_deletions_due(lim int)
    RETURNS TABLE (tenant_id uuid, id uuid)
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
        UPDATE public.calendar_deletions d
           SET attempts = d.attempts + 1,
               next_at = now() + least(interval '1 minute' * power(2, least(d.attempts, 12)),
                                       interval '1 day')
          FROM (SELECT x.tenant_id, x.id FROM public.calendar_deletions x
                  JOIN public.tenants t ON t.id = x.tenant_id
                 WHERE x.next_at <= now() AND t.deleted_at IS NULL
                 ORDER BY x.next_at
                 LIMIT lim
                   FOR UPDATE OF x SKIP LOCKED) due
         WHERE d.tenant_id = due.tenant_id AND d.id = due.id
        RETURNING d.tenant_id, d.id
    $$;

-- tern_calsync_event_deleted - see above
CREATE FUNCTION tern_calsync_event_deleted(p_id uuid) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
        DELETE FROM public.calendar_deletions
         WHERE tenant_id = public.tern_current_tenant() AND id = p_id
    $$;

REVOKE ALL ON FUNCTION tern_calsync_deletions_due(int) FROM PUBLIC;
REVOKE ALL ON FUNCTION tern_calsync_event_deleted(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tern_calsync_deletions_due(int), tern_calsync_event_deleted(uuid)
    TO tern_calsync;

GRANT SELECT, INSERT, DELETE ON calendar_deletions TO tern_sweeper;
GRANT SELECT ON calendar_deletions TO tern_calsync, tern_ctl;
