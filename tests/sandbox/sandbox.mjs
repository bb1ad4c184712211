#!/usr/bin/env node
// The provider sandbox: plays OpenAI-compatible LLMs, WhatsApp Cloud, Twilio,
// Telegram, Gmail and an SMTP server on loopback, as their public HTTP APIs
// describe them, and records every request for tests. README.md in this
// directory is the contract.
//
//   node tests/sandbox/sandbox.mjs --port 0 --port-file FILE [--ingest-url URL]
//        [--smtp-port-file FILE2] [--quiet] [--no-record]
//
// Only Node's built-in modules. One event loop; a delayed answer is a timer,
// so thousands of requests can be held in flight cheaply.
import { renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { JsonText } from './common.mjs';
import { control } from './control.mjs';
import * as gmail from './gmail.mjs';
import * as google from './google.mjs';
import * as openai from './openai.mjs';
import { newState, record } from './record.mjs';
import { startSmtp } from './smtp.mjs';
import * as telegram from './telegram.mjs';
import * as twilio from './twilio.mjs';
import * as whatsapp from './whatsapp.mjs';

const USAGE = 'usage: sandbox.mjs --port N --port-file FILE [--ingest-url URL] [--smtp-port-file FILE] [--quiet] [--no-record]';
const MAX_BODY = 64 * 1024 * 1024;

function parseArgs(argv) {
    const o = { port: 0, portFile: null, ingestUrl: null, smtpPortFile: null, quiet: false, noRecord: false };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const val = () => {
            if (i + 1 >= argv.length) usage(`${a} needs a value`);
            return argv[++i];
        };
        if (a === '--port') o.port = Number(val());
        else if (a === '--port-file') o.portFile = val();
        else if (a === '--ingest-url') o.ingestUrl = val();
        else if (a === '--smtp-port-file') o.smtpPortFile = val();
        else if (a === '--quiet') o.quiet = true;
        else if (a === '--no-record') o.noRecord = true; // benchmarks: counters only
        else usage(`unknown argument ${a}`);
    }
    if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) usage('bad --port');
    return o;
}

function usage(msg) {
    process.stderr.write(`sandbox: ${msg}\n${USAGE}\n`);
    process.exit(64);
}

const opts = parseArgs(process.argv.slice(2));
const st = newState();
st.noRecord = opts.noRecord;
const log = (o) => { if (!opts.quiet || o.event !== 'sandbox.request') process.stdout.write(JSON.stringify(o) + '\n'); };

// writeAtomically - readers polling for the file never see it half written.
function writeAtomically(file, text) {
    writeFileSync(file + '.tmp', text);
    renameSync(file + '.tmp', file);
}

const ROUTES = [
    ['/openai', openai, (p) => (/\/audio\/transcriptions$/.test(p) ? 'openai-transcribe' : 'openai')],
    ['/whatsapp', whatsapp, () => 'whatsapp'],
    ['/twilio', twilio, () => 'twilio'],
    ['/telegram', telegram, () => 'telegram'],
    ['/gmail', gmail, () => 'gmail'],
    ['/google', google, google.provider],
].map(([prefix, mod, name]) => ({ prefix, under: prefix + '/', mod, name }));

function route(path) {
    for (const r of ROUTES) {
        if (path === r.prefix || path.startsWith(r.under)) {
            const rest = path.slice(r.prefix.length);
            return { mod: r.mod, provider: r.name(rest), rest };
        }
    }
    return null;
}

// PLAIN - a request target that URL would hand back unchanged as its
// pathname with no query: segments of unreserved characters, none empty
// but the last, none starting with a dot (no "." or ".." to resolve).
const PLAIN = /^(?:\/(?![./])[\w\-.~]*)+$/;

