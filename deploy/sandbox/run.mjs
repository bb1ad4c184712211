#!/usr/bin/env node
// run.mjs - the provider sandbox (tests/sandbox/sandbox.mjs) as a container
// for deploy/compose.yaml's "sandbox" profile.
//
// The sandbox listens on 127.0.0.1 only, which other containers cannot
// reach. This starts it on a free loopback port and forwards TCP from
// TN_SANDBOX_LISTEN (default 0.0.0.0:8090) to it, byte for byte, so the
// daemons reach it as http://sandbox:8090/... and the host through the
// published port. TN_SANDBOX_INGEST_URL becomes the sandbox's --ingest-url
// (where POST /_sandbox/emit sends signed webhooks). SIGTERM/SIGINT stop
// both; the exit code is the sandbox's.
//
// Limitation: URLs the sandbox builds from its own origin (WhatsApp media
// download URLs) name the inner loopback port, so only a client in this
// container could follow them.
//
//   node run.mjs            run (the image's ENTRYPOINT)
//   node run.mjs --check    exit 0 when GET /_sandbox/stats answers 200 on
//                           TN_SANDBOX_LISTEN (the HEALTHCHECK)
// Only Node's built-in modules, like the sandbox itself.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const listen = process.env.TN_SANDBOX_LISTEN || '0.0.0.0:8090';
const colon = listen.lastIndexOf(':');
const host = listen.slice(0, colon) || '0.0.0.0';
const port = Number(listen.slice(colon + 1));
if (colon < 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    process.stderr.write(`run.mjs: bad TN_SANDBOX_LISTEN '${listen}'\n`);
    process.exit(78);
}

if (process.argv[2] === '--check') {
    const req = http.get({ host: host === '0.0.0.0' ? '127.0.0.1' : host, port, path: '/_sandbox/stats', timeout: 2000 },
        (res) => process.exit(res.statusCode === 200 ? 0 : 1));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => process.exit(1));
} else {
    run();
}

function run() {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const script = process.env.TN_SANDBOX_SCRIPT || path.join(here, 'sandbox.mjs');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sandbox-'));
    const portFile = path.join(dir, 'sandbox.port');
    const args = [script, '--port', '0', '--port-file', portFile];
    if (process.env.TN_SANDBOX_INGEST_URL) args.push('--ingest-url', process.env.TN_SANDBOX_INGEST_URL);
    const child = spawn(process.execPath, args, { stdio: 'inherit' });
    let server = null;
    const sockets = new Set();
    const stop = (sig) => {
        if (server) server.close();
        for (const s of sockets) s.destroy();
        if (child.exitCode === null) child.kill(sig);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    child.on('exit', (code, sig) => {
        stop('SIGTERM');
        process.exit(code ?? (sig ? 1 : 0));
    });
    const started = Date.now();
    const wait = () => {
        if (!existsSync(portFile)) {
            if (Date.now() - started > 30000) {
                process.stderr.write('run.mjs: the sandbox wrote no port file in 30 s\n');
                stop('SIGTERM');
                return;
            }
            setTimeout(wait, 50);
            return;
        }
        const inner = Number(readFileSync(portFile, 'utf8').trim());
        server = net.createServer((down) => {
            const up = net.connect({ host: '127.0.0.1', port: inner });
            sockets.add(down);
            sockets.add(up);
            const close = () => {
                down.destroy();
                up.destroy();
                sockets.delete(down);
                sockets.delete(up);
            };
            down.on('error', close).on('close', close);
            up.on('error', close).on('close', close);
            down.pipe(up);
            up.pipe(down);
        });
        server.on('error', (e) => {
            process.stderr.write(`run.mjs: listen ${listen}: ${e.message}\n`);
            stop('SIGTERM');
        });
        server.listen({ host, port, backlog: 4096 }, () => {
            process.stdout.write(JSON.stringify({ event: 'sandbox.forwarding', listen, inner_port: inner }) + '\n');
        });
    };
    wait();
}
