// WhatsApp Cloud API (Meta Graph) under /whatsapp: POST /vNN.N/{phone}/messages
// (send and mark-as-read), GET /vNN.N/{media_id} and the media download URL
// it returns. Errors use the Graph shape {"error":{message,type,code,
// error_data,fbtrace_id}}.
import { createHash } from 'node:crypto';
import { b64id, bearer, faultAnswer, JsonText, parseJson, random, scripted } from './common.mjs';
import { credentialOk, media, takeFault, takeScript } from './record.mjs';

const TITLES = {
    0: 'AuthException',
    1: 'An unknown error occurred',
    2: 'Service temporarily unavailable',
    4: 'Application request limit reached',
    100: 'Invalid parameter',
    190: 'Invalid OAuth access token - Cannot parse access token',
    368: 'Temporarily blocked for policies violations',
    130429: 'Rate limit hit',
    131000: 'Something went wrong',
    131008: 'Required parameter is missing',
    131009: 'Parameter value is not valid',
    131026: 'Message undeliverable',
    131047: 'Re-engagement message',
    131048: 'Spam rate limit hit',
    131049: 'This message was not delivered to maintain healthy ecosystem engagement.',
    131056: '(Business Account, Consumer Account) pair rate limit hit',
    132001: 'Template name does not exist in the translation',
};
const CODE_FOR_STATUS = { 400: 100, 401: 190, 403: 10, 404: 100, 429: 130429, 500: 1, 503: 2 };
const DETAILS = {
    131047: 'Message failed to send because more than 24 hours have passed since the customer last ' +
        'replied to this number.',
};

export function graphError(status, code, message, details) {
    code = code ?? CODE_FOR_STATUS[status] ?? 1;
    const error = {
        message: message || `(#${code}) ${TITLES[code] || 'Sandbox error'}`,
        type: 'OAuthException',
        code,
    };
    if (code !== 190) error.error_data = { messaging_product: 'whatsapp', details: details || DETAILS[code] || TITLES[code] || 'Sandbox error' };
    error.fbtrace_id = 'A' + b64id(17);
    return { status, body: { error } };
}

const fromFault = (f) => graphError(f.status || 400, f.code, f.message, f.details);

function auth(ctx) {
    const token = bearer(ctx.req);
    if (!token || !credentialOk(ctx.st, 'whatsapp', token))
        return graphError(401, 190, token ? 'Invalid OAuth access token - Cannot parse access token'
            : 'An active access token must be used to query information about the current application.');
    return null;
}

// PATH - /vNN.N/{id} and /vNN.N/{phone}/messages; each path's match is
// kept, as a sender posts to its phone number's path over and over.
const PATH = /^\/v\d+\.\d+\/([^/]+)(\/messages)?\/?$/;
const matches = new Map();
function matchPath(path) {
    let m = matches.get(path);
    if (m === undefined) {
        m = PATH.exec(path);
        if (matches.size >= 1024) matches.clear();
        matches.set(path, m);
    }
    return m;
}

export function handle(ctx) {
    const m = matchPath(ctx.path);
    if (ctx.req.method === 'GET' && /^\/media\/[^/]+$/.test(ctx.path)) return download(ctx);
    if (!m) return graphError(400, 100, `Unknown path components: ${ctx.path}`);
    if (ctx.req.method === 'POST' && m[2]) return send(ctx, m[1]);
    if (ctx.req.method === 'GET' && !m[2]) return mediaUrl(ctx, m[1]);
    return graphError(400, 100, `Unsupported ${ctx.req.method} request.`);
}

const RECIPIENT_TYPES = new Set(['individual', 'group']);
const TYPES = new Set(['text', 'template', 'interactive', 'image', 'audio', 'video', 'document', 'sticker',
    'location', 'contacts', 'reaction']);

const param = (name) => graphError(400, 100, `(#100) The parameter ${name} is required.`);
const invalid = (details) => graphError(400, 131009, '(#131009) Parameter value is not valid', details);

// longer - whether s has more than max characters (code points). A string
// no longer than max in UTF-16 units cannot be: only such a string is
// split into an array of its characters.
const longer = (s, max) => s.length > max && [...s].length > max;