// plain - {path, r: its route} for a plain target, null for one that needs
// URL. Each target seen is kept (a client posts to a few URLs over and
// over): URL, the test and the route cost more than the lookup.
const plainTargets = new Map();
function plain(url) {
    let t = plainTargets.get(url);
    if (t === undefined) {
        if (!PLAIN.test(url)) return null;
        t = { path: url, r: route(url) };
        if (plainTargets.size >= 1024) plainTargets.clear();
        plainTargets.set(url, t);
    }
    return t;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const TEXT_TYPE = 'text/plain; charset=utf-8';

// send - write an answer {status, body, headers}; objects go out as JSON,
// and so does a JsonText (JSON the handler wrote itself).
function send(res, a) {
    if (res.destroyed || res.writableEnded) return;
    let body = a.body ?? '';
    let type = null;
    if (typeof body === 'string') type = TEXT_TYPE;
    else if (body instanceof JsonText) {
        body = body.text;
        type = JSON_TYPE;
    } else if (!Buffer.isBuffer(body)) {
        body = JSON.stringify(body);
        type = JSON_TYPE;
    }
    const length = Buffer.byteLength(body);
    res.writeHead(a.status || 200, isEmpty(a.headers) ? baseHeaders(type, length) : withHeaders(a.headers, type, length));
    res.end(body);
}

function isEmpty(headers) {
    for (const _ in headers) return false;
    return true;
}

// baseHeaders - the headers of an answer that brings none: a fresh object
// of one shape rather than a spread of an empty one.
function baseHeaders(type, length) {
    return type === null ? { 'content-length': length } : { 'content-type': type, 'content-length': length };
}

// withHeaders - the answer's own headers first, in their order, then ours.
function withHeaders(own, type, length) {
    const headers = { ...own };
    if (type !== null) headers['content-type'] ??= type;
    headers['content-length'] = length;
    return headers;
}

// logPath - the path without query and without a Telegram bot token.
const logPath = (p) => p.replace(/\/bot[^/]+/, '/bot***');

// onRequest - one whole request: control API or a provider. The query of
// a plain target is empty.
function onRequest(req, res, body) {
    const t = plain(req.url);
    if (t !== null) {
        if (isControl(t.path)) onControl(req, res, t.path, body);
        else onProvider(req, res, t.path, t.r, {}, body);
        return;
    }
    const url = new URL(req.url, 'http://127.0.0.1');
    const path = url.pathname;
    if (isControl(path)) onControl(req, res, path, body);
    else onProvider(req, res, path, route(path), Object.fromEntries(url.searchParams), body);
}

const isControl = (path) => path === '/_sandbox' || path.startsWith('/_sandbox/');

async function onControl(req, res, path, body) {
    const url = new URL(req.url, 'http://127.0.0.1');
    let a;
    try {
        a = await control(st, opts, req, path, url, body);
    } catch (e) {
        a = { status: 500, body: { error: String(e?.stack || e) } };
    }
    send(res, a);
    log({ event: 'sandbox.control', method: req.method, path, status: a.status });
}

// logRequests - whether request lines are written at all: with --quiet
// neither the line nor its timing is made.
const logRequests = !opts.quiet;
const kProvider = Symbol('provider');

// onClose - a provider request's response is done or its connection gone.
function onClose() {
    st.inflight--;
    st.inflightBy[this[kProvider]]--;
    st.hanging.delete(this);
}

function onProvider(req, res, path, r, query, body) {
    const started = logRequests ? Date.now() : 0;
    const provider = r ? r.provider : 'unknown';
    const rec = record(st, provider, req, path, query, body, null);
    st.inflight++;
    st.inflightBy[provider] = (st.inflightBy[provider] || 0) + 1;
    res[kProvider] = provider;
    res.on('close', onClose);
    let a;
    try {
        a = r ? r.mod.handle({ st, req, path: r.rest, query: rec.query, body, rec, origin }) :
            { status: 404, body: { error: `sandbox: no provider at ${path}` } };
    } catch (e) {
        a = { status: 500, body: { error: `sandbox bug: ${e?.stack || e}` } };
    }
    if (a.hang) {
        st.hanging.add(res);
        if (logRequests)
            log({ event: 'sandbox.request', seq: rec.seq, provider, method: req.method, path: logPath(path), status: 'hang' });
        return;
    }
    const delay = a.delay_ms ?? st.config.latency[provider] ?? 0;
    if (delay > 0) setTimeout(answer, delay, req, res, a, rec.seq, provider, path, started);
    else answer(req, res, a, rec.seq, provider, path, started);
}

function answer(req, res, a, seq, provider, path, started) {
    send(res, a);
    if (logRequests)
        log({ event: 'sandbox.request', seq, provider, method: req.method, path: logPath(path),
            status: a.status || 200, ms: Date.now() - started });
}

const server = http.createServer({ keepAlive: true, requestTimeout: 0, headersTimeout: 120000 }, (req, res) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
        size += c.length;
        if (size > MAX_BODY) {
            send(res, { status: 413, body: { error: 'body too large' } });
            req.destroy();
            return;
        }
        chunks.push(c);
    });
    // a body that came in one chunk is that chunk (the parser's own copy)
    req.on('end', () => {
        if (size <= MAX_BODY) onRequest(req, res, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    });
    req.on('error', () => {});
});
server.keepAliveTimeout = 65000;
server.maxRequestsPerSocket = 0;
server.maxHeadersCount = 0;
server.on('clientError', (err, sock) => {
    if (sock.writable && !sock.writableEnded) sock.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
});

let origin = '';
let smtp = null;

function ready(port, smtpPort) {
    origin = `http://127.0.0.1:${port}`;
    // The SMTP port file is written first: once the HTTP port file exists,
    // everything is listening.
    if (smtpPort !== undefined && opts.smtpPortFile) writeAtomically(opts.smtpPortFile, `${smtpPort}\n`);
    if (opts.portFile) writeAtomically(opts.portFile, `${port}\n`);
    const line = { event: 'sandbox.listening', port };
    if (smtpPort !== undefined) line.smtp_port = smtpPort;
    log(line);
}

server.listen({ host: '127.0.0.1', port: opts.port, backlog: 65535 }, () => {
    const port = server.address().port;
    if (opts.smtpPortFile) smtp = startSmtp(st, log, (sp) => ready(port, sp));
    else ready(port);
});
server.on('error', (e) => {
    process.stderr.write(`sandbox: listen: ${e.message}\n`);
    process.exit(1);
});

function stop(sig) {
    log({ event: 'sandbox.stopping', signal: sig, in_flight: st.inflight });
    server.close();
    for (const res of st.hanging) res.destroy();
    server.closeAllConnections();
    smtp?.close();
    process.exit(0);
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
