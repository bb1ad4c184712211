// Twilio REST 2010-04-01 under /twilio: create a Message (form POST to
// /2010-04-01/Accounts/{AccountSid}/Messages.json) and fetch it back. Errors
// are Twilio's {"code","message","more_info","status"}.
import { basic, contentType, faultAnswer, hex, parseForm, scripted } from './common.mjs';
import { takeFault, takeScript } from './record.mjs';

const MESSAGES = {
    20003: 'Authenticate',
    20404: 'The requested resource was not found',
    20429: 'Too Many Requests',
    20500: 'Internal Server Error',
    21211: "Invalid 'To' Phone Number",
    21408: 'Permission to send an SMS has not been enabled for the region indicated by the \'To\' number',
    21602: 'Message body is required.',
    21603: "The 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21606: "The 'From' phone number provided is not a valid message-capable Twilio phone number.",
    21608: "The 'To' phone number provided is not yet verified for this account.",
    21609: 'Invalid StatusCallback',
    21610: 'Attempt to send to unsubscribed recipient',
    21614: "'To' number is not a valid mobile number",
    21617: 'The concatenated message body exceeds the 1600 character limit.',
    21656: 'The ContentVariables Parameter is invalid.',
    63016: 'Failed to send freeform message because you are outside the allowed window. If you are using WhatsApp, please use a Message Template.',
};
const CODE_FOR_STATUS = { 400: 21211, 401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20500 };

export function twilioError(status, code, message) {
    code = code ?? CODE_FOR_STATUS[status] ?? 20500;
    return {
        status,
        body: { code, message: message || MESSAGES[code] || 'Sandbox error', more_info: `https://www.twilio.com/docs/errors/${code}`, status },
    };
}

const fromFault = (f) => twilioError(f.status || 400, f.code, f.message);

function auth(ctx, account) {
    const c = basic(ctx.req);
    const accounts = ctx.st.config.twilio_accounts;
    // The user is the AccountSid of the path (or an API key SK...).
    let ok = !!(c && c.user && c.pass) && (c.user === account || c.user.startsWith('SK'));
    if (ok && accounts) ok = accounts[c.user] === c.pass;
    if (!ok) {
        const a = twilioError(401, 20003);
        a.body.detail = 'Your AccountSid or AuthToken was incorrect.';
        a.headers = { 'www-authenticate': 'Basic realm="Twilio API"' };
        return a;
    }
    return null;
}

export function handle(ctx) {
    const m = /^\/2010-04-01\/Accounts\/(AC[0-9a-fA-F]{32}|[^/]+)\/Messages(?:\/(\w+))?\.json$/.exec(ctx.path);
    if (!m) return twilioError(404, 20404, `The requested resource ${ctx.path} was not found`);
    if (ctx.req.method === 'POST' && !m[2]) return create(ctx, m[1]);
    if (ctx.req.method === 'GET' && m[2]) {
        const denied = auth(ctx, m[1]);
        if (denied) return denied;
        const r = ctx.st.twilio.get(m[2]);
        return r ? { status: 200, body: r } : twilioError(404, 20404, `The requested resource ${ctx.path} was not found`);
    }
    return twilioError(405, 20004, 'Method not allowed');
}

const ADDRESS = /^(?:(?:whatsapp|messenger|rcs):)?\+[1-9]\d{6,14}$/;

function validate(f) {
    if (!f.To) return twilioError(400, 21604);
    if (!ADDRESS.test(f.To)) return twilioError(400, 21211, `The 'To' number ${f.To} is not a valid phone number.`);
    if (!f.From && !f.MessagingServiceSid) return twilioError(400, 21603);
    if (f.MessagingServiceSid && !/^MG[0-9a-fA-F]{32}$/.test(f.MessagingServiceSid))
        return twilioError(400, 21701, `The Messaging Service Sid ${f.MessagingServiceSid} is invalid.`);
    if (f.From && !ADDRESS.test(f.From) && !/^[A-Za-z0-9 ]{1,11}$/.test(f.From))
        return twilioError(400, 21212, `The 'From' number ${f.From} is not a valid phone number, shortcode, or alphanumeric sender ID.`);
    if (f.Body === undefined && f.MediaUrl === undefined && !f.ContentSid) return twilioError(400, 21602);
    if (f.Body !== undefined && [...String(f.Body)].length > 1600) return twilioError(400, 21617);
    if (f.ContentSid && !/^HX[0-9a-fA-F]{32}$/.test(f.ContentSid))
        return twilioError(400, 21655, 'The ContentSid is Invalid.');
    if (f.ContentVariables !== undefined) {
        let ok = true;
        try { ok = typeof JSON.parse(f.ContentVariables) === 'object'; } catch { ok = false; }
        if (!ok) return twilioError(400, 21656);
    }
    if (f.StatusCallback !== undefined && !/^https?:\/\/[^\s]+$/.test(f.StatusCallback)) return twilioError(400, 21609);
    for (const u of [].concat(f.MediaUrl ?? []))
        if (!/^https?:\/\/[^\s]+$/.test(u)) return twilioError(400, 21620, 'Invalid media URL(s)');
    return null;
}

function rfc2822(d) {
    return d.toUTCString().replace('GMT', '+0000');
}

function segments(body) {
    const chars = [...body];
    if (chars.length === 0) return 1;
    const gsm = /^[\x20-\x7e\n\r£¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà]*$/.test(body);
    const [one, many] = gsm ? [160, 153] : [70, 67];
    return chars.length <= one ? 1 : Math.ceil(chars.length / many);
}

function create(ctx, account) {
    const isForm = contentType(ctx.req) === 'application/x-www-form-urlencoded';
    const f = isForm ? parseForm(ctx.body.toString('utf8')) : {};
    ctx.rec.json = isForm ? f : null;
    const denied = auth(ctx, account);
    if (denied) return denied;
    const fault = takeFault(ctx.st, 'twilio');
    if (fault) return faultAnswer(fault, fromFault);
    if (!isForm) return twilioError(400, 21604); // Twilio reads only form fields
    const bad = validate(f);
    if (bad) return bad;
    const r = takeScript(ctx.st, 'twilio') || {};
    return scripted(r, (s) => {
        const sid = s.sid || 'SM' + hex(16);
        const now = rfc2822(new Date());
        const body = f.Body ?? '';
        const base = `/2010-04-01/Accounts/${account}/Messages/${sid}`;
        const res = {
            account_sid: account,
            api_version: '2010-04-01',
            body,
            date_created: now,
            date_sent: null,
            date_updated: now,
            direction: 'outbound-api',
            error_code: null,
            error_message: null,
            from: f.From ?? null,
            messaging_service_sid: f.MessagingServiceSid ?? null,
            num_media: String([].concat(f.MediaUrl ?? []).length),
            num_segments: String(segments(body)),
            price: null,
            price_unit: 'USD',
            sid,
            status: s.message_status || (f.From ? 'queued' : 'accepted'),
            subresource_uris: { media: `${base}/Media.json` },
            to: f.To,
            uri: `${base}.json`,
        };
        const kept = ctx.st.twilio; // for GET .../Messages/{sid}.json; bounded
        if (kept.size >= 10000) kept.delete(kept.keys().next().value);
        kept.set(sid, res);
        return { status: s.status || 201, body: res };
    }, fromFault);
}
