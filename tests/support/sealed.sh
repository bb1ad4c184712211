# shellcheck shell=bash
# tests/support/sealed.sh - tn_seal envelopes made and opened outside Tern
# (Node's crypto), so a test checks the stored bytes against the format
# itself, not against Tern's own code: version byte 1, the key id (4 bytes,
# big-endian), a 12-byte nonce, the AES-256-GCM ciphertext and its 16-byte
# tag; the associated data is the 5-byte header followed by the row's aad.

# tn_seal_hex KEY KID AAD PLAINTEXT - the envelope (hex) of PLAINTEXT under
# KEY (base64, 32 bytes) with key id KID
tn_seal_hex() {
    node -e '
const c = require("crypto"); const [key, kid, aad, pt] = process.argv.slice(1);
const h = Buffer.alloc(5); h[0] = 1; h.writeUInt32BE(Number(kid), 1);
const n = c.randomBytes(12); const ci = c.createCipheriv("aes-256-gcm", Buffer.from(key, "base64"), n);
ci.setAAD(Buffer.concat([h, Buffer.from(aad)]));
const ct = Buffer.concat([ci.update(pt), ci.final()]);
process.stdout.write(Buffer.concat([h, n, ct, ci.getAuthTag()]).toString("hex"));' "$@"
}

# tn_open_hex HEX AAD KEY - the plaintext of the envelope HEX; exit 1 when
# KEY (base64) and AAD do not open it, 2 when it is not an envelope
tn_open_hex() {
    node -e '
const c = require("crypto"); const [hex, aad, k] = process.argv.slice(1);
const b = Buffer.from(hex, "hex");
if (b.length < 1 + 4 + 12 + 16 + 1 || b[0] !== 1) process.exit(2);
const d = c.createDecipheriv("aes-256-gcm", Buffer.from(k, "base64"), b.subarray(5, 17));
d.setAAD(Buffer.concat([b.subarray(0, 5), Buffer.from(aad)]));
d.setAuthTag(b.subarray(b.length - 16));
try { process.stdout.write(Buffer.concat([d.update(b.subarray(17, b.length - 16)), d.final()]).toString()); }
catch (e) { process.exit(1); }' "$@"
}

# tn_sealed_kid HEX - the key id an envelope names
tn_sealed_kid() { echo $((16#${1:2:8})); }
