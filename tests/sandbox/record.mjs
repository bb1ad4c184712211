// The sandbox's memory: request records, scripts, faults, configuration,
// registered media and counters. One instance per process; the control API
// clears it with reset().

export function newState() {
    return {
        records: [],
        seq: 0,
        scripts: new Map(), // provider -> FIFO of scripted responses
        faults: new Map(), // provider -> FIFO of {fault, left}
        config: { latency: {}, credentials: {}, twilio_accounts: null },
        media: new Map(), // media id / telegram file_id -> {mime_type, data}
        counts: {}, // provider -> requests seen
        inflight: 0,
        inflightBy: {},
        hanging: new Set(), // responses scripted never to answer
        nextId: 1, // telegram message_id and other small counters
        twilio: new Map(), // created Message resources by sid
    };
}

// reset - forget everything but what is in flight; seq keeps growing so that
// a `since` taken before a reset stays meaningful.
export function reset(st) {
    const keep = { hanging: st.hanging, inflight: st.inflight, inflightBy: st.inflightBy, seq: st.seq,
        noRecord: st.noRecord };
    Object.assign(st, newState(), keep);
}

// record - one request as the tests see it; header names are lower case,
// json is the parsed JSON or form (null when neither applies).
// With --no-record (st.noRecord) only the counters move: the record is
// built for the handler (which may read or set fields on it) but not kept,
// and its headers and body are not copied, so that a benchmark's hundred
// thousand requests cost neither the copies nor the memory.
export function record(st, provider, req, path, query, body, json) {
    if (st.noRecord) {
        st.counts[provider] = (st.counts[provider] || 0) + 1;
        return { seq: ++st.seq, provider, method: req.method, path, query, json };
    }
    const headers = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = v;
    const rec = {
        seq: ++st.seq,
        provider,
        method: req.method,
        path,
        query,
        headers,
        body: body.toString('utf8'),
        json,
        ts_ms: Date.now(),
    };
    st.records.push(rec);
    st.counts[provider] = (st.counts[provider] || 0) + 1;
    return rec;
}

export function addRecord(st, rec) {
    rec.seq = ++st.seq;
    rec.ts_ms = Date.now();
    if (!st.noRecord) st.records.push(rec);
    st.counts[rec.provider] = (st.counts[rec.provider] || 0) + 1;
    return rec;
}

export function query(st, provider, since) {
    return st.records.filter((r) => (!provider || r.provider === provider) && r.seq > since);
}

// takeFault - the fault to apply to this request of `provider`, or null.
export function takeFault(st, provider) {
    const q = st.faults.get(provider);
    if (!q || q.length === 0) return null;
    const f = q[0];
    if (--f.left <= 0) q.shift();
    return f.fault;
}

export function takeScript(st, provider) {
    const q = st.scripts.get(provider);
    if (!q || q.length === 0) return null;
    return q.shift();
}

// credentialOk - with no list configured any non-empty credential passes.
export function credentialOk(st, provider, cred) {
    if (!cred) return false;
    const allowed = st.config.credentials[provider];
    return !allowed || allowed.includes(cred);
}

// DEFAULT_MEDIA - a small OGG-looking payload ("OggS" capture pattern and
// an Opus head), enough for code that checks magic bytes and sha256.
export const DEFAULT_MEDIA = {
    mime_type: 'audio/ogg',
    data: Buffer.concat([
        Buffer.from('OggS\0\x02', 'latin1'),
        Buffer.alloc(20),
        Buffer.from('\x01\x13OpusHead\x01\x01\x38\x01\x80\xbb\0\0\0\0\0', 'latin1'),
    ]),
};

export function media(st, id) {
    return st.media.get(id) || DEFAULT_MEDIA;
}
