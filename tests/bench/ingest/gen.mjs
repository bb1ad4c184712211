#!/usr/bin/env node
// gen.mjs - pre-generate signed WhatsApp text webhooks for the benchmark, so
// that wrk spends no time signing: one line per request, "<signature>\t<body>",
// every body with its own message id (each request is a new message, not a
// duplicate). Usage: node gen.mjs APP_SECRET PHONE_NUMBER_ID COUNT PREFIX > FILE
import crypto from "node:crypto";

const [secret, pnid, count, prefix] = process.argv.slice(2);
const out = [];
const ts = String(Math.floor(Date.now() / 1000));
for (let i = 0; i < Number(count); i++) {
  const id = `wamid.${prefix}.${i}`;
  const body = JSON.stringify({
    object: "whatsapp_business_account",
    entry: [{ id: "102290129340398", changes: [{ field: "messages", value: {
      messaging_product: "whatsapp",
      metadata: { display_phone_number: "15550783881", phone_number_id: pnid },
      contacts: [{ profile: { name: "Bench Lead" }, wa_id: "16505550000" }],
      messages: [{ from: "16505550000", id, timestamp: ts, type: "text",
                   text: { body: "Hi, do you have time on Friday for a haircut? " + i } }],
    } }] }],
  });
  const sig = "sha256=" + crypto.createHmac("sha256", secret).update(body).digest("hex");
  out.push(sig + "\t" + body);
  if (out.length === 10000) { process.stdout.write(out.join("\n") + "\n"); out.length = 0; }
}
if (out.length) process.stdout.write(out.join("\n") + "\n");
