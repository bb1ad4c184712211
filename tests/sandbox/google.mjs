// Google under /google: OAuth 2.0 / OpenID Connect (authorize, token,
// revoke, userinfo) recorded as provider `google-oauth`, and Calendar API v3
// (events insert/get/patch/delete/list, freeBusy) under /google/calendar/v3,
// recorded as `google`. Shapes follow Google's documentation: token errors
// are {"error","error_description"}, API errors are
// {"error":{code,message,errors[{message,domain,reason}],status}}.
//
// Push (events.watch, channels.stop): a watch registers a channel on the
// calendar and POSTs its "sync" message to the channel's address at once;
// every later insert, patch or delete on that calendar (by anyone) POSTs an
// "exists" message, with the X-Goog-* headers and an empty body, to every
// live channel of the calendar. Each delivery is recorded as provider
// `google-push` (its answer in .status when it arrives).
//
// Users: an authorization (or an unknown code) is for the user named by
// login_hint, default owner@example.com; `sub` is derived from the email.
// Each user has one calendar whose id is the email ("primary" too).
// State lives in st.google and is dropped by /_sandbox/reset.
import { createHash, randomBytes } from 'node:crypto';
import { bearer, contentType, faultAnswer, parseForm, parseJson, scripted } from './common.mjs';
import { googleError } from './gmail.mjs';
import { addRecord, credentialOk, takeFault, takeScript } from './record.mjs';

const DEFAULT_USER = 'owner@example.com';
const ID_RE = /^[a-v0-9]{5,1024}$/;

// state - the Google state of this sandbox; a reset replaces st.records, and
// with it this state (record.mjs knows nothing about Google).
function state(st) {
    if (!st.google || st.google.records !== st.records) {
        st.google = { records: st.records, codes: new Map(), access: new Map(), refresh: new Map(),
            calendars: new Map(), etag: 1, channels: new Map() };
    }
    return st.google;
}

const cfg = (st) => st.config.google || {};
const nowS = (st) => Math.floor(Date.now() / 1000) + Number(cfg(st).clock_offset_s || 0);
const b64url = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const sha256 = (s) => createHash('sha256').update(s).digest();

function user(email) {
    const sub = BigInt('0x' + sha256(email).toString('hex').slice(0, 16)).toString().padStart(21, '1');
    const local = email.split('@')[0];
    const name = local.charAt(0).toUpperCase() + local.slice(1) + ' Example';
    return { sub, email, name, given_name: name.split(' ')[0], family_name: 'Example',
        picture: `https://lh3.googleusercontent.com/a/sandbox-${sub}=s96-c` };
}

// ---------------------------------------------------------------- OAuth

const tokenError = (status, error, description) => ({ status, body: { error, error_description: description },
    headers: { 'cache-control': 'no-cache, no-store, max-age=0, must-revalidate', pragma: 'no-cache' } });

// clientOk - with google.clients configured ({id: secret}) both must match.
function clientOk(st, id, secret) {
    const clients = cfg(st).clients;
    if (!id) return false;
    return !clients || (id in clients && clients[id] === secret);
}

// authorize - GET /o/oauth2/v2/auth: the user consents at once; 302 to
// redirect_uri with a fresh code bound to client, redirect_uri and PKCE.
function authorize(ctx) {
    const q = ctx.query;
    if (!q.client_id || !q.redirect_uri || q.response_type !== 'code')
        return { status: 400, body: 'Error 400: invalid_request', headers: { 'content-type': 'text/html; charset=utf-8' } };
    const g = state(ctx.st);
    const code = '4/0A' + randomBytes(24).toString('base64url');
    g.codes.set(code, { client: q.client_id, redirect: q.redirect_uri, email: q.login_hint || DEFAULT_USER,
        challenge: q.code_challenge || null, method: q.code_challenge_method || 'plain', scope: q.scope || '',
        used: false });
    const loc = new URL(q.redirect_uri);
    loc.searchParams.set('state', q.state ?? '');
    loc.searchParams.set('code', code);
    loc.searchParams.set('scope', q.scope || '');
    return { status: 302, body: '', headers: { location: loc.toString() } };
}

