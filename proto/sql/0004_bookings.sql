-- 0004_bookings.sql - bookings as the source of truth, availability in SQL,
-- and what tern-calsync needs to mirror bookings and import busy time.
--
-- Applied by `ternctl migrate` after 0003 (one transaction, never edited once
-- applied). Everything tenant-owned here has tenant_id in its key and forced
-- row-level security with the same policy as 0001.
--
-- Model (all times are timestamptz; wall-clock rules are interpreted in the
-- tenant's IANA zone, tenants.time_zone, by Postgres's own zone rules):
--   business_hours     weekly opening windows: isodow 1 (Monday) .. 7, local
--                      opens/closes (several rows per day: a lunch break)
--   hours_exceptions   a local date whose hours replace the weekly ones: a
--                      row with opens NULL closes the day (a holiday); rows
--                      with times are that day's only windows
--   services           + buffer_before_min (buffer_min of 0001 is the buffer
--                      after), min_notice_min, horizon_days, slot_step_min
--                      (NULL: the duration), active
--   resources          optional bookable resources (staff, rooms), each
--                      mirrored to its own calendar (oauth_accounts.resource_id)
--   service_resources  which resources perform a service; a service without
--                      rows uses the tenant's default resource (resource_key '')
--   bookings           + buffers copied from the service at booking time and
--                      `blocked`, the booked range padded by them. The
--                      exclusion constraint of 0001 (on `during`) is replaced
--                      by one on `blocked` over held and confirmed rows, so
--                      two bookings and their buffers can never overlap on
--                      one resource, whatever the concurrency (23P01).
--                      Holds: status 'held' with hold_expires_at (NULL: until
--                      confirmed or cancelled); an expired
--                      hold no longer counts as busy and is marked 'expired'
--                      by the next booking that needs its time.
--                      Calendar mirror state: sync_version is bumped by every
--                      change the calendar must follow; tern-calsync records
--                      synced_version, the event's id, href and ETag.
--   busy_blocks        busy time imported from external calendars (start and
--                      end only, nothing else about foreign events), or
--                      entered by hand (account_id NULL)
--
-- Every function filters on tern_current_tenant() itself, not only through
-- row-level security, so it gives the same answer to a role that bypasses
-- RLS (the operator, tests).
--
-- Availability: tern_available_slots() = business hours in the tenant's zone
-- (with exceptions), stepped by the service's slot step, minus notice and
-- horizon, minus busy blocks and bookings (both padded by the buffers).
-- tern_booking_check() explains why one start is not bookable; tern_book()
-- and tern_reschedule() write through the same check and the constraint.
--
-- Privileges (least privilege, RLS stays forced):
--   tern_agent    reads the hours, exceptions, resources and busy time; books
--                 through tern_book/tern_reschedule (SECURITY INVOKER: its own
--                 grants and RLS apply); may update only the booking columns
--                 a booking change needs (not the calendar mirror columns)
--   tern_calsync  reads bookings, services, resources; updates only the
--                 mirror columns of bookings; reads busy_blocks and replaces
--                 what it imported through tern_busy_replace() (SECURITY
--                 DEFINER, bound tenant only), so only the sweeper holds
--                 DELETE on tables
--   tern_sweeper  SELECT/DELETE on every new table (erasure, offboarding)
--   tern_ctl      writes the configuration tables
-- tern_calsync_pending() and tern_calsync_accounts_due() are the calsync's
-- only cross-tenant reads (ids only, SECURITY DEFINER like tern_routing).
-- Known gap (XXX): resources.id is not a foreign key of bookings.resource_id
-- (0001 made it free text); tern_book only ever writes a resource of the
-- service.

-- ------------------------------------------------------------------ helpers

-- tern_range_pad - r widened by before/after minutes. IMMUTABLE is honest
-- here: minute arithmetic on timestamptz does not depend on the time zone
-- (only day and month intervals do), and the generated column needs it.
CREATE FUNCTION tern_range_pad(r tstzrange, before_min int, after_min int) RETURNS tstzrange
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog
    AS $$ SELECT tstzrange(lower(r) - before_min * interval '1 minute',
                           upper(r) + after_min * interval '1 minute') $$;

