// OpenAI-compatible API under /openai/v1: chat completions (with tools) and
// audio transcriptions. Shapes follow OpenAI's API reference: errors are
// {"error":{"message","type","param","code"}}.
import { b64id, bearer, contentType, faultAnswer, parseJson, parseMultipart, scripted } from './common.mjs';
import { credentialOk, takeFault, takeScript } from './record.mjs';

const TYPES = { 400: 'invalid_request_error', 401: 'invalid_request_error', 403: 'invalid_request_error',
    404: 'invalid_request_error', 429: 'requests', 500: 'server_error', 503: 'server_error' };
const CODES = { 401: 'invalid_api_key', 429: 'rate_limit_exceeded' };
const MESSAGES = {
    400: 'Invalid request.',
    401: 'Incorrect API key provided.',
    404: 'The model does not exist or you do not have access to it.',
    429: 'Rate limit reached for requests. Please try again later.',
    500: 'The server had an error while processing your request. Sorry about that!',
    502: 'Bad gateway.',
    503: 'The engine is currently overloaded, please try again later.',
};

export function openaiError(status, message, param = null, code) {
    return {
        status,
        body: {
            error: {
                message: message || MESSAGES[status] || 'Sandbox error.',
                type: TYPES[status] || (status >= 500 ? 'server_error' : 'invalid_request_error'),
                param,
                code: code !== undefined ? code : CODES[status] ?? null,
            },
        },
    };
}

const fromFault = (f) => openaiError(f.status || 500, f.message, null, f.code);

function auth(ctx) {
    const key = bearer(ctx.req);
    if (!key)
        return openaiError(401, "You didn't provide an API key. You need to provide your API key in an " +
            'Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).', null, null);
    if (!credentialOk(ctx.st, 'openai', key))
        return openaiError(401, 'Incorrect API key provided: ' + key.slice(0, 3) + '***. You can find your ' +
            'API key at https://platform.openai.com/account/api-keys.', null, 'invalid_api_key');
    return null;
}

export function handle(ctx) {
    const p = ctx.path.replace(/^\/v1/, '');
    if (ctx.req.method === 'POST' && p === '/chat/completions') return chat(ctx);
    if (ctx.req.method === 'POST' && p === '/audio/transcriptions') return transcribe(ctx);
    if (ctx.req.method === 'GET' && p === '/models') {
        return auth(ctx) || { status: 200, body: { object: 'list', data: [
            { id: 'sandbox-model', object: 'model', created: 1700000000, owned_by: 'sandbox' }] } };
    }
    return openaiError(404, `Invalid URL (${ctx.req.method} ${ctx.path})`, null, null);
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);

// validate - the request checks OpenAI makes that catch agent bugs; returns
// an error answer or null.
function validate(b) {
    if (b === null || typeof b !== 'object' || Array.isArray(b))
        return openaiError(400, 'We could not parse the JSON body of your request. (HINT: This likely means ' +
            "you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)");
    if (typeof b.model !== 'string' || b.model === '')
        return openaiError(400, 'you must provide a model parameter', null, null);
    if (!Array.isArray(b.messages))
        return openaiError(400, "Missing required parameter: 'messages'.", 'messages', 'missing_required_parameter');
    if (b.messages.length === 0)
        return openaiError(400, "Invalid 'messages': empty array. Expected an array with minimum length 1, " +
            'but got an empty array instead.', 'messages', 'empty_array');
    const open = new Set(); // tool_call ids awaiting a tool message
    for (let i = 0; i < b.messages.length; i++) {
        const m = b.messages[i];
        if (!m || typeof m !== 'object' || !ROLES.has(m.role))
            return openaiError(400, `Invalid value: '${m?.role}'. Supported values are: 'system', 'assistant', ` +
                `'user', 'function', 'tool', and 'developer'.`, `messages[${i}].role`, 'invalid_value');
        if (m.role !== 'tool' && open.size > 0)
            return openaiError(400, "An assistant message with 'tool_calls' must be followed by tool messages " +
                "responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: " +
                [...open].join(', '), 'messages', null);
        if (m.role === 'assistant' && Array.isArray(m.tool_calls)) {
            for (const tc of m.tool_calls) open.add(tc?.id);
        } else if (m.role === 'tool') {
            if (!open.has(m.tool_call_id))
                return openaiError(400, "Invalid parameter: messages with role 'tool' must be a response to a " +
                    "preceeding message with 'tool_calls'.", `messages[${i}].role`, null);
            open.delete(m.tool_call_id);
        } else if (m.content === undefined) {
            return openaiError(400, `Missing required parameter: 'messages[${i}].content'.`,
                `messages[${i}].content`, 'missing_required_parameter');
        }
    }
    if (open.size > 0)
        return openaiError(400, "An assistant message with 'tool_calls' must be followed by tool messages " +
            "responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: " +
            [...open].join(', '), 'messages', null);
    if (b.tools !== undefined) {
        if (!Array.isArray(b.tools))
            return openaiError(400, "Invalid type for 'tools': expected an array.", 'tools', 'invalid_type');
        for (let i = 0; i < b.tools.length; i++) {
            const t = b.tools[i];
            if (t?.type !== 'function' || typeof t.function?.name !== 'string' ||
                !/^[a-zA-Z0-9_-]{1,64}$/.test(t.function.name))
                return openaiError(400, `Invalid 'tools[${i}]': expected {type:'function', function:{name}} ` +
                    'with a name of [a-zA-Z0-9_-]{1,64}.', `tools[${i}]`, 'invalid_value');
        }
    }
    const tc = b.tool_choice;
    if (tc !== undefined) {
        const names = new Set((b.tools || []).map((t) => t.function.name));
        if (typeof tc === 'string') {
            if (!['auto', 'none', 'required'].includes(tc))
                return openaiError(400, `Invalid value: '${tc}'. Supported values are: 'none', 'auto', and ` +
                    "'required'.", 'tool_choice', 'invalid_value');
            if (tc !== 'none' && !b.tools)
                return openaiError(400, "Invalid value for 'tool_choice': 'tool_choice' is only allowed when " +
                    "'tools' are specified.", 'tool_choice', null);
        } else if (tc?.type !== 'function' || !names.has(tc.function?.name)) {
            return openaiError(400, "Invalid 'tool_choice': must name a function listed in 'tools'.",
                'tool_choice', 'invalid_value');
        }
    }
    return null;
}