// issue - an access token (and a refresh token when asked) for a grant.
function issue(st, g, r, grant, withRefresh) {
    const ttl = r.expires_in ?? cfg(st).token_ttl_s ?? 3599;
    const access = 'ya29.' + randomBytes(32).toString('base64url');
    g.access.set(access, { sub: grant.sub, email: grant.email, exp: nowS(st) + ttl, refresh: grant.refresh });
    const body = { access_token: access, expires_in: ttl, scope: grant.scope, token_type: 'Bearer' };
    if (withRefresh) body.refresh_token = grant.refresh;
    if (/\bopenid\b/.test(grant.scope) || withRefresh) {
        const u = user(grant.email);
        const now = nowS(st);
        body.id_token = [b64url({ alg: 'RS256', kid: 'sandbox', typ: 'JWT' }),
            b64url({ iss: 'https://accounts.google.com', azp: grant.client, aud: grant.client, sub: u.sub,
                email: u.email, email_verified: true, at_hash: sha256(access).subarray(0, 16).toString('base64url'),
                name: u.name, picture: u.picture, given_name: u.given_name, family_name: u.family_name,
                iat: now, exp: now + 3600 }),
            randomBytes(64).toString('base64url')].join('.');
    }
    return { status: 200, body, headers: { 'cache-control': 'no-cache, no-store, max-age=0, must-revalidate', pragma: 'no-cache' } };
}

// token - POST /token, form-encoded: authorization_code (with PKCE) or
// refresh_token.
function token(ctx) {
    const f = contentType(ctx.req) === 'application/x-www-form-urlencoded' ? parseForm(ctx.body.toString('utf8')) : {};
    ctx.rec.json = f;
    if (ctx.req.method !== 'POST') return tokenError(405, 'invalid_request', 'Method not allowed.');
    if (!clientOk(ctx.st, f.client_id, f.client_secret)) return tokenError(401, 'invalid_client', 'The OAuth client was not found.');
    const fault = takeFault(ctx.st, 'google-oauth');
    if (fault) return faultAnswer(fault, (x) => tokenError(x.status || 500, x.code || 'internal_failure', x.message || 'Backend Error'));
    const g = state(ctx.st);
    let grant;
    let withRefresh = false;
    if (f.grant_type === 'authorization_code') {
        if (!f.code) return tokenError(400, 'invalid_request', 'Missing required parameter: code');
        if (!f.redirect_uri) return tokenError(400, 'invalid_request', 'Missing parameter: redirect_uri');
        let c = g.codes.get(f.code);
        if (!c) { // a code the sandbox did not issue: any verifier, the default user
            c = { client: f.client_id, redirect: f.redirect_uri, email: DEFAULT_USER, challenge: null, scope:
                'openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile ' +
                'https://www.googleapis.com/auth/calendar.readonly https://www.googleapis.com/auth/calendar.events', used: false };
            g.codes.set(f.code, c);
        }
        if (c.used) return tokenError(400, 'invalid_grant', 'Bad Request');
        if (c.client !== f.client_id) return tokenError(400, 'unauthorized_client', 'Unauthorized');
        if (c.redirect !== f.redirect_uri) return tokenError(400, 'redirect_uri_mismatch', 'Bad Request');
        if (c.challenge) {
            if (!f.code_verifier) return tokenError(400, 'invalid_grant', 'Missing code verifier.');
            const got = c.method === 'S256' ? sha256(f.code_verifier).toString('base64url') : f.code_verifier;
            if (got !== c.challenge) return tokenError(400, 'invalid_grant', 'Invalid code verifier.');
        }
        c.used = true;
        const u = user(c.email);
        grant = { sub: u.sub, email: u.email, client: f.client_id, scope: c.scope,
            refresh: '1//0g' + randomBytes(40).toString('base64url') };
        g.refresh.set(grant.refresh, { ...grant, revoked: false });
        withRefresh = true;
    } else if (f.grant_type === 'refresh_token') {
        if (!f.refresh_token) return tokenError(400, 'invalid_request', 'Missing required parameter: refresh_token');
        const r = g.refresh.get(f.refresh_token);
        if (!r || r.revoked) return tokenError(400, 'invalid_grant', 'Token has been expired or revoked.');
        if (r.client !== f.client_id) return tokenError(400, 'unauthorized_client', 'Unauthorized');
        grant = r;
    } else {
        return tokenError(400, 'unsupported_grant_type', `Invalid grant_type: ${f.grant_type ?? ''}`);
    }
    const r = takeScript(ctx.st, 'google-oauth') || {};
    return scripted(r, (s) => issue(ctx.st, g, s, grant, withRefresh),
        (x) => tokenError(x.status, x.code || 'invalid_grant', x.message || 'Bad Request'));
}

