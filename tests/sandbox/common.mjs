// Helpers shared by the provider modules: request parsing (JSON, forms,
// multipart), ids, and the "answer" descriptors the server sends.
//
// A provider handler returns an answer {status, body, headers, delay_ms,
// hang}; body is an object (sent as JSON), a string or a Buffer. sandbox.mjs
// applies the delay and writes it.
import { randomBytes } from 'node:crypto';

// random - n random bytes, cut from a pool refilled 4 KiB at a time: one
// randomBytes() call per id was an eighth of the sandbox's CPU under the
// sender benchmark.
const POOL = 4096;
let pool = Buffer.alloc(0);
let used = 0;
export function random(n) {
    if (n > POOL) return randomBytes(n);
    if (used + n > pool.length) {
        pool = randomBytes(POOL);
        used = 0;
    }
    used += n;
    return pool.subarray(used - n, used);
}

export function hex(n) {
    return random(n).toString('hex');
}

export function b64id(n) {
    return random(n).toString('base64url');
}

// JsonText - an answer body that is JSON text already (sent as JSON, like
// an object body): a hot answer written directly costs less than
// JSON.stringify of the object.
export class JsonText {
    constructor(text) {
        this.text = text;
    }
}

export function parseJson(buf) {
    try {
        return { ok: true, value: JSON.parse(buf.toString('utf8')) };
    } catch {
        return { ok: false, value: null };
    }
}

// parseForm - an application/x-www-form-urlencoded body as an object; a
// repeated name becomes an array of its values in order.
export function parseForm(text) {
    const out = {};
    for (const [k, v] of new URLSearchParams(text)) {
        if (k in out) out[k] = [].concat(out[k], v);
        else out[k] = v;
    }
    return out;
}

export function contentType(req) {
    return String(req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
}

// parseMultipart - multipart/form-data parts as [{name, filename, type, data}].
export function parseMultipart(req, buf) {
    const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(req.headers['content-type'] || '');
    if (!m) return null;
    const boundary = Buffer.from('--' + (m[1] || m[2]).trim());
    const parts = [];
    let pos = buf.indexOf(boundary);
    while (pos >= 0) {
        pos += boundary.length;
        if (buf.slice(pos, pos + 2).toString() === '--') break;
        pos += 2; // CRLF after the boundary
        const headEnd = buf.indexOf('\r\n\r\n', pos);
        if (headEnd < 0) break;
        const head = buf.slice(pos, headEnd).toString('utf8');
        const next = buf.indexOf(boundary, headEnd + 4);
        if (next < 0) break;
        const data = buf.slice(headEnd + 4, next - 2); // minus the CRLF before the boundary
        const disp = /content-disposition:[^\r\n]*/i.exec(head)?.[0] || '';
        const type = /content-type:\s*([^\r\n]*)/i.exec(head)?.[1]?.trim() || null;
        const name = /\bname="([^"]*)"/i.exec(disp)?.[1];
        const filename = /\bfilename="([^"]*)"/i.exec(disp)?.[1] ?? null;
        parts.push({ name, filename, type, data });
        pos = next;
    }
    return parts;
}

// bearer - the token of "Authorization: Bearer T", or null. A client sends
// the same header request after request: the last answer is kept.
let lastAuth = null;
let lastToken = null;
export function bearer(req) {
    const h = req.headers.authorization || '';
    if (h !== lastAuth) {
        const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
        lastAuth = h;
        lastToken = m ? m[1] : null;
    }
    return lastToken;
}

export function basic(req) {
    const m = /^Basic\s+(\S+)\s*$/i.exec(req.headers.authorization || '');
    if (!m) return null;
    const s = Buffer.from(m[1], 'base64').toString('utf8');
    const i = s.indexOf(':');
    if (i < 0) return null;
    return { user: s.slice(0, i), pass: s.slice(i + 1) };
}

// scripted - the answer for a scripted response R: hang, a raw body, an
// error in the provider's shape (status >= 400 without body), or the
// provider's normal answer built by ok(R).
export function scripted(r, ok, error) {
    let a;
    if (r.hang) a = { hang: true };
    else if (r.body !== undefined) a = { status: r.status || 200, body: r.body };
    else if (r.status >= 400) a = error(r);
    else a = ok(r);
    // most answers have no headers of their own: none is made for them
    if (a.headers || r.headers || a.status === 429) a.headers = { ...(a.headers || {}), ...(r.headers || {}) };
    if (a.status === 429 && !Object.keys(a.headers).some((h) => h.toLowerCase() === 'retry-after'))
        a.headers['retry-after'] = String(r.retry_after ?? 1);
    if (r.delay_ms !== undefined) a.delay_ms = r.delay_ms;
    return a;
}

// faultAnswer - a configured fault: its body as given, or the provider's
// error shape; 429 carries Retry-After.
export function faultAnswer(f, error) {
    const a = f.body !== undefined ? { status: f.status || 500, body: f.body } : error(f);
    a.headers = { ...(a.headers || {}), ...(f.headers || {}) };
    const ra = f.retry_after ?? (a.status === 429 ? 1 : undefined);
    if (ra !== undefined) a.headers['retry-after'] = String(ra);
    if (f.delay_ms !== undefined) a.delay_ms = f.delay_ms;
    if (f.hang) a.hang = true;
    return a;
}
