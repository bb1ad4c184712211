// A minimal SMTP sink (RFC 5321 subset): EHLO/HELO, AUTH PLAIN/LOGIN
// (accepted), MAIL FROM, RCPT TO, DATA, RSET, NOOP, QUIT. Each message is
// recorded as provider "smtp": json {helo, mail_from, rcpt_to, auth_user},
// headers (the message's own, lower case), body (the message text).
// A fault for "smtp" answers the end of DATA with its code (default 451).
import net from 'node:net';
import { addRecord, takeFault } from './record.mjs';

const HOST = 'sandbox.smtp.local';

function headersOf(text) {
    const head = text.split(/\r?\n\r?\n/)[0].replace(/\r?\n[ \t]+/g, ' ');
    const out = {};
    for (const line of head.split(/\r?\n/)) {
        const i = line.indexOf(':');
        if (i > 0) out[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    return out;
}

export function startSmtp(st, log, onReady) {
    const sockets = new Set();
    const server = net.createServer((sock) => {
        sockets.add(sock);
        sock.on('close', () => sockets.delete(sock));
        sock.on('error', () => {});
        let buf = '';
        let mode = 'cmd'; // cmd | data | auth-plain | auth-user | auth-pass
        let env = { helo: null, mail_from: null, rcpt_to: [], auth_user: null };
        let lines = [];
        const say = (s) => sock.write(s + '\r\n');
        const resetTx = () => { env = { ...env, mail_from: null, rcpt_to: [] }; };
        say(`220 ${HOST} ESMTP Tern sandbox`);

        function endData() {
            const text = Buffer.from(lines.join('\r\n') + '\r\n', 'latin1').toString('utf8');
            const fault = takeFault(st, 'smtp');
            const rec = addRecord(st, {
                provider: 'smtp', method: 'SMTP', path: '', query: {},
                headers: headersOf(text), body: text,
                json: { ...env, rcpt_to: [...env.rcpt_to], rejected: fault ? fault.code || 451 : null },
            });
            log({ event: 'sandbox.request', provider: 'smtp', seq: rec.seq, rcpt: env.rcpt_to.length,
                status: fault ? fault.code || 451 : 250 });
            if (fault) say(`${fault.code || 451} ${fault.message || '4.3.0 Sandbox fault'}`);
            else say(`250 2.0.0 Ok: queued as S${rec.seq}`);
            resetTx();
        }

        function command(line) {
            const verb = line.split(' ')[0].toUpperCase();
            const arg = line.slice(verb.length).trim();
            switch (verb) {
            case 'EHLO':
                env.helo = arg;
                resetTx();
                sock.write(`250-${HOST}\r\n250-PIPELINING\r\n250-SIZE 36700160\r\n250-8BITMIME\r\n` +
                    '250-SMTPUTF8\r\n250-AUTH PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES\r\n');
                return;
            case 'HELO':
                env.helo = arg;
                resetTx();
                return say(`250 ${HOST}`);
            case 'AUTH': {
                const [mech, initial] = arg.split(/\s+/);
                if (/^PLAIN$/i.test(mech)) {
                    if (!initial) { mode = 'auth-plain'; return say('334 '); }
                    return authPlain(initial);
                }
                if (/^LOGIN$/i.test(mech)) {
                    if (initial) { env.auth_user = Buffer.from(initial, 'base64').toString(); mode = 'auth-pass'; return say('334 UGFzc3dvcmQ6'); }
                    mode = 'auth-user';
                    return say('334 VXNlcm5hbWU6');
                }
                return say('504 5.5.4 Unrecognized authentication type');
            }
            case 'MAIL': {
                const m = /^FROM:\s*<([^>]*)>/i.exec(arg);
                if (!m) return say('501 5.5.4 Syntax: MAIL FROM:<address>');
                if (env.mail_from !== null) return say('503 5.5.1 Error: nested MAIL command');
                env.mail_from = m[1];
                return say('250 2.1.0 Ok');
            }
            case 'RCPT': {
                const m = /^TO:\s*<([^>]+)>/i.exec(arg);
                if (env.mail_from === null) return say('503 5.5.1 Error: need MAIL command');
                if (!m) return say('501 5.5.4 Syntax: RCPT TO:<address>');
                env.rcpt_to.push(m[1]);
                return say('250 2.1.5 Ok');
            }
            case 'DATA':
                if (env.rcpt_to.length === 0) return say('503 5.5.1 Error: need RCPT command');
                mode = 'data';
                lines = [];
                return say('354 End data with <CR><LF>.<CR><LF>');
            case 'RSET':
                resetTx();
                return say('250 2.0.0 Ok');
            case 'NOOP':
                return say('250 2.0.0 Ok');
            case 'QUIT':
                say('221 2.0.0 Bye');
                return sock.end();
            default:
                return say('502 5.5.2 Error: command not recognized');
            }
        }

        function authPlain(b64) {
            const parts = Buffer.from(b64, 'base64').toString('utf8').split('\0');
            mode = 'cmd';
            if (parts.length !== 3) return say('501 5.5.2 Cannot decode response');
            env.auth_user = parts[1];
            return say('235 2.7.0 Authentication successful');
        }

        function line(l) {
            if (mode === 'data') {
                if (l === '.') { mode = 'cmd'; return endData(); }
                lines.push(l.startsWith('.') ? l.slice(1) : l);
                return;
            }
            if (mode === 'auth-plain') return authPlain(l);
            if (mode === 'auth-user') { env.auth_user = Buffer.from(l, 'base64').toString(); mode = 'auth-pass'; return say('334 UGFzc3dvcmQ6'); }
            if (mode === 'auth-pass') { mode = 'cmd'; return say('235 2.7.0 Authentication successful'); }
            command(l);
        }

        sock.on('data', (chunk) => {
            buf += chunk.toString('latin1');
            let i;
            while ((i = buf.indexOf('\n')) >= 0) {
                const l = buf.slice(0, i).replace(/\r$/, '');
                buf = buf.slice(i + 1);
                line(l);
                if (sock.destroyed || sock.writableEnded) return;
            }
        });
    });
    server.listen({ host: '127.0.0.1', port: 0 }, () => onReady(server.address().port));
    return {
        close() {
            server.close();
            for (const s of sockets) s.destroy();
        },
    };
}