-- tern_tenant_zone - the bound tenant's IANA zone
CREATE FUNCTION tern_tenant_zone() RETURNS text
    LANGUAGE sql STABLE
    AS $$ SELECT time_zone FROM tenants WHERE id = tern_current_tenant() $$;

-- tern_parse_ts - text to timestamptz, NULL when it is not one. A time
-- without an offset is read in the session's TimeZone (the booking code sets
-- it to the tenant's zone).
CREATE FUNCTION tern_parse_ts(s text) RETURNS timestamptz
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    IF s IS NULL OR length(s) > 64 OR s !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}' THEN
        RETURN NULL;
    END IF;
    RETURN s::timestamptz;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;

-- ------------------------------------------------------------------ hours

CREATE TABLE business_hours (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    weekday int NOT NULL CHECK (weekday BETWEEN 1 AND 7), -- ISO: 1 Monday .. 7 Sunday
    opens time NOT NULL,
    closes time NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK (closes > opens) -- no window crosses midnight: split it in two days
);

CREATE TABLE hours_exceptions (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    day date NOT NULL, -- local date in the tenant's zone
    opens time,        -- NULL with closes NULL: closed all day
    closes time,
    note text,
    PRIMARY KEY (tenant_id, id),
    CHECK ((opens IS NULL AND closes IS NULL) OR (opens IS NOT NULL AND closes > opens))
);
CREATE INDEX hours_exceptions_day ON hours_exceptions (tenant_id, day);

-- ------------------------------------------------------------------ services, resources

ALTER TABLE services
    ADD COLUMN buffer_before_min int NOT NULL DEFAULT 0 CHECK (buffer_before_min >= 0),
    ADD COLUMN min_notice_min int NOT NULL DEFAULT 60 CHECK (min_notice_min >= 0),
    ADD COLUMN horizon_days int NOT NULL DEFAULT 60 CHECK (horizon_days BETWEEN 1 AND 730),
    ADD COLUMN slot_step_min int CHECK (slot_step_min BETWEEN 5 AND 1440),
    ADD COLUMN active boolean NOT NULL DEFAULT true;

