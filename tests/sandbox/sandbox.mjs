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
];

function route(path) {
    for (const [prefix, mod, name] of ROUTES) {
        if (path === prefix || path.startsWith(prefix + '/')) {
            const rest = path.slice(prefix.length);
            return { mod, provider: name(rest), rest };
        }
    }
    return null;
}

// send - write an answer {status, body, headers}; objects go out as JSON.
function send(res, a) {
    if (res.destroyed || res.writableEnded) return;
    const headers = { ...(a.headers || {}) };
    let body = a.body ?? '';
    if (!Buffer.isBuffer(body) && typeof body !== 'string') {
        body = JSON.stringify(body);
        headers['content-type'] ??= 'application/json; charset=utf-8';
    } else if (typeof body === 'string') {
        headers['content-type'] ??= 'text/plain; charset=utf-8';
    }
    headers['content-length'] = Buffer.byteLength(body);
    res.writeHead(a.status || 200, headers);
    res.end(body);
}

// logPath - the path without query and without a Telegram bot token.
const logPath = (p) => p.replace(/\/bot[^/]+/, '/bot***');

async function onRequest(req, res, body) {
    const url = new URL(req.url, 'http://127.0.0.1');
    const path = url.pathname;
    if (path === '/_sandbox' || path.startsWith('/_sandbox/')) {
        let a;
        try {
            a = await control(st, opts, req, path, url, body);
        } catch (e) {
            a = { status: 500, body: { error: String(e?.stack || e) } };
        }
        send(res, a);
        log({ event: 'sandbox.control', method: req.method, path, status: a.status });
        return;
    }
    const started = Date.now();
    const r = route(path);
    const provider = r ? r.provider : 'unknown';
    const rec = record(st, provider, req, path, Object.fromEntries(url.searchParams), body, null);
    st.inflight++;
    st.inflightBy[provider] = (st.inflightBy[provider] || 0) + 1;
    res.on('close', () => {
        st.inflight--;
        st.inflightBy[provider]--;
        st.hanging.delete(res);
    });
    let a;
    try {
        a = r ? r.mod.handle({ st, req, path: r.rest, query: rec.query, body, rec, origin }) :
            { status: 404, body: { error: `sandbox: no provider at ${path}` } };
    } catch (e) {
        a = { status: 500, body: { error: `sandbox bug: ${e?.stack || e}` } };
    }
    const done = () => {
        send(res, a);
        log({ event: 'sandbox.request', seq: rec.seq, provider, method: req.method, path: logPath(path),
            status: a.status || 200, ms: Date.now() - started });
    };
    if (a.hang) {
        st.hanging.add(res);
        log({ event: 'sandbox.request', seq: rec.seq, provider, method: req.method, path: logPath(path), status: 'hang' });
        return;
    }
    const delay = a.delay_ms ?? st.config.latency[provider] ?? 0;
    if (delay > 0) setTimeout(done, delay);
    else done();
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
    req.on('end', () => {
        if (size <= MAX_BODY) onRequest(req, res, Buffer.concat(chunks));
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