function text(content) {
    if (typeof content === 'string') return content;
    if (Array.isArray(content))
        return content.filter((p) => p?.type === 'text').map((p) => p.text).join(' ');
    return '';
}

const tokens = (s) => Math.max(1, Math.ceil(s.length / 4));

// completion - OpenAI's non-streaming chat.completion object.
export function completion(b, r = {}) {
    const calls = (r.tool_calls || []).map((c) => ({
        id: c.id || 'call_' + b64id(18).replace(/[-_]/g, 'x'),
        type: 'function',
        function: {
            name: c.name ?? c.function?.name,
            arguments: typeof c.arguments === 'string' ? c.arguments : JSON.stringify(c.arguments ?? {}),
        },
    }));
    let content = r.reply ?? null;
    if (content === null && calls.length === 0) {
        const lastUser = [...b.messages].reverse().find((m) => m.role === 'user');
        content = 'Sandbox reply: ' + [...text(lastUser?.content)].slice(0, 60).join('');
    }
    const message = { role: 'assistant', content, refusal: null };
    if (calls.length) message.tool_calls = calls;
    const prompt = tokens(JSON.stringify(b.messages));
    const done = tokens((content || '') + JSON.stringify(calls));
    return {
        id: 'chatcmpl-' + b64id(21).replace(/[-_]/g, 'x'),
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: b.model,
        choices: [{ index: 0, message, logprobs: null,
            finish_reason: r.finish_reason || (calls.length ? 'tool_calls' : 'stop') }],
        usage: { prompt_tokens: prompt, completion_tokens: done, total_tokens: prompt + done },
        system_fingerprint: 'fp_sandbox',
    };
}

// sse - the same completion as chat.completion.chunk events.
function sse(c) {
    const base = { id: c.id, object: 'chat.completion.chunk', created: c.created, model: c.model,
        system_fingerprint: c.system_fingerprint };
    const m = c.choices[0].message;
    const delta = { role: 'assistant', content: m.content };
    if (m.tool_calls) delta.tool_calls = m.tool_calls.map((t, index) => ({ index, ...t }));
    const ev = [
        { ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: null }] },
        { ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: c.choices[0].finish_reason }] },
    ];
    return ev.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('') + 'data: [DONE]\n\n';
}

function chat(ctx) {
    const parsed = parseJson(ctx.body);
    ctx.rec.json = parsed.value;
    const denied = auth(ctx);
    if (denied) return denied;
    const fault = takeFault(ctx.st, 'openai');
    if (fault) return faultAnswer(fault, fromFault);
    const bad = validate(parsed.value);
    if (bad) return bad;
    const b = parsed.value;
    const r = takeScript(ctx.st, 'openai') || {};
    return scripted(r, (s) => {
        const c = completion(b, s);
        if (b.stream === true)
            return { status: s.status || 200, body: sse(c), headers: { 'content-type': 'text/event-stream' } };
        return { status: s.status || 200, body: c };
    }, fromFault);
}

function transcribe(ctx) {
    const denied = auth(ctx);
    if (denied) return denied;
    const fault = takeFault(ctx.st, 'openai-transcribe');
    if (fault) return faultAnswer(fault, fromFault);
    if (contentType(ctx.req) !== 'multipart/form-data')
        return openaiError(400, "Invalid Content-Type header (expected multipart/form-data).", null, null);
    const parts = parseMultipart(ctx.req, ctx.body) || [];
    const fields = {};
    let file = null;
    for (const p of parts) {
        if (p.filename !== null) file = { filename: p.filename, content_type: p.type, size: p.data.length };
        else fields[p.name] = p.data.toString('utf8');
    }
    ctx.rec.json = { ...fields, file };
    if (!file) return openaiError(400, "Missing required parameter: 'file'.", 'file', 'missing_required_parameter');
    if (!fields.model)
        return openaiError(400, "Missing required parameter: 'model'.", 'model', 'missing_required_parameter');
    if (file.size > 25 * 1024 * 1024)
        return openaiError(413, 'Maximum content size limit (26214400) exceeded.', null, null);
    const r = takeScript(ctx.st, 'openai-transcribe') || {};
    return scripted(r, (s) => {
        const t = s.text ?? s.reply ?? 'sandbox transcript';
        if (fields.response_format === 'text')
            return { status: s.status || 200, body: t + '\n', headers: { 'content-type': 'text/plain; charset=utf-8' } };
        return { status: s.status || 200, body: { text: t } };
    }, fromFault);
}
