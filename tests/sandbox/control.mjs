// The control API under /_sandbox/ (loopback only, no auth): reset,
// script, fault, config, media, requests, stats, emit.
import { createHmac, randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { parseJson } from './common.mjs';
import { query, reset } from './record.mjs';

const PROVIDERS = new Set(['openai', 'openai-transcribe', 'whatsapp', 'twilio', 'telegram', 'gmail', 'smtp', 'google',
    'google-oauth']);

const bad = (msg) => ({ status: 400, body: { error: msg } });

export async function control(st, opts, req, path, url, body) {
    const name = path.replace(/^\/_sandbox\/?/, '').replace(/\/$/, '');
    const method = req.method;
    if (method === 'GET' && name === 'requests') {
        const since = Number(url.searchParams.get('since') || 0);
        return { status: 200, body: query(st, url.searchParams.get('provider'), since) };
    }
    if (method === 'GET' && name === 'stats') {
        return { status: 200, body: { requests: st.counts, total: st.seq, in_flight: st.inflight,
            in_flight_by_provider: st.inflightBy, hanging: st.hanging.size } };
    }
    if (method !== 'POST') return { status: 404, body: { error: `no control route ${method} ${path}` } };
    const p = body.length ? parseJson(body) : { ok: true, value: {} };
    if (!p.ok || typeof p.value !== 'object' || p.value === null) return bad('body must be a JSON object');
    const b = p.value;
    switch (name) {
    case 'reset':
        reset(st);
        return { status: 200, body: { ok: true } };
    case 'script': {
        if (!PROVIDERS.has(b.provider)) return bad(`unknown provider ${b.provider}`);
        if (!Array.isArray(b.responses)) return bad('responses must be an array');
        const q = st.scripts.get(b.provider) || [];
        q.push(...b.responses);
        st.scripts.set(b.provider, q);
        return { status: 200, body: { ok: true, queued: q.length } };
    }
    case 'fault': {
        if (!PROVIDERS.has(b.provider)) return bad(`unknown provider ${b.provider}`);
        const count = b.count ?? 1;
        if (!Number.isInteger(count) || count < 1) return bad('count must be a positive integer');
        const q = st.faults.get(b.provider) || [];
        q.push({ fault: b, left: count });
        st.faults.set(b.provider, q);
        return { status: 200, body: { ok: true } };
    }
    case 'config': {
        if (b.provider !== undefined) {
            if (!PROVIDERS.has(b.provider)) return bad(`unknown provider ${b.provider}`);
            if (b.latency_ms !== undefined) st.config.latency[b.provider] = Number(b.latency_ms);
        }
        if (b.twilio_accounts !== undefined) st.config.twilio_accounts = b.twilio_accounts;
        if (b.google !== undefined) st.config.google = { ...(st.config.google || {}), ...b.google };
        for (const prov of ['telegram', 'whatsapp', 'openai', 'gmail']) {
            const key = prov === 'openai' ? 'openai_keys' : `${prov}_tokens`;
            if (b[key] !== undefined) {
                if (b[key] !== null && !Array.isArray(b[key])) return bad(`${key} must be an array`);
                st.config.credentials[prov] = b[key];
            }
        }
        return { status: 200, body: { ok: true } };
    }
    case 'media': {
        if (typeof b.id !== 'string' || b.id === '') return bad('id is required');
        const data = b.base64 !== undefined ? Buffer.from(b.base64, 'base64') : Buffer.from(String(b.text ?? ''), 'utf8');
        st.media.set(b.id, { mime_type: b.mime_type || 'application/octet-stream', data });
        return { status: 200, body: { ok: true, id: b.id, size: data.length } };
    }
    case 'emit':
        return emit(opts, b);
    default:
        return { status: 404, body: { error: `no control route ${method} ${path}` } };
    }
}

// twilioSignature - base64 HMAC-SHA1(auth token, url + each sorted name
// followed by its values (de-duplicated, sorted), as Twilio's SDKs do.
export function twilioSignature(token, url, form) {
    let data = url;
    for (const k of Object.keys(form).sort()) {
        for (const v of [...new Set([].concat(form[k]).map(String))].sort()) data += k + v;
    }
    return createHmac('sha1', token).update(data, 'utf8').digest('base64');
}

// emit - POST a correctly signed webhook to the ingest URL and report its
// answer; `signature` overrides the computed header (to test rejection).
async function emit(opts, b) {
    const base = b.ingest_url || opts.ingestUrl;
    if (!base) return bad('no --ingest-url given and no ingest_url in the body');
    if (typeof b.path !== 'string') return bad('path is required');
    const target = base.replace(/\/$/, '') + b.path;
    const headers = { ...(b.headers || {}) };
    let body;
    if (b.provider === 'whatsapp') {
        body = typeof b.payload === 'string' ? b.payload : JSON.stringify(b.payload ?? {});
        headers['content-type'] = 'application/json';
        headers['x-hub-signature-256'] = b.signature ??
            'sha256=' + createHmac('sha256', String(b.secret ?? '')).update(body, 'utf8').digest('hex');
    } else if (b.provider === 'twilio') {
        const form = b.form || {};
        const sp = new URLSearchParams();
        for (const [k, v] of Object.entries(form)) for (const x of [].concat(v)) sp.append(k, String(x));
        body = sp.toString();
        headers['content-type'] = 'application/x-www-form-urlencoded';
        headers['x-twilio-signature'] = b.signature ?? twilioSignature(String(b.secret ?? ''), b.url || target, form);
        headers['i-twilio-idempotency-token'] ??= randomUUID();
    } else if (b.provider === 'telegram') {
        body = typeof b.payload === 'string' ? b.payload : JSON.stringify(b.payload ?? {});
        headers['content-type'] = 'application/json';
        const secret = b.signature ?? b.secret;
        if (secret !== undefined && secret !== null) headers['x-telegram-bot-api-secret-token'] = String(secret);
    } else {
        return bad('provider must be whatsapp, twilio or telegram');
    }
    headers['user-agent'] ??= USER_AGENTS[b.provider];
    try {
        const res = await post(target, headers, body, b.timeout_ms || 10000);
        return { status: 200, body: { status: res.status, body: res.body, sent: { url: target, headers, body } } };
    } catch (e) {
        return { status: 502, body: { error: `emit to ${target} failed: ${e.code || e.message}`, status: 0 } };
    }
}

const USER_AGENTS = { whatsapp: 'facebookexternalua', twilio: 'TwilioProxy/1.1', telegram: undefined };

// post - node:http rather than fetch, so only the headers we chose are sent.
function post(target, headers, body, timeoutMs) {
    return new Promise((resolve, reject) => {
        const h = Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== undefined));
        h['content-length'] = Buffer.byteLength(body);
        const req = (target.startsWith('https:') ? https : http).request(target, { method: 'POST', headers: h }, (res) => {
            const c = [];
            res.on('data', (d) => c.push(d));
            res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(c).toString('utf8') }));
            res.on('error', reject);
        });
        req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
        req.on('error', reject);
        req.end(body);
    });
}
