// Telegram Bot API under /telegram: /bot{token}/{method} with parameters in
// the query string, JSON, a form or multipart, and file downloads at
// /file/bot{token}/{file_path}. Answers are {"ok":true,"result":...} or
// {"ok":false,"error_code","description"[,"parameters"]}.
import { contentType, faultAnswer, parseForm, parseJson, parseMultipart, scripted } from './common.mjs';
import { media, takeFault, takeScript } from './record.mjs';

const DESCRIPTIONS = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden: bot was blocked by the user',
    404: 'Not Found',
    409: 'Conflict: terminated by other getUpdates request',
    500: 'Internal Server Error',
    502: 'Bad Gateway',
};

export function tgError(status, description, parameters) {
    const body = { ok: false, error_code: status, description: description || DESCRIPTIONS[status] || 'Error' };
    if (parameters) body.parameters = parameters;
    return { status, body };
}

function fromFault(f) {
    const status = f.status || 400;
    if (status === 429) {
        const n = f.retry_after ?? 1;
        return tgError(429, f.message || `Too Many Requests: retry after ${n}`, { retry_after: n });
    }
    return tgError(status, f.message);
}

const ok = (result, s = {}) => ({ status: s.status || 200, body: { ok: true, result } });

function tokenCheck(ctx, token) {
    if (!/^\d+:[\w-]+$/.test(token)) return tgError(404, 'Not Found');
    const allowed = ctx.st.config.credentials.telegram;
    if (allowed && !allowed.includes(token)) return tgError(401, 'Unauthorized');
    return null;
}

function params(ctx) {
    const q = { ...ctx.query };
    const ct = contentType(ctx.req);
    if (ct === 'application/json') {
        const p = parseJson(ctx.body);
        if (!p.ok || typeof p.value !== 'object' || p.value === null)
            return { error: tgError(400, "Bad Request: can't parse JSON object") };
        return { p: { ...q, ...p.value } };
    }
    if (ct === 'application/x-www-form-urlencoded') return { p: { ...q, ...parseForm(ctx.body.toString('utf8')) } };
    if (ct === 'multipart/form-data') {
        for (const part of parseMultipart(ctx.req, ctx.body) || [])
            q[part.name] = part.filename !== null ? { filename: part.filename, size: part.data.length } : part.data.toString('utf8');
    }
    return { p: q };
}

// JSON-valued parameters arrive as strings in forms and query strings.
function jsonParam(v) {
    if (typeof v !== 'string') return v;
    try { return JSON.parse(v); } catch { return v; }
}

function chat(v) {
    const id = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
    return typeof id === 'number' ? { id, type: id < 0 ? 'group' : 'private', first_name: 'Lead' }
        : { id: String(id), type: 'channel', title: String(id) };
}

export function handle(ctx) {
    const f = /^\/file\/bot([^/]+)\/(.+)$/.exec(ctx.path);
    if (f) {
        const denied = tokenCheck(ctx, f[1]);
        if (denied) return denied;
        const m = /^files\/(.+?)(?:\.\w+)?$/.exec(f[2]);
        const data = media(ctx.st, m ? decodeURIComponent(m[1]) : f[2]);
        return { status: 200, body: data.data, headers: { 'content-type': 'application/octet-stream' } };
    }
    const m = /^\/bot([^/]+)\/(\w+)$/.exec(ctx.path);
    if (!m) return tgError(404, 'Not Found');
    const [, token, method] = m;
    const { p, error } = params(ctx);
    ctx.rec.json = p ?? null;
    const denied = tokenCheck(ctx, token);
    if (denied) return denied;
    const fault = takeFault(ctx.st, 'telegram');
    if (fault) return faultAnswer(fault, fromFault);
    if (error) return error;
    const fn = METHODS[method.toLowerCase()];
    if (!fn) return tgError(404, 'Not Found: method not found');
    const bad = fn.check?.(p);
    if (bad) return bad;
    const r = takeScript(ctx.st, 'telegram') || {};
    const botId = Number(token.split(':')[0]);
    return scripted(r, (s) => ok(fn.result(p, ctx, botId, s), s), fromFault);
}

function message(p, ctx, botId, extra) {
    const msg = {
        message_id: ctx.st.nextId++,
        from: { id: botId, is_bot: true, first_name: 'Sandbox Bot', username: 'sandbox_bot' },
        chat: chat(p.chat_id),
        date: Math.floor(Date.now() / 1000),
        ...extra,
    };
    const markup = jsonParam(p.reply_markup);
    if (markup?.inline_keyboard) msg.reply_markup = { inline_keyboard: markup.inline_keyboard };
    return msg;
}

const needChat = (p) => (p.chat_id === undefined || p.chat_id === '' ? tgError(400, 'Bad Request: chat_id is empty') : null);

const METHODS = {
    getme: { result: (p, ctx, botId) => ({ id: botId, is_bot: true, first_name: 'Sandbox Bot', username: 'sandbox_bot',
        can_join_groups: true, can_read_all_group_messages: false, supports_inline_queries: false }) },
    sendmessage: {
        check: (p) => {
            if (needChat(p)) return needChat(p);
            if (p.text === undefined || String(p.text).trim() === '') return tgError(400, 'Bad Request: message text is empty');
            if ([...String(p.text)].length > 4096) return tgError(400, 'Bad Request: message is too long');
            if (p.parse_mode !== undefined && !['HTML', 'Markdown', 'MarkdownV2', ''].includes(p.parse_mode))
                return tgError(400, `Bad Request: unsupported parse_mode`);
            return null;
        },
        result: (p, ctx, botId) => message(p, ctx, botId, { text: String(p.text) }),
    },
    sendchataction: { check: needChat, result: () => true },
    getfile: {
        check: (p) => (!p.file_id ? tgError(400, 'Bad Request: invalid file_id') : null),
        result: (p, ctx) => ({
            file_id: p.file_id,
            file_unique_id: 'AgAD' + String(p.file_id).slice(-8),
            file_size: media(ctx.st, p.file_id).data.length,
            file_path: `files/${encodeURIComponent(p.file_id)}.oga`,
        }),
    },
    answercallbackquery: {
        check: (p) => (!p.callback_query_id ? tgError(400, 'Bad Request: query is too old and response timeout expired or query ID is invalid') : null),
        result: () => true,
    },
    editmessagetext: {
        check: (p) => (p.text === undefined ? tgError(400, 'Bad Request: message text is empty') : null),
        result: (p, ctx, botId) => message(p, ctx, botId, { message_id: Number(p.message_id), text: String(p.text),
            edit_date: Math.floor(Date.now() / 1000) }),
    },
    setwebhook: { result: () => true },
    deletewebhook: { result: () => true },
    getwebhookinfo: { result: () => ({ url: '', has_custom_certificate: false, pending_update_count: 0 }) },
};