CREATE TABLE resources (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id text NOT NULL CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    name text NOT NULL,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE service_resources (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    service_id uuid NOT NULL,
    resource_id text NOT NULL,
    PRIMARY KEY (tenant_id, service_id, resource_id),
    FOREIGN KEY (tenant_id, service_id) REFERENCES services (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, resource_id) REFERENCES resources (tenant_id, id) ON DELETE CASCADE
);

-- ------------------------------------------------------------------ bookings

ALTER TABLE bookings DROP CONSTRAINT bookings_no_overlap;
ALTER TABLE bookings DROP CONSTRAINT bookings_status_check;
ALTER TABLE bookings
    ADD CONSTRAINT bookings_status_check
        CHECK (status IN ('held', 'confirmed', 'cancelled', 'expired')),
    ADD COLUMN buffer_before_min int NOT NULL DEFAULT 0 CHECK (buffer_before_min >= 0),
    ADD COLUMN buffer_after_min int NOT NULL DEFAULT 0 CHECK (buffer_after_min >= 0),
    ADD COLUMN blocked tstzrange
        GENERATED ALWAYS AS (tern_range_pad(during, buffer_before_min, buffer_after_min)) STORED,
    ADD COLUMN address text CHECK (length(address) <= 500),
    ADD COLUMN notes text CHECK (length(notes) <= 1000),
    ADD COLUMN confirmed_at timestamptz,
    ADD COLUMN cancelled_at timestamptz,
    -- calendar mirror: the booking changed (sync_version) / tern-calsync
    -- made the calendar match that version (synced_version)
    ADD COLUMN sync_version int NOT NULL DEFAULT 1,
    ADD COLUMN synced_version int NOT NULL DEFAULT 0,
    ADD COLUMN calendar_account_id uuid,
    ADD COLUMN external_href text,
    ADD COLUMN external_etag text,
    ADD COLUMN sync_error text,
    ADD COLUMN synced_at timestamptz;

-- No two held or confirmed bookings (with their buffers) overlap on one
-- resource, whatever the concurrency: SQLSTATE 23P01 -> TN_ECONFLICT.
ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap EXCLUDE USING gist
    (tenant_id WITH =, resource_key WITH =, blocked WITH &&)
    WHERE (status IN ('held', 'confirmed'));

CREATE INDEX bookings_contact ON bookings (tenant_id, contact_id, lower(during));
CREATE INDEX bookings_unsynced ON bookings (updated_at)
    WHERE sync_version > synced_version;

-- ------------------------------------------------------------------ busy time

CREATE TABLE busy_blocks (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    account_id uuid, -- the calendar it came from; NULL: entered by hand
    resource_key text NOT NULL DEFAULT '',
    during tstzrange NOT NULL
        CHECK (NOT isempty(during) AND NOT lower_inf(during) AND NOT upper_inf(during)),
    source text NOT NULL DEFAULT 'calendar',
    imported_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES oauth_accounts (tenant_id, id)
        ON DELETE CASCADE
);
CREATE INDEX busy_blocks_during ON busy_blocks USING gist (tenant_id, resource_key, during);
CREATE INDEX busy_blocks_account ON busy_blocks (tenant_id, account_id);

-- ------------------------------------------------------------------ calendar accounts

ALTER TABLE oauth_accounts
    ADD COLUMN username text,  -- CalDAV basic-auth user (its password is the sealed access token)
    ADD COLUMN busy_synced_at timestamptz,
    ADD COLUMN disconnected_at timestamptz;

-- ------------------------------------------------------------------ row-level security

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['business_hours', 'hours_exceptions', 'resources',
                             'service_resources', 'busy_blocks'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I'
                       ' USING (tenant_id = tern_current_tenant())'
                       ' WITH CHECK (tenant_id = tern_current_tenant())', t);
    END LOOP;
END
$$;

-- ------------------------------------------------------------------ availability

-- tern_open_windows - the bound tenant's opening windows on the local dates
-- from .. to, as instants. `date + time` is a local wall-clock time and
-- `AT TIME ZONE zone` turns it into an instant with the zone's rules, so a
-- day of a DST change gets its real length. An exception day replaces the
-- weekly hours.
CREATE FUNCTION tern_open_windows(p_from date, p_to date)
    RETURNS TABLE (day date, opens_at timestamptz, closes_at timestamptz)
    LANGUAGE sql STABLE
    AS $$
        SELECT d.day, (d.day + x.opens) AT TIME ZONE z.zone,
               (d.day + x.closes) AT TIME ZONE z.zone
          FROM (SELECT g::date AS day
                  FROM generate_series(p_from::timestamp, p_to::timestamp, interval '1 day') g) d
         CROSS JOIN (SELECT tern_tenant_zone() AS zone) z
         CROSS JOIN LATERAL (
                SELECT e.opens, e.closes FROM hours_exceptions e
                 WHERE e.tenant_id = tern_current_tenant() AND e.day = d.day
                   AND e.opens IS NOT NULL
                UNION ALL
                SELECT h.opens, h.closes FROM business_hours h
                 WHERE h.tenant_id = tern_current_tenant()
                   AND h.weekday = extract(isodow FROM d.day)::int
                   AND NOT EXISTS (SELECT 1 FROM hours_exceptions e2
                                    WHERE e2.tenant_id = tern_current_tenant()
                                      AND e2.day = d.day)) x
         WHERE z.zone IS NOT NULL
    $$;

-- tern_service_resources - the resource keys that perform a service: its
-- active resources, or '' (the default resource) when it names none
CREATE FUNCTION tern_service_resources(p_service uuid) RETURNS SETOF text
    LANGUAGE sql STABLE
    AS $$
        SELECT sr.resource_id FROM service_resources sr
          JOIN resources r ON r.tenant_id = sr.tenant_id AND r.id = sr.resource_id
         WHERE sr.tenant_id = tern_current_tenant() AND sr.service_id = p_service AND r.active
        UNION ALL
        SELECT '' WHERE NOT EXISTS (SELECT 1 FROM service_resources s2
                                     WHERE s2.tenant_id = tern_current_tenant()
                                       AND s2.service_id = p_service)
    $$;

-- tern_slot_free - is [st, en) padded by the buffers free on resource rk?
-- Held bookings count until they expire; p_ignore (a booking being
-- rescheduled) does not count. The same predicate as the exclusion
-- constraint, plus imported busy time.
CREATE FUNCTION tern_slot_free(rk text, st timestamptz, en timestamptz, bb int, ba int,
                               p_ignore uuid)
    RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
        SELECT NOT EXISTS (
                   SELECT 1 FROM bookings b
                    WHERE b.tenant_id = tern_current_tenant() AND b.resource_key = rk
                      AND b.status IN ('held', 'confirmed')
                      AND (b.status = 'confirmed' OR b.hold_expires_at IS NULL
                           OR b.hold_expires_at > now())
                      AND b.id IS DISTINCT FROM p_ignore
                      AND b.blocked && tern_range_pad(tstzrange(st, en), bb, ba))
           AND NOT EXISTS (
                   SELECT 1 FROM busy_blocks k
                    WHERE k.tenant_id = tern_current_tenant() AND k.resource_key = rk
                      AND k.during && tern_range_pad(tstzrange(st, en), bb, ba))
    $$;

-- tern_candidate_slots - every slot of the service's grid inside opening
-- hours on local dates from .. to, per resource, before any other rule
CREATE FUNCTION tern_candidate_slots(p_service uuid, p_from date, p_to date)
    RETURNS TABLE (resource_key text, slot_start timestamptz, slot_end timestamptz)
    LANGUAGE sql STABLE
    AS $$
        SELECT r.rk, g.t, g.t + s.duration_min * interval '1 minute'
          FROM services s
         CROSS JOIN tern_open_windows(p_from, p_to) w
         CROSS JOIN LATERAL generate_series(
                w.opens_at, w.closes_at - s.duration_min * interval '1 minute',
                COALESCE(s.slot_step_min, s.duration_min) * interval '1 minute') g(t)
         CROSS JOIN LATERAL tern_service_resources(s.id) r(rk)
         WHERE s.tenant_id = tern_current_tenant() AND s.id = p_service AND s.active
    $$;

-- tern_available_slots - bookable slots of a service on the local dates
-- from .. to: candidates that respect notice and horizon and are free.
-- p_resource limits to one resource; p_ignore is a booking being moved.
CREATE FUNCTION tern_available_slots(p_service uuid, p_from date, p_to date,
                                     p_resource text DEFAULT NULL, p_ignore uuid DEFAULT NULL)
    RETURNS TABLE (resource_key text, slot_start timestamptz, slot_end timestamptz)
    LANGUAGE sql STABLE
    -- The planner cannot estimate set-returning functions (1000 rows each) and
    -- would JIT-compile a query that takes a millisecond: seconds lost.
    SET jit = off
    AS $$
        SELECT c.resource_key, c.slot_start, c.slot_end
          FROM tern_candidate_slots(p_service, p_from, p_to) c
          JOIN services s ON s.tenant_id = tern_current_tenant() AND s.id = p_service
         WHERE c.slot_start >= now() + s.min_notice_min * interval '1 minute'
           AND c.slot_start <= now() + s.horizon_days * interval '1 day'
           AND (p_resource IS NULL OR c.resource_key = p_resource)
           AND tern_slot_free(c.resource_key, c.slot_start, c.slot_end, s.buffer_before_min,
                              s.buffer_min, p_ignore)
         ORDER BY c.slot_start, c.resource_key
    $$;

-- tern_booking_check - why p_start is not bookable for the service (on
-- p_resource, or on any of its resources), NULL when it is:
--   unknown_service | bad_arguments (no start) | past | too_soon | too_far | closed | not_a_slot |
--   unknown_resource | taken
CREATE FUNCTION tern_booking_check(p_service uuid, p_start timestamptz, p_resource text,
                                   p_ignore uuid DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql STABLE
    SET jit = off
    AS $$
DECLARE
    s services%ROWTYPE;
    d date;
BEGIN
    SELECT * INTO s FROM services
     WHERE tenant_id = tern_current_tenant() AND id = p_service AND active;
    IF NOT FOUND THEN
        RETURN 'unknown_service';
    ELSIF p_start IS NULL THEN
        RETURN 'bad_arguments';
    ELSIF p_start < now() THEN
        RETURN 'past';
    ELSIF p_start < now() + s.min_notice_min * interval '1 minute' THEN
        RETURN 'too_soon';
    ELSIF p_start > now() + s.horizon_days * interval '1 day' THEN
        RETURN 'too_far';
    END IF;
    IF p_resource IS NOT NULL
       AND p_resource NOT IN (SELECT tern_service_resources(p_service)) THEN
        RETURN 'unknown_resource';
    END IF;
    d := (p_start AT TIME ZONE tern_tenant_zone())::date;
    IF NOT EXISTS (SELECT 1 FROM tern_open_windows(d, d) w
                    WHERE p_start >= w.opens_at
                      AND p_start + s.duration_min * interval '1 minute' <= w.closes_at) THEN
        RETURN 'closed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM tern_candidate_slots(p_service, d, d) c
                    WHERE c.slot_start = p_start) THEN
        RETURN 'not_a_slot';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM tern_available_slots(p_service, d, d, p_resource, p_ignore) a
                    WHERE a.slot_start = p_start) THEN
        RETURN 'taken';
    END IF;
    RETURN NULL;
