// compose-hostnet.mjs - print deploy/compose.yaml's host-network variant for
// deploy/test-images.sh: every container on the host's network, listening
// on 127.0.0.1 only, on the free ports in TN_E2E_PORT_* (so it runs beside
// anything else on the machine); no published ports, no builds (the test
// builds the images first). Service addresses in the environment
// (redis:6379, postgres:5432, [sandbox-]ingest:8080, sandbox:8090) become
// 127.0.0.1 and those ports. Everything else, profiles included, is the
// file as shipped.
// usage: node compose-hostnet.mjs deploy/compose.yaml > compose.yaml
// ports: TN_E2E_PORT_{REDIS,PG,INGEST,SANDBOX,ADMIN_INGEST,ADMIN_AGENT,
//        ADMIN_CALSYNC,ADMIN_SENDER,ADMIN_SWEEPER}
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";

const file = process.argv[2];
const c = YAML.parse(fs.readFileSync(file, "utf8"), { merge: true });
const port = (name) => {
    const v = process.env[`TN_E2E_PORT_${name}`];
    if (!v) throw new Error(`TN_E2E_PORT_${name} is not set`);
    return v;
};
// host:port on the compose network -> the loopback port that replaces it
const addresses = {
    "redis:6379": "REDIS",
    "postgres:5432": "PG",
    "ingest:8080": "INGEST",
    "sandbox-ingest:8080": "INGEST",
    "sandbox:8090": "SANDBOX",
};
const rewrite = (v) =>
    typeof v !== "string"
        ? v
        : v.replace(/(?<=^|[/@])([a-z][a-z-]*:\d+)(?=$|[/?])/g, (a) => (a in addresses ? `127.0.0.1:${port(addresses[a])}` : a));
const admin = { ingest: "INGEST", agent: "AGENT", calsync: "CALSYNC", sender: "SENDER", sweeper: "SWEEPER" };
for (const [name, s] of Object.entries(c.services)) {
    delete s.ports;
    delete s.networks;
    delete s.build;
    s.network_mode = "host";
    const env = s.environment || {};
    for (const k of Object.keys(env)) env[k] = rewrite(env[k]);
    const daemon = name.replace(/^sandbox-/, "");
    if (daemon in admin) {
        const p = port(`ADMIN_${admin[daemon]}`);
        env.TN_ADMIN_LISTEN = `127.0.0.1:${p}`;
        s.healthcheck.test = s.healthcheck.test.map((a) => a.replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${p}`));
    }
    if (daemon === "ingest") env.TN_INGEST_LISTEN = `127.0.0.1:${port("INGEST")}`;
    if (name === "sandbox") env.TN_SANDBOX_LISTEN = `127.0.0.1:${port("SANDBOX")}`;
    if (name === "redis") {
        s.command = s.command.map((a) => (a === "6379" ? port("REDIS") : a)).concat(["--bind", "127.0.0.1"]);
        s.healthcheck.test = s.healthcheck.test.map((a) => a.replace("-p 6379", `-p ${port("REDIS")}`));
    }
    if (name === "postgres") {
        env.PG_LISTEN = "127.0.0.1";
        env.PG_PORT = port("PG");
    }
    if (name === "pg-roles") {
        env.PGHOST = "127.0.0.1";
        env.PGPORT = port("PG");
    }
    if (Object.keys(env).length) s.environment = env;
}
// Secret files: absolute, so the variant can live in another directory.
for (const def of Object.values(c.secrets || {}))
    def.file = path.resolve(path.dirname(file), def.file.replace("${TN_SECRETS_DIR:-./.secrets}", process.env.TN_SECRETS_DIR || "./.secrets"));
for (const k of Object.keys(c)) if (k.startsWith("x-")) delete c[k];
process.stdout.write(YAML.stringify(c, { aliasDuplicateObjects: false, version: "1.1" }));
