#!/usr/bin/env node
// webhook-load.mjs - send signed WhatsApp text webhooks, each with its own
// message id, and report what each got.
//
// Usage: node webhook-load.mjs URL APP_SECRET PHONE_NUMBER_ID COUNT CONCURRENCY PREFIX [PAUSE_MS]
// Prints one line per request: "<wamid> <status>" (status 0: no answer,
// the connection failed). PAUSE_MS spaces each worker's requests.
import http from "node:http";
import crypto from "node:crypto";

const [url, secret, pnid, count, conc, prefix, pause = "0"] = process.argv.slice(2);
if (!prefix) {
  process.stderr.write("usage: webhook-load.mjs URL SECRET PNID COUNT CONCURRENCY PREFIX [PAUSE_MS]\n");
  process.exit(2);
}
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(conc) });

function body(id) {
  return JSON.stringify({
    object: "whatsapp_business_account",
    entry: [{
      id: "102290129340398",
      changes: [{
        field: "messages",
        value: {
          messaging_product: "whatsapp",
          metadata: { display_phone_number: "15550783881", phone_number_id: pnid },
          contacts: [{ profile: { name: "Load Test" }, wa_id: "16505550000" }],
          messages: [{ from: "16505550000", id, timestamp: String(Math.floor(Date.now() / 1000)),
                       type: "text", text: { body: "hello " + id } }],
        },
      }],
    }],
  });
}

function send(id) {
  const b = body(id);
  const sig = "sha256=" + crypto.createHmac("sha256", secret).update(b).digest("hex");
  return new Promise((resolve) => {
    const rq = http.request(url, {
      method: "POST", agent, timeout: 10000,
      headers: { "content-type": "application/json", "x-hub-signature-256": sig,
                 "content-length": Buffer.byteLength(b) },
    }, (res) => { res.resume(); res.on("end", () => resolve(res.statusCode)); });
    rq.on("error", () => resolve(0));
    rq.on("timeout", () => rq.destroy());
    rq.end(b);
  });
}

let next = 0;
const n = Number(count);
async function worker() {
  while (next < n) {
    const id = `wamid.${prefix}.${next++}`;
    const st = await send(id);
    process.stdout.write(`${id} ${st}\n`);
    if (Number(pause) > 0) await new Promise((r) => setTimeout(r, Number(pause)));
  }
}
await Promise.all(Array.from({ length: Number(conc) }, worker));
agent.destroy();