END
$$;

-- ------------------------------------------------------------------ writes

-- tern_book - book p_start for a contact on p_resource or the first free
-- resource of the service. Held (p_hold_min > 0, expiring) or confirmed.
-- Returns the booking id, or NULL and the reason (tern_booking_check's, or
-- 'taken' when a concurrent booking won the exclusion constraint). Expired
-- holds in the way are marked 'expired' first: the constraint cannot see
-- time, so they must leave the constrained set.
CREATE FUNCTION tern_book(p_service uuid, p_contact uuid, p_start timestamptz, p_resource text,
                          p_hold_min int, p_address text, p_notes text,
                          OUT booking_id uuid, OUT reason text)
    LANGUAGE plpgsql VOLATILE
    SET jit = off
    AS $$
DECLARE
    s services%ROWTYPE;
    rk text;
    r tstzrange;
BEGIN
    reason := tern_booking_check(p_service, p_start, p_resource);
    IF reason IS NOT NULL THEN
        RETURN;
    END IF;
    SELECT * INTO s FROM services WHERE tenant_id = tern_current_tenant() AND id = p_service;
    r := tstzrange(p_start, p_start + s.duration_min * interval '1 minute');
    FOR rk IN SELECT a.resource_key FROM tern_available_slots(p_service,
                  (p_start AT TIME ZONE tern_tenant_zone())::date,
                  (p_start AT TIME ZONE tern_tenant_zone())::date, p_resource) a
               WHERE a.slot_start = p_start ORDER BY a.resource_key LOOP
        BEGIN
            UPDATE bookings b SET status = 'expired', updated_at = now()
             WHERE b.tenant_id = tern_current_tenant() AND b.resource_key = rk
               AND b.status = 'held' AND b.hold_expires_at <= now()
               AND b.blocked && tern_range_pad(r, s.buffer_before_min, s.buffer_min);
            INSERT INTO bookings (tenant_id, contact_id, service_id, resource_id, during, status,
                                  hold_expires_at, buffer_before_min, buffer_after_min, address,
                                  notes, confirmed_at)
            VALUES (tern_current_tenant(), p_contact, p_service, NULLIF(rk, ''), r,
                    CASE WHEN p_hold_min > 0 THEN 'held' ELSE 'confirmed' END,
                    CASE WHEN p_hold_min > 0 THEN now() + p_hold_min * interval '1 minute' END,
                    s.buffer_before_min, s.buffer_min, p_address, p_notes,
                    CASE WHEN p_hold_min > 0 THEN NULL ELSE now() END)
            RETURNING id INTO booking_id;
            RETURN;
        EXCEPTION WHEN exclusion_violation THEN
            NULL; -- lost the race for this resource: try the next one
        END;
    END LOOP;
    reason := 'taken';
