#!/usr/bin/env node
// validate-entries.mjs - check stream entries against the contracts in proto/streams.
//
// Usage:
//   node validate-entries.mjs [--schemas DIR] [--allow-empty] [FILE]   entries (JSON lines) from FILE or stdin
//   node validate-entries.mjs [--schemas DIR] --check-schemas          compile every schema, then exit
//
// An entry is one JSON object per line: {"stream": "tern:in", "fields": {"type": ..., "v": ..., ...}}.
// Each entry's fields are checked against $defs.envelope of the schema chosen by type + v
// (proto/streams/<type>.v<v>.json), its stream against the schema's x-tern-stream, its `data`
// field (parsed JSON) against the schema's root, and every field named in x-tern-mirror must equal
// the data member it mirrors. Entries on "<stream>:dead" must also carry the dead_* fields of
// dead.entry.v1.json. Exit status: 0 all valid, 1 any entry invalid (or none read, unless
// --allow-empty), 2 usage error or a schema that does not compile.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const here = path.dirname(fileURLToPath(import.meta.url));
const DEAD_SUFFIX = ":dead";
const DEAD_TYPE = "dead.entry";

function usage(msg) {
  process.stderr.write(`validate-entries: ${msg}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { schemas: path.resolve(here, "../../proto/streams"), check: false, allowEmpty: false, file: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--schemas") opts.schemas = argv[++i] ?? usage("--schemas needs a directory");
    else if (a === "--check-schemas") opts.check = true;
    else if (a === "--allow-empty") opts.allowEmpty = true;
    else if (a.startsWith("--")) usage(`unknown option ${a}`);
    else if (opts.file === null) opts.file = a;
    else usage("at most one input file");
  }
  return opts;
}

// loadSchemas - every proto/streams/*.json, compiled; name and annotations checked.
function loadSchemas(dir) {
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, strictRequired: false });
  addFormats(ajv);
  // Annotations only: they tell this tool (and readers) where the type lives.
  ajv.addKeyword({ keyword: "x-tern-type", schemaType: "string" });
  ajv.addKeyword({ keyword: "x-tern-version", schemaType: "number" });
  ajv.addKeyword({ keyword: "x-tern-stream", schemaType: "string" });
  ajv.addKeyword({ keyword: "x-tern-mirror", schemaType: "object" });
  const byKey = new Map();
  const problems = [];
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(".json")).sort();
  if (files.length === 0) usage(`no schemas in ${dir}`);
  for (const f of files) {
    let schema;
    try {
      schema = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8"));
    } catch (e) {
      problems.push(`${f}: not JSON: ${e.message}`);
      continue;
    }
    const type = schema["x-tern-type"], v = schema["x-tern-version"];
    if (typeof type !== "string" || !Number.isInteger(v)) {
      problems.push(`${f}: x-tern-type / x-tern-version missing`);
      continue;
    }
    if (f !== `${type}.v${v}.json`) problems.push(`${f}: file name must be ${type}.v${v}.json`);
    if (typeof schema["x-tern-stream"] !== "string") problems.push(`${f}: x-tern-stream missing`);
    try {
      const data = ajv.compile(schema);
      let envelope = null;
      if (type !== DEAD_TYPE) {
        if (!schema.$defs?.envelope) throw new Error("$defs.envelope missing");
        envelope = ajv.getSchema(`${schema.$id}#/$defs/envelope`);
        if (!envelope) throw new Error("$defs.envelope does not compile");
      }
      byKey.set(`${type}@${v}`, { file: f, schema, data, envelope });
    } catch (e) {
      problems.push(`${f}: does not compile: ${e.message}`);
    }
  }
  if (problems.length > 0) {
    for (const p of problems) process.stderr.write(`validate-entries: schema ${p}\n`);
    process.exit(2);
  }
  return byKey;
}

function fmtErrors(errors) {
  return (errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message}` +
    (e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : "")).join("; ");
}

// checkEntry - the list of problems of one entry (empty when valid).
function checkEntry(entry, schemas) {
  const out = [];
  if (entry === null || typeof entry !== "object" || typeof entry.stream !== "string" ||
      entry.fields === null || typeof entry.fields !== "object" || Array.isArray(entry.fields)) {
    return ['not of the form {"stream": "...", "fields": {...}}'];
  }
  let fields = { ...entry.fields };
  for (const [k, val] of Object.entries(fields)) {
    if (typeof val !== "string") out.push(`field ${k} is not a string`);
  }
  let stream = entry.stream;
  if (stream.endsWith(DEAD_SUFFIX)) {
    const dead = schemas.get(`${DEAD_TYPE}@1`);
    if (!dead) return ["dead.entry.v1.json is missing"];
    if (!dead.data(fields)) out.push(`dead-letter fields: ${fmtErrors(dead.data.errors)}`);
    fields = Object.fromEntries(Object.entries(fields).filter(([k]) => !k.startsWith("dead_")));
    stream = stream.slice(0, -DEAD_SUFFIX.length);
  }
  const s = schemas.get(`${fields.type}@${Number(fields.v)}`);
  if (!s || s.schema["x-tern-type"] === DEAD_TYPE || !/^[0-9]+$/.test(fields.v ?? "")) {
    return [...out, `no schema for type=${JSON.stringify(fields.type)} v=${JSON.stringify(fields.v)}`];
  }
  if (s.schema["x-tern-stream"] !== stream) {
    out.push(`type ${fields.type} belongs on ${s.schema["x-tern-stream"]}, not ${entry.stream}`);
  }
  if (!s.envelope(fields)) out.push(`fields: ${fmtErrors(s.envelope.errors)}`);
  let data;
  try {
    data = JSON.parse(fields.data);
  } catch (e) {
    return [...out, `data is not JSON: ${e.message}`];
  }
  if (!s.data(data)) out.push(`data (${s.file}): ${fmtErrors(s.data.errors)}`);
  for (const [field, member] of Object.entries(s.schema["x-tern-mirror"] ?? {})) {
    if (fields[field] !== undefined && data?.[member] !== fields[field]) {
      out.push(`field ${field}=${JSON.stringify(fields[field])} differs from data.${member}=${JSON.stringify(data?.[member])}`);
    }
    if (fields[field] === undefined && data?.[member] !== undefined && s.envelope.schema.properties?.[field]) {
      out.push(`data.${member} is set but field ${field} is missing`);
    }
  }
  return out;
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const schemas = loadSchemas(opts.schemas);
  if (opts.check) {
    process.stdout.write(`validate-entries: ${schemas.size} schemas compile\n`);
    return 0;
  }
  let text;
  try {
    text = fs.readFileSync(opts.file ?? 0, "utf8");
  } catch (e) {
    usage(`cannot read ${opts.file ?? "stdin"}: ${e.message}`);
  }
  let n = 0, bad = 0;
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    n++;
    let entry, problems;
    try {
      entry = JSON.parse(line);
      problems = checkEntry(entry, schemas);
    } catch (e) {
      problems = [`not JSON: ${e.message}`];
    }
    if (problems.length > 0) {
      bad++;
      const what = entry?.fields?.type ? ` ${entry.stream} ${entry.fields.type}` : "";
      for (const p of problems) process.stderr.write(`validate-entries: line ${i + 1}${what}: ${p}\n`);
    }
  });
  if (n === 0 && !opts.allowEmpty) {
    process.stderr.write("validate-entries: no entries read\n");
    return 1;
  }
  process.stdout.write(`validate-entries: ${n - bad}/${n} entries valid\n`);
  return bad === 0 ? 0 : 1;
}

process.exit(main());