// revoke - POST /revoke with token=<access or refresh token> (form or query);
// revoking either kills the refresh token and every access token of it.
function revoke(ctx) {
    const f = { ...ctx.query, ...parseForm(ctx.body.toString('utf8')) };
    ctx.rec.json = f;
    const fault = takeFault(ctx.st, 'google-oauth');
    if (fault) return faultAnswer(fault, (x) => tokenError(x.status || 500, x.code || 'internal_failure', x.message || 'Backend Error'));
    const g = state(ctx.st);
    const a = g.access.get(f.token);
    const refresh = a ? a.refresh : f.token;
    const r = g.refresh.get(refresh);
    if (!r || r.revoked) return tokenError(400, 'invalid_token', 'Token expired or revoked');
    r.revoked = true;
    for (const [k, v] of g.access) if (v.refresh === refresh) g.access.delete(k);
    return { status: 200, body: {} };
}

// issuedToken - whether this sandbox's token endpoint issued the access
// token t: 'valid', 'expired' (its expires_in has passed, clock_offset_s
// counted), or null (never issued, or revoked). gmail.mjs checks its
// Bearer tokens with it.
export function issuedToken(st, t) {
    const a = t ? state(st).access.get(t) : null;
    if (!a) return null;
    return a.exp <= nowS(st) ? 'expired' : 'valid';
}

