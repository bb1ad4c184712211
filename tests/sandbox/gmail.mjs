// Gmail API under /gmail: POST /gmail/v1/users/{userId}/messages/send with
// {"raw": base64url RFC 822, "threadId"?} (or the /upload/ form with a
// message/rfc822 body). The record gets the decoded message as `decoded`.
// Errors are Google's {"error":{code,message,errors[],status}}.
// Bearer tokens: an access token that google.mjs's token endpoint issued is
// accepted until it expires (then 401); any other token must be in the
// configured gmail_tokens list (with no list, any non-empty token passes).
import { bearer, contentType, faultAnswer, hex, parseJson, scripted } from './common.mjs';
import { issuedToken } from './google.mjs';
import { credentialOk, takeFault, takeScript } from './record.mjs';

const STATUS_NAMES = { 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND',
    429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE' };
const REASONS = { 400: 'invalidArgument', 401: 'authError', 403: 'forbidden', 404: 'notFound',
    429: 'rateLimitExceeded', 500: 'backendError', 503: 'backendError' };

export function googleError(status, message, reason) {
    message = message || (status === 429 ? 'Too many concurrent requests for user.' : 'Sandbox error.');
    return {
        status,
        body: { error: { code: status, message,
            errors: [{ message, domain: 'global', reason: reason || REASONS[status] || 'backendError' }],
            status: STATUS_NAMES[status] || 'UNKNOWN' } },
    };
}

const fromFault = (f) => googleError(f.status || 500, f.message, f.reason);

function auth(ctx) {
    const token = bearer(ctx.req);
    if (!token) {
        const a = googleError(401, 'Request is missing required authentication credential. Expected OAuth 2 access ' +
            'token, login cookie or other valid authentication credential.', 'required');
        a.headers = { 'www-authenticate': 'Bearer realm="https://accounts.google.com/"' };
        return a;
    }
    // a token of the Google fake's token endpoint passes until it expires;
    // any other token must pass credentialOk (gmail_tokens, else any)
    const issued = issuedToken(ctx.st, token);
    if (issued === 'expired' || (issued === null && !credentialOk(ctx.st, 'gmail', token)))
        return googleError(401, 'Request had invalid authentication credentials. Expected OAuth 2 access token, ' +
            'login cookie or other valid authentication credential.', 'authError');
    return null;
}

export function handle(ctx) {
    const m = /^(\/upload)?\/gmail\/v1\/users\/([^/]+)\/messages\/send$/.exec(ctx.path);
    if (!m || ctx.req.method !== 'POST') return googleError(404, 'Not Found', 'notFound');
    let raw = null;
    let threadId;
    if (m[1] && contentType(ctx.req) === 'message/rfc822') {
        raw = ctx.body.toString('utf8');
        ctx.rec.json = null;
    } else {
        const p = parseJson(ctx.body);
        ctx.rec.json = p.value;
        if (!p.ok) return auth(ctx) || googleError(400, 'Invalid JSON payload received.');
        if (typeof p.value?.raw === 'string' && p.value.raw !== '') {
            if (!/^[A-Za-z0-9_\-+/]+=*$/.test(p.value.raw))
                return auth(ctx) || googleError(400, "Invalid value at 'message.raw' (TYPE_BYTES), Base64 decoding failed.");
            raw = Buffer.from(p.value.raw.replace(/\+/g, '-').replace(/\//g, '_'), 'base64url').toString('utf8');
        }
        threadId = p.value?.threadId;
    }
    ctx.rec.decoded = raw;
    const denied = auth(ctx);
    if (denied) return denied;
    const fault = takeFault(ctx.st, 'gmail');
    if (fault) return faultAnswer(fault, fromFault);
    if (raw === null)
        return googleError(400, "'raw' RFC822 payload message string or uploading message via /upload/* URL required");
    const head = raw.split(/\r?\n\r?\n/)[0];
    if (!/^(to|cc|bcc):\s*\S/im.test(head)) return googleError(400, 'Recipient address required', 'invalidArgument');
    const r = takeScript(ctx.st, 'gmail') || {};
    return scripted(r, (s) => {
        const id = s.id || hex(8);
        return { status: s.status || 200, body: { id, threadId: threadId || s.threadId || id, labelIds: ['SENT'] } };
    }, fromFault);
}