// validate - the Cloud API's checks on a send; an error answer or null.
function validate(b) {
    if (b === null || typeof b !== 'object' || Array.isArray(b))
        return graphError(400, 100, '(#100) Invalid parameter', 'Request body must be a JSON object');
    if (b.messaging_product === undefined) return param('messaging_product');
    if (b.messaging_product !== 'whatsapp')
        return graphError(400, 100, '(#100) Param messaging_product must be one of {WHATSAPP} - got "' +
            b.messaging_product + '".');
    if (b.status !== undefined) {
        if (b.status !== 'read') return invalid('status must be "read"');
        if (typeof b.message_id !== 'string' || b.message_id === '') return param('message_id');
        return null;
    }
    if (typeof b.to !== 'string' || b.to === '') return param('to');
    if (b.recipient_type !== undefined && !RECIPIENT_TYPES.has(b.recipient_type))
        return invalid('recipient_type must be individual');
    const type = b.type ?? 'text';
    if (!TYPES.has(type)) return invalid(`Unsupported message type: ${type}`);
    const o = b[type];
    if (o === undefined || o === null || typeof o !== 'object') return param(type);
    if (type === 'text') {
        if (typeof o.body !== 'string' || o.body === '') return param("text['body']");
        if (longer(o.body, 4096)) return invalid('text.body is longer than 4096 characters');
    } else if (type === 'template') {
        if (typeof o.name !== 'string' || o.name === '') return param("template['name']");
        if (typeof o.language?.code !== 'string') return param("template['language']['code']");
    } else if (type === 'interactive') {
        if (!['button', 'list', 'cta_url', 'product', 'product_list', 'flow', 'location_request_message',
            'catalog_message'].includes(o.type))
            return invalid('interactive.type is not valid');
        if (typeof o.body?.text !== 'string' && o.type !== 'product') return param("interactive['body']['text']");
        if (longer(o.body?.text || '', 1024)) return invalid('interactive.body.text is longer than 1024 characters');
        if (o.type === 'button') {
            const bs = o.action?.buttons;
            if (!Array.isArray(bs) || bs.length < 1 || bs.length > 3)
                return invalid('interactive.action.buttons must have 1 to 3 buttons');
            for (const x of bs) {
                if (x?.type !== 'reply' || typeof x.reply?.id !== 'string' || typeof x.reply?.title !== 'string')
                    return invalid('each button must be {type:"reply", reply:{id,title}}');
                if ([...x.reply.title].length > 20) return invalid('Button title length invalid. Max length is 20');
                if (x.reply.id.length > 256) return invalid('Button id length invalid. Max length is 256');
            }
        } else if (o.type === 'list') {
            const secs = o.action?.sections;
            if (typeof o.action?.button !== 'string' || !Array.isArray(secs) || secs.length === 0)
                return invalid('interactive list needs action.button and action.sections');
            const rows = secs.reduce((n, s) => n + (Array.isArray(s?.rows) ? s.rows.length : 0), 0);
            if (rows < 1 || rows > 10) return invalid('interactive list must have 1 to 10 rows in total');
        }
    } else if (['image', 'audio', 'video', 'document', 'sticker'].includes(type)) {
        if (typeof o.id !== 'string' && typeof o.link !== 'string') return param(`${type}['id'] or ${type}['link']`);
    }
    return null;
}

// wamid - looks like Meta's: "wamid.HBgL" and the base64url of 42 random
// bytes with "-" and "_" written as "A". Mapped here by a table straight
// into a buffer: base64url and a replace of the string cost twice as much.
const WAMID_DIGITS = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789AA', 'latin1');
const WAMID_PREFIX = 'wamid.HBgL';
const wamidText = Buffer.from(WAMID_PREFIX + 'x'.repeat(56), 'latin1');

function wamid() {
    const r = random(42);
    let o = WAMID_PREFIX.length;
    for (let i = 0; i < 42; i += 3) {
        const v = (r[i] << 16) | (r[i + 1] << 8) | r[i + 2];
        wamidText[o++] = WAMID_DIGITS[v >>> 18];
        wamidText[o++] = WAMID_DIGITS[(v >>> 12) & 63];
        wamidText[o++] = WAMID_DIGITS[(v >>> 6) & 63];
        wamidText[o++] = WAMID_DIGITS[v & 63];
    }
    return wamidText.latin1Slice(0, o);
}

// waId - the digits of a phone number; "+" and digits (as senders write
// it) without a regex.
function waId(to) {
    const from = to.charCodeAt(0) === 43 ? 1 : 0;
    for (let i = from; i < to.length; i++) {
        const c = to.charCodeAt(i);
        if (c < 48 || c > 57) return to.replace(/\D/g, '');
    }
    return from ? to.slice(1) : to;
}

// sentBody - the answer to a send, as JSON.stringify would write
// {messaging_product, contacts: [{input, wa_id}], messages: [{id}]}; a
// wamid needs no escaping.
function sentBody(to, waId, id) {
    return new JsonText('{"messaging_product":"whatsapp","contacts":[{"input":' + JSON.stringify(to) +
        ',"wa_id":"' + waId + '"}],"messages":[{"id":' + (id ? JSON.stringify(id) : '"' + wamid() + '"') + '}]}');
}

function send(ctx, phoneId) {
    const parsed = parseJson(ctx.body);
    ctx.rec.json = parsed.value;
    const denied = auth(ctx);
    if (denied) return denied;
    const fault = takeFault(ctx.st, 'whatsapp');
    if (fault) return faultAnswer(fault, fromFault);
    const b = parsed.value;
    const bad = parsed.ok ? validate(b) : graphError(400, 100, '(#100) Invalid parameter', 'Invalid JSON');
    if (bad) return bad;
    const r = takeScript(ctx.st, 'whatsapp') || {};
    return scripted(r, (s) => {
        if (b.status === 'read') return { status: s.status || 200, body: { success: true } };
        return { status: s.status || 200, body: sentBody(b.to, waId(b.to), s.id) };
    }, fromFault);
}

function mediaUrl(ctx, id) {
    const denied = auth(ctx);
    if (denied) return denied;
    const fault = takeFault(ctx.st, 'whatsapp');
    if (fault) return faultAnswer(fault, fromFault);
    const r = takeScript(ctx.st, 'whatsapp') || {};
    return scripted(r, (s) => {
        const m = media(ctx.st, id);
        return {
            status: s.status || 200,
            body: {
                url: `${ctx.origin}/whatsapp/media/${encodeURIComponent(id)}?mid=${encodeURIComponent(id)}&ext=${Date.now()}`,
                mime_type: m.mime_type,
                sha256: createHash('sha256').update(m.data).digest('hex'),
                file_size: String(m.data.length),
                id,
                messaging_product: 'whatsapp',
            },
        };
    }, fromFault);
}

// download - the media bytes; like lookaside.fbsbx.com it wants the token.
function download(ctx) {
    const denied = auth(ctx);
    if (denied) return denied;
    const id = decodeURIComponent(ctx.path.slice('/media/'.length));
    const m = media(ctx.st, id);
    return { status: 200, body: m.data, headers: { 'content-type': m.mime_type } };
}