END
$$;

-- tern_reschedule - move a contact's held or confirmed future booking to
-- p_start (same service; its resource if free there, else another one).
-- Returns NULL or the reason: not_found | plus tern_booking_check's.
CREATE FUNCTION tern_reschedule(p_booking uuid, p_contact uuid, p_start timestamptz)
    RETURNS text
    LANGUAGE plpgsql VOLATILE
    SET jit = off
    AS $$
DECLARE
    b bookings%ROWTYPE;
    s services%ROWTYPE;
    why text;
    rk text;
BEGIN
    SELECT * INTO b FROM bookings
     WHERE tenant_id = tern_current_tenant() AND id = p_booking AND contact_id = p_contact AND status IN ('held', 'confirmed')
       AND (status = 'confirmed' OR hold_expires_at IS NULL OR hold_expires_at > now())
       AND lower(during) > now()
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'not_found';
    END IF;
    why := tern_booking_check(b.service_id, p_start, NULL, p_booking);
    IF why IS NOT NULL THEN
        RETURN why;
    END IF;
    SELECT * INTO s FROM services WHERE tenant_id = b.tenant_id AND id = b.service_id;
    FOR rk IN SELECT a.resource_key FROM tern_available_slots(b.service_id,
                  (p_start AT TIME ZONE tern_tenant_zone())::date,
                  (p_start AT TIME ZONE tern_tenant_zone())::date, NULL, p_booking) a
               WHERE a.slot_start = p_start
               ORDER BY a.resource_key <> b.resource_key, a.resource_key LOOP
        BEGIN
            UPDATE bookings
               SET during = tstzrange(p_start, p_start + s.duration_min * interval '1 minute'),
                   resource_id = NULLIF(rk, ''), buffer_before_min = s.buffer_before_min,
                   buffer_after_min = s.buffer_min, sync_version = sync_version + 1,
                   updated_at = now()
             WHERE tenant_id = b.tenant_id AND id = p_booking;
            RETURN NULL;
        EXCEPTION WHEN exclusion_violation THEN
            NULL;
        END;
    END LOOP;
    RETURN 'taken';