// access - the grant of the request's Bearer token, or a 401 answer.
function access(ctx, provider) {
    const t = bearer(ctx.req);
    const g = state(ctx.st);
    const a = t ? g.access.get(t) : null;
    if (!t) {
        const e = googleError(401, 'Request is missing required authentication credential. Expected OAuth 2 access ' +
            'token, login cookie or other valid authentication credential. See ' +
            'https://developers.google.com/identity/sign-in/web/devconsole-project.', 'required');
        e.body.error.errors[0].message = 'Login Required.';
        Object.assign(e.body.error.errors[0], { locationType: 'header', location: 'Authorization' });
        e.headers = { 'www-authenticate': 'Bearer realm="https://accounts.google.com/"' };
        return { denied: e };
    }
    if (!a || a.exp <= nowS(ctx.st) || !credentialOk(ctx.st, provider, t)) {
        const e = googleError(401, 'Request had invalid authentication credentials. Expected OAuth 2 access token, ' +
            'login cookie or other valid authentication credential. See ' +
            'https://developers.google.com/identity/sign-in/web/devconsole-project.', 'authError');
        e.body.error.errors[0].message = 'Invalid Credentials';
        Object.assign(e.body.error.errors[0], { locationType: 'header', location: 'Authorization' });
        e.headers = { 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"' };
        return { denied: e };
    }
    return { grant: a };
}

function userinfo(ctx) {
    const { denied, grant } = access(ctx, 'google-oauth');
    if (denied) return denied;
    const fault = takeFault(ctx.st, 'google-oauth');
    if (fault) return faultAnswer(fault, (x) => googleError(x.status || 500, x.message, x.reason));
    const u = user(grant.email);
    return { status: 200, body: { sub: u.sub, name: u.name, given_name: u.given_name, family_name: u.family_name,
        picture: u.picture, email: u.email, email_verified: true } };
}

// ---------------------------------------------------------------- Calendar

function calendar(g, grant, cid) {
    const id = cid === 'primary' ? grant.email : cid;
    if (id !== grant.email) return null; // only the user's own calendar
    if (!g.calendars.has(id)) g.calendars.set(id, new Map());
    return { id, events: g.calendars.get(id) };
}

// apiError - Calendar's error body; codes without a canonical status name
// (409, 410, 412) carry none, as Calendar v3 answers them.
function apiError(status, message, reason) {
    const a = googleError(status, message, reason);
    if (a.body.error.status === 'UNKNOWN') delete a.body.error.status;
    return a;
}
const ms = (t) => (t?.dateTime ? Date.parse(t.dateTime) : t?.date ? Date.parse(t.date + 'T00:00:00Z') : NaN);

// A calendar day starts at its zone's midnight: an all-day date is read in
// the calendar's zone (as Google does), a dateTime carries its own offset.
// The zone's rules are Intl's (Node's ICU); a zone it does not know is UTC.
const clocks = new Map();
function clock(zone) {
    let f = clocks.get(zone);
    if (f === undefined) {
        try {
            f = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric',
                month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
        } catch {
            f = null;
        }
        clocks.set(zone, f);
    }
    return f;
}

// ahead - how far zone's clock is ahead of UTC at instant t (ms)
function ahead(f, t) {
    const p = {};
    for (const x of f.formatToParts(t)) p[x.type] = x.value;
    return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - Math.floor(t / 1000) * 1000;
}

// msIn - t (an event's start or end) as epoch ms, an all-day date at the
// midnight of zone (the offset found at the guess, then at the instant it
// gives: right on both sides of a change)
function msIn(t, zone) {
    const f = t?.date && !t?.dateTime && zone !== 'UTC' ? clock(zone) : null;
    const utc = ms(t);
    if (f === null || Number.isNaN(utc)) return utc;
    return utc - ahead(f, utc - ahead(f, utc));
}
const iso = (t) => new Date(t).toISOString().replace(/\.000Z$/, 'Z');

function timesOk(ev) {
    if (!ev.start || (!ev.start.dateTime && !ev.start.date)) return apiError(400, 'Missing start time.', 'required');
    if (!ev.end || (!ev.end.dateTime && !ev.end.date)) return apiError(400, 'Missing end time.', 'required');
    if (Number.isNaN(ms(ev.start)) || Number.isNaN(ms(ev.end))) return apiError(400, 'Invalid value for: start/end', 'invalid');
    if (ms(ev.end) < ms(ev.start)) return apiError(400, 'The specified time range is empty.', 'timeRangeEmpty');
    return null;
}

function stamp(g, ev) {
    ev.etag = `"${3400000000000000 + g.etag++}"`;
    ev.updated = new Date().toISOString();
}

function insert(ctx, g, cal, body) {
    const p = parseJson(body);
    if (!p.ok || typeof p.value !== 'object' || p.value === null) return apiError(400, 'Parse Error', 'parseError');
    const ev = p.value;
    if (ev.id !== undefined && (typeof ev.id !== 'string' || !ID_RE.test(ev.id)))
        return apiError(400, 'Invalid resource id value.', 'invalid');
    const bad = timesOk(ev);
    if (bad) return bad;
    const r = takeScript(ctx.st, 'google') || {};
    return scripted(r, () => {
        const id = ev.id || randomBytes(13).toString('hex').replace(/[w-z]/g, 'a');
        if (cal.events.has(id)) return apiError(409, 'The requested identifier already exists.', 'duplicate');
        const now = new Date().toISOString();
        const out = { kind: 'calendar#event', etag: '', id, status: ev.status || 'confirmed',
            htmlLink: `https://www.google.com/calendar/event?eid=${Buffer.from(id + ' ' + cal.id).toString('base64url')}`,
            created: now, updated: now, summary: ev.summary, description: ev.description, location: ev.location,
            creator: { email: cal.id, self: true }, organizer: { email: cal.id, self: true },
            start: ev.start, end: ev.end, transparency: ev.transparency, iCalUID: `${id}@google.com`, sequence: 0,
            attendees: ev.attendees, extendedProperties: ev.extendedProperties,
            reminders: ev.reminders || { useDefault: true }, eventType: 'default' };
        for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
        stamp(g, out);
        cal.events.set(id, out);
        return { status: 200, body: out };
    }, (x) => apiError(x.status, x.message, x.reason));
}

function ifMatch(ctx, ev) {
    const m = ctx.req.headers['if-match'];
    return m && m !== '*' && m !== ev.etag ? apiError(412, 'Precondition Failed', 'conditionNotMet') : null;
}

function patch(ctx, g, ev, body) {
    const p = parseJson(body);
    if (!p.ok || typeof p.value !== 'object' || p.value === null) return apiError(400, 'Parse Error', 'parseError');
    const pre = ifMatch(ctx, ev);
    if (pre) return pre;
    const ch = p.value;
    const next = { ...ev, ...ch, id: ev.id, etag: ev.etag, kind: ev.kind, iCalUID: ev.iCalUID };
    if (ch.extendedProperties) {
        next.extendedProperties = { ...(ev.extendedProperties || {}) };
        for (const k of ['private', 'shared'])
            if (ch.extendedProperties[k]) next.extendedProperties[k] = { ...(ev.extendedProperties?.[k] || {}), ...ch.extendedProperties[k] };
    }
    const bad = timesOk(next);
    if (bad) return bad;
    if (ms(next.start) !== ms(ev.start) || ms(next.end) !== ms(ev.end)) next.sequence = (ev.sequence || 0) + 1;
    stamp(g, next);
    Object.keys(ev).forEach((k) => delete ev[k]);
    Object.assign(ev, next);
    return { status: 200, body: ev };
}

// list - events.list: timeMin/timeMax (exclusive bounds on end/start),
// privateExtendedProperty (repeatable), showDeleted, maxResults, pageToken.
// timeZone is the calendar's: google.time_zones[calendar id], default UTC;
// the window's test reads an all-day date at that zone's midnight.
function list(ctx, cal) {
    const q = new URL(ctx.req.url, 'http://x').searchParams;
    const lo = q.get('timeMin') ? Date.parse(q.get('timeMin')) : -Infinity;
    const hi = q.get('timeMax') ? Date.parse(q.get('timeMax')) : Infinity;
    if (Number.isNaN(lo) || Number.isNaN(hi)) return apiError(400, 'Bad Request', 'badRequest');
    const props = q.getAll('privateExtendedProperty').map((s) => s.split('='));
    const max = Math.min(Number(q.get('maxResults') || 250), 2500);
    const from = Number(q.get('pageToken') || 0);
    const timeZone = cfg(ctx.st).time_zones?.[cal.id] || 'UTC';
    const all = [...cal.events.values()].filter((e) => (q.get('showDeleted') === 'true' || e.status !== 'cancelled') &&
        msIn(e.end, timeZone) > lo && msIn(e.start, timeZone) < hi &&
        props.every(([k, v]) => e.extendedProperties?.private?.[k] === v))
        .sort((a, b) => msIn(a.start, timeZone) - msIn(b.start, timeZone));
    const items = all.slice(from, from + max);
    const body = { kind: 'calendar#events', etag: `"p${Date.now()}"`, summary: cal.id, description: '',
        updated: new Date().toISOString(), timeZone, accessRole: 'owner',
        defaultReminders: [{ method: 'popup', minutes: 30 }] };
    if (from + max < all.length) body.nextPageToken = String(from + max);
    else body.nextSyncToken = 'CP' + randomBytes(12).toString('base64url');
    body.items = items;
    return { status: 200, body };
}

function freeBusy(ctx, g, grant) {
    const p = parseJson(ctx.body);
    const b = p.value;
    if (!p.ok || !b || !b.timeMin || !b.timeMax) return apiError(400, 'Bad Request', 'badRequest');
    const lo = Date.parse(b.timeMin);
    const hi = Date.parse(b.timeMax);
    if (!(hi > lo)) return apiError(400, 'The specified time range is empty.', 'timeRangeEmpty');
    const calendars = {};
    for (const it of b.items || []) {
        const cal = calendar(g, grant, it.id);
        if (!cal) {
            calendars[it.id] = { errors: [{ domain: 'global', reason: 'notFound' }], busy: [] };
            continue;
        }
        const z = cfg(ctx.st).time_zones?.[cal.id] || 'UTC';
        calendars[it.id] = { busy: [...cal.events.values()]
            .filter((e) => e.status !== 'cancelled' && e.transparency !== 'transparent' && msIn(e.end, z) > lo &&
                msIn(e.start, z) < hi)
            .sort((x, y) => msIn(x.start, z) - msIn(y.start, z))
            .map((e) => ({ start: iso(Math.max(msIn(e.start, z), lo)), end: iso(Math.min(msIn(e.end, z), hi)) })) };
    }
    return { status: 200, body: { kind: 'calendar#freeBusy', timeMin: iso(lo), timeMax: iso(hi), calendars } };
}

function calendarApi(ctx) {
    const { denied, grant } = access(ctx, 'google');
    if (denied) return denied;
    const fault = takeFault(ctx.st, 'google');
    if (fault) return faultAnswer(fault, (x) => apiError(x.status || 500, x.message, x.reason));
    const g = state(ctx.st);
    const method = ctx.req.method;
    if (ctx.path === '/calendar/v3/freeBusy' && method === 'POST') return freeBusy(ctx, g, grant);
    if (ctx.path === '/calendar/v3/channels/stop' && method === 'POST') return stop(ctx, g, grant);
    const m = /^\/calendar\/v3\/calendars\/([^/]+)\/events(?:\/([^/]+))?$/.exec(ctx.path);
    if (!m) return apiError(404, 'Not Found', 'notFound');
    const cal = calendar(g, grant, decodeURIComponent(m[1]));
    if (!cal) return apiError(404, 'Not Found', 'notFound');
    const su = ctx.query.sendUpdates;
    if (su !== undefined && !['all', 'externalOnly', 'none'].includes(su))
        return apiError(400, `Invalid value for sendUpdates: ${su}`, 'invalidParameter');
    if (!m[2]) {
        if (method === 'POST') return changed(ctx, g, cal, insert(ctx, g, cal, ctx.body));
        if (method === 'GET') return list(ctx, cal);
        return apiError(405, 'Method Not Allowed', 'httpMethodNotAllowed');
    }
    if (m[2] === 'watch' && method === 'POST') return watch(ctx, g, cal, ctx.body);
    const ev = cal.events.get(decodeURIComponent(m[2]));
    if (!ev) return apiError(404, 'Not Found', 'notFound');
    if (method === 'GET') return { status: 200, body: ev };
    if (method === 'PATCH') return changed(ctx, g, cal, patch(ctx, g, ev, ctx.body));
    if (method === 'DELETE') {
        if (ev.status === 'cancelled') return apiError(410, 'Resource has been deleted', 'deleted');
        const pre = ifMatch(ctx, ev);
        if (pre) return pre;
        ev.status = 'cancelled';
        stamp(g, ev);
        return changed(ctx, g, cal, { status: 204, body: '' });
    }
    return apiError(405, 'Method Not Allowed', 'httpMethodNotAllowed');
}

// ---------------------------------------------------------------- push channels

const resourceIdOf = (calId) => sha256('resource:' + calId).toString('base64url').slice(0, 27);

// deliver - POST one notification of channel ch with state to its address.
function deliver(st, ch, state) {
    const headers = { 'x-goog-channel-id': ch.id, 'x-goog-channel-expiration': new Date(ch.expiration).toUTCString(),
        'x-goog-resource-id': ch.resourceId, 'x-goog-resource-uri': ch.resourceUri,
        'x-goog-resource-state': state, 'x-goog-message-number': String(ch.msg++) };
    if (ch.token !== undefined) headers['x-goog-channel-token'] = ch.token;
    const rec = addRecord(st, { provider: 'google-push', method: 'POST', path: ch.address, query: {}, headers,
        body: '', json: null, status: null });
    fetch(ch.address, { method: 'POST', headers: { ...headers, 'content-length': '0' } })
        .then((r) => { rec.status = r.status; return r.arrayBuffer(); })
        .catch(() => { rec.status = 0; });
}

// notify - a calendar changed: tell its live channels.
function notify(st, g, calId) {
    const now = Date.now();
    for (const ch of g.channels.values())
        if (ch.calId === calId && !ch.stopped && ch.expiration > now) deliver(st, ch, 'exists');
}

// watch - events.watch: a web_hook channel on the calendar's events.
function watch(ctx, g, cal, body) {
    const p = parseJson(body);
    const w = p.ok ? p.value : null;
    if (!w || typeof w !== 'object') return apiError(400, 'Parse Error', 'parseError');
    if (typeof w.id !== 'string' || !w.id || w.id.length > 64) return apiError(400, 'Invalid channel id.', 'invalid');
    if (w.type !== 'web_hook' && w.type !== 'webhook') return apiError(400, 'Unsupported channel type.', 'invalid');
    if (typeof w.address !== 'string' || !/^https?:\/\//.test(w.address))
        return apiError(400, 'WebHook callback must be HTTPS: ' + w.address, 'push.webhookUrlNotHttps');
    if (g.channels.has(w.id)) return apiError(400, `Channel id ${w.id} not unique`, 'channelIdNotUnique');
    const max = Date.now() + Number(cfg(ctx.st).max_channel_s || 604800) * 1000;
    const asked = w.expiration !== undefined ? Number(w.expiration) : max;
    const ch = { id: w.id, calId: cal.id, address: w.address, token: w.token, msg: 1, stopped: false,
        expiration: Math.min(Number.isFinite(asked) ? asked : max, max), resourceId: resourceIdOf(cal.id),
        resourceUri: `https://www.googleapis.com/calendar/v3/calendars/${encodeURIComponent(cal.id)}/events?alt=json` };
    g.channels.set(ch.id, ch);
    setImmediate(() => deliver(ctx.st, ch, 'sync'));
    const out = { kind: 'api#channel', id: ch.id, resourceId: ch.resourceId, resourceUri: ch.resourceUri,
        expiration: String(ch.expiration) };
    if (ch.token !== undefined) out.token = ch.token;
    return { status: 200, body: out };
}

// stop - channels.stop {id, resourceId}: 204; an unknown pair 404.
function stop(ctx, g, grant) {
    const p = parseJson(ctx.body);
    const b = p.ok ? p.value : null;
    if (!b || typeof b.id !== 'string' || typeof b.resourceId !== 'string') return apiError(400, 'Bad Request', 'badRequest');
    const ch = g.channels.get(b.id);
    if (!ch || ch.stopped || ch.resourceId !== b.resourceId || ch.calId !== grant.email)
        return apiError(404, `Channel '${b.id}' not found for project`, 'notFound');
    ch.stopped = true;
    return { status: 204, body: '' };
}

// changed - pass an answer through; a successful write notifies the
// calendar's channels once the answer is on its way.
function changed(ctx, g, cal, answer) {
    if (answer && (answer.status === 200 || answer.status === 204)) setImmediate(() => notify(ctx.st, g, cal.id));
    return answer;
}

// provider - the record name for a path under /google.
export const provider = (p) => (p.startsWith('/calendar/') ? 'google' : 'google-oauth');

export function handle(ctx) {
    const p = ctx.path;
    if (p.startsWith('/calendar/')) {
        const j = parseJson(ctx.body);
        ctx.rec.json = j.ok ? j.value : null;
        return calendarApi(ctx);
    }
    if (p === '/o/oauth2/v2/auth' && ctx.req.method === 'GET') return authorize(ctx);
    if (p === '/token') return token(ctx);
    if (p === '/revoke' && ctx.req.method === 'POST') return revoke(ctx);
    if ((p === '/v1/userinfo' || p === '/oauth2/v3/userinfo') && ctx.req.method === 'GET') return userinfo(ctx);
    return apiError(404, 'Not Found', 'notFound');
}