END
$$;

-- tern_booking_local - an instant as RFC 3339 text in the bound tenant's zone
-- ("2026-03-29T10:00:00+02:00"), computed with Postgres's zone rules.
CREATE FUNCTION tern_booking_local(t timestamptz) RETURNS text
    LANGUAGE sql STABLE
    AS $$
        SELECT to_char(t AT TIME ZONE z, 'YYYY-MM-DD"T"HH24:MI:SS')
               || CASE WHEN off < interval '0' THEN '-' ELSE '+' END
               || to_char(abs(extract(epoch FROM off))::int / 3600, 'FM00') || ':'
               || to_char(abs(extract(epoch FROM off))::int % 3600 / 60, 'FM00')
          FROM (SELECT tern_tenant_zone() AS z) zz,
               LATERAL (SELECT (t AT TIME ZONE zz.z) - (t AT TIME ZONE 'UTC') AS off) o
    $$;

-- ------------------------------------------------------------------ calsync scans

-- tern_calsync_pending - bookings whose calendar mirror is behind, changed
-- at least older_ms ago (the XADD from the booking path normally came
-- first). Ids only; every read of content happens bound to the tenant.
CREATE FUNCTION tern_calsync_pending(older_ms int, lim int)
    RETURNS TABLE (tenant_id uuid, booking_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
        SELECT b.tenant_id, b.id FROM public.bookings b
          JOIN public.tenants t ON t.id = b.tenant_id
         WHERE b.sync_version > b.synced_version AND t.deleted_at IS NULL
           AND b.updated_at < now() - make_interval(secs => older_ms / 1000.0)
         ORDER BY b.updated_at
         LIMIT lim
    $$;

-- tern_calsync_accounts_due - connected calendar accounts whose busy time
-- was last imported more than every_ms ago (or never)
CREATE FUNCTION tern_calsync_accounts_due(every_ms int, lim int)
    RETURNS TABLE (tenant_id uuid, account_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
        SELECT a.tenant_id, a.id FROM public.oauth_accounts a
          JOIN public.tenants t ON t.id = a.tenant_id
         WHERE a.disconnected_at IS NULL AND NOT a.needs_reconnect AND t.deleted_at IS NULL
           AND a.calendar_id IS NOT NULL
           AND (a.busy_synced_at IS NULL
                OR a.busy_synced_at < now() - make_interval(secs => every_ms / 1000.0))
         ORDER BY a.busy_synced_at NULLS FIRST
         LIMIT lim
    $$;

-- tern_busy_replace - replace the busy time imported from one calendar
-- account inside a window by p_ranges (the account's resource), in the bound
-- tenant only. SECURITY DEFINER so that tern_calsync replaces what it
-- imported without holding DELETE on the table (only the sweeper does: see
-- 0001). Returns the number of ranges stored.
CREATE FUNCTION tern_busy_replace(p_account uuid, p_window tstzrange, p_ranges tstzrange[])
    RETURNS int
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
DECLARE
    t uuid := tern_current_tenant();
    rk text;
    n int;
BEGIN
    SELECT COALESCE(a.resource_id, '') INTO rk FROM public.oauth_accounts a
     WHERE a.tenant_id = t AND a.id = p_account;
    IF t IS NULL OR NOT FOUND THEN
        RAISE EXCEPTION 'no such calendar account' USING ERRCODE = 'no_data_found';
    END IF;
    DELETE FROM public.busy_blocks b
     WHERE b.tenant_id = t AND b.account_id = p_account AND b.during && p_window;
    INSERT INTO public.busy_blocks (tenant_id, account_id, resource_key, during)
    SELECT t, p_account, rk, r FROM unnest(p_ranges) r
     WHERE r IS NOT NULL AND NOT isempty(r) AND NOT lower_inf(r) AND NOT upper_inf(r);
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE public.oauth_accounts SET busy_synced_at = now(), updated_at = now()
     WHERE tenant_id = t AND id = p_account;
    RETURN n;
END
$$;

REVOKE ALL ON FUNCTION tern_busy_replace(uuid, tstzrange, tstzrange[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tern_busy_replace(uuid, tstzrange, tstzrange[]) TO tern_calsync;

REVOKE ALL ON FUNCTION tern_calsync_pending(int, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION tern_calsync_accounts_due(int, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tern_calsync_pending(int, int), tern_calsync_accounts_due(int, int)
    TO tern_calsync, tern_ctl;

-- ------------------------------------------------------------------ grants

GRANT SELECT ON business_hours, hours_exceptions, resources, service_resources, busy_blocks
    TO tern_agent;
REVOKE UPDATE ON bookings FROM tern_agent;
GRANT UPDATE (status, during, resource_id, buffer_before_min, buffer_after_min, hold_expires_at,
              address, notes, confirmed_at, cancelled_at, sync_version, updated_at)
    ON bookings TO tern_agent;

REVOKE UPDATE ON bookings FROM tern_calsync;
GRANT UPDATE (synced_version, calendar_account_id, external_event_id, external_href,
              external_etag, sync_error, synced_at)
    ON bookings TO tern_calsync;
GRANT SELECT ON resources, service_resources, business_hours, hours_exceptions TO tern_calsync;
GRANT SELECT ON busy_blocks TO tern_calsync; -- writes through tern_busy_replace()

GRANT SELECT, DELETE ON business_hours, hours_exceptions, resources, service_resources,
    busy_blocks TO tern_sweeper;

GRANT SELECT, INSERT, UPDATE, DELETE ON business_hours, hours_exceptions, resources,
    service_resources TO tern_ctl;
GRANT SELECT ON busy_blocks TO tern_ctl;
