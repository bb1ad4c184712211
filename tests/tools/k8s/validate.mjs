// validate.mjs - offline checks of Tern's deployment files (deploy/).
//
// usage: node validate.mjs SRC_DIR [RENDERED.yaml ...]
//
// 1. Schemas: every object in deploy/k8s/base and deploy/k8s/components, and
//    every object of each RENDERED file (`kubectl kustomize` of an overlay),
//    is validated against the Kubernetes OpenAPI schemas (kubernetes-models),
//    KEDA's CRD schemas (@kubernetes-models/keda) or the Prometheus Operator's
//    (@kubernetes-models/prometheus-operator). An unknown apiVersion/kind fails.
// 2. Tern's rules on each rendered set (probes, resources, grace period vs
//    drain deadline, *_FILE secrets, PDBs, ingest Service/Ingress/HPA, KEDA
//    triggers on the stream and group proto/ defines, NetworkPolicies).
// 3. deploy/compose.yaml: structure, the prod and sandbox profiles (the
//    provider sandbox and demo seed only under "sandbox"; there every
//    provider URL a daemon reads (TN_ENV_STR with an https:// default in
//    services/<daemon>/*.c) points at the sandbox, and the prod daemons
//    refer to nothing of it).
// 4. deploy/prometheus/alerts.yaml against the PrometheusRule and the
//    RUNBOOK's metrics table; metrics the table marks "exists" are string
//    literals in the C sources (tn_consumer_export's only once a daemon
//    calls it); the RUNBOOK's ternctl commands against services/ctl/main.c;
//    proto/README.md's streams and groups against tn_proto.h.
// Prints "N passed, N failed" and exits 1 on any failure.
import fs from "node:fs";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import YAML from "yaml";

const src = process.argv[2];
const rendered = process.argv.slice(3);
if (!src) {
    console.error("usage: node validate.mjs SRC_DIR [RENDERED.yaml ...]");
    process.exit(64);
}
let passed = 0;
let failed = 0;
function check(ok, what) {
    if (ok) {
        passed++;
    } else {
        failed++;
        console.log(`FAIL: ${what}`);
    }
    return ok;
}
const rel = (p) => path.relative(src, p);

// ------------------------------------------------------------------ loading

function loadDocs(file) {
    const text = fs.readFileSync(file, "utf8");
    const docs = YAML.parseAllDocuments(text, { uniqueKeys: true, merge: true });
    const out = [];
    for (const d of docs) {
        if (d.errors.length > 0) {
            check(false, `${rel(file)}: YAML: ${d.errors[0].message}`);
            continue;
        }
        const v = d.toJS();
        if (v !== null && v !== undefined) out.push(v);
    }
    return out;
}

function yamlFiles(dir) {
    if (!fs.existsSync(dir)) return [];
    return fs
        .readdirSync(dir, { withFileTypes: true })
        .flatMap((e) =>
            e.isDirectory()
                ? yamlFiles(path.join(dir, e.name))
                : /\.ya?ml$/.test(e.name)
                  ? [path.join(dir, e.name)]
                  : [],
        )
        .sort();
}

// apiVersion/kind -> module exporting the model class with validate().
function modelPath(apiVersion, kind) {
    if (!/^[A-Za-z]+$/.test(kind || "")) return null;
    if (apiVersion === "keda.sh/v1alpha1") return `@kubernetes-models/keda/keda.sh/v1alpha1/${kind}`;
    if (apiVersion === "monitoring.coreos.com/v1")
        return `@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/${kind}`;
    if (!/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion || "")) return null;
    return `kubernetes-models/${apiVersion}/${kind}`;
}

async function validateSchema(obj, where) {
    const mp = modelPath(obj.apiVersion, obj.kind);
    const id = `${where}: ${obj.kind}/${obj.metadata?.name}`;
    if (!check(mp !== null, `${id}: unknown apiVersion ${obj.apiVersion}`)) return;
    let mod;
    try {
        mod = await import(mp);
    } catch {
        check(false, `${id}: no schema for ${obj.apiVersion} ${obj.kind}`);
        return;
    }
    const Model = mod[obj.kind];
    try {
        new Model(obj).validate();
        check(true, id);
    } catch (e) {
        check(false, `${id}: ${e.message}`);
    }
}

// ------------------------------------------------------------------ proto

// The stream catalogue: TN_STREAM_* and TN_GROUP_* in tn_proto.h, where each
// group's comment names the streams it reads ("on tern:out and tern:status").
function protoPairs() {
    const h = path.join(src, "common/include/tn/tn_proto.h");
    const pairs = new Set();
    const streams = new Set();
    if (!check(fs.existsSync(h), "common/include/tn/tn_proto.h exists")) return { pairs, streams };
    const text = fs.readFileSync(h, "utf8");
    for (const m of text.matchAll(/#define\s+TN_STREAM_\w+\s+"(tern:[a-z]+)"/g)) streams.add(m[1]);
    for (const m of text.matchAll(/#define\s+TN_GROUP_\w+\s+"([a-z]+)"\s*\/\*\s*on\s+([^*]*)\*\//g)) {
        for (const s of m[2].match(/tern:[a-z]+/g) || []) pairs.add(`${s} ${m[1]}`);
    }
    check(pairs.size > 0, "tn_proto.h names consumer groups and their streams");
    // proto/README.md (the catalogue), when present, must agree.
    const md = path.join(src, "proto/README.md");
    if (fs.existsSync(md)) {
        const mdPairs = new Set();
        for (const line of fs.readFileSync(md, "utf8").split("\n")) {
            const cells = line.split("|").map((c) => c.replace(/`/g, "").trim());
            if (cells.length < 4 || !/^tern:[a-z]+$/.test(cells[1])) continue;
            for (const c of cells.slice(2)) {
                if (/^[a-z]+(, *[a-z]+)*$/.test(c) && ["agent", "sender", "calsync", "sweeper"].some((g) => c.includes(g))) {
                    for (const g of c.split(/, */)) mdPairs.add(`${cells[1]} ${g}`);
                }
            }
        }
        check(mdPairs.size > 0, "proto/README.md's catalogue names streams and consumer groups");
        for (const p of mdPairs) check(pairs.has(p), `proto/README.md's "${p}" is in tn_proto.h`);
        for (const p of pairs) check(mdPairs.has(p), `tn_proto.h's "${p}" is in proto/README.md`);
    }
    return { pairs, streams };
}

// ------------------------------------------------------------------ rules

const WORKERS = { agent: 9102, calsync: 9103, sender: 9104, sweeper: 9105 };
const DAEMONS = { ingest: 9101, ...WORKERS };

function durationSeconds(s) {
    const m = /^(\d+)(ms|s|m)?$/.exec(String(s));
    if (!m) return NaN;
    const n = Number(m[1]);
    return m[2] === "ms" ? n / 1000 : m[2] === "m" ? n * 60 : n;
}

function matches(selector, labels) {
    const ml = selector?.matchLabels || {};
    return Object.keys(ml).length > 0 && Object.entries(ml).every(([k, v]) => labels?.[k] === v);
}

function checkDeployment(d, cfg, all, where) {
    const n = d.metadata.name;
    const svc = n.replace(/^tern-/, "");
    const spec = d.spec.template.spec;
    const c = spec.containers[0];
    const env = Object.fromEntries((c.env || []).map((e) => [e.name, e.value]));
    const drain = durationSeconds(env.TN_DRAIN_TIMEOUT ?? cfg.TN_DRAIN_TIMEOUT ?? "10s");
    check(spec.terminationGracePeriodSeconds > drain,
        `${where}: ${n} terminationGracePeriodSeconds ${spec.terminationGracePeriodSeconds} > drain ${drain}s`);
    for (const k of ["requests", "limits"])
        for (const r of ["cpu", "memory"])
            check(c.resources?.[k]?.[r] !== undefined, `${where}: ${n} resources.${k}.${r}`);
    const admin = (c.ports || []).find((p) => p.name === "admin");
    check(admin?.containerPort === DAEMONS[svc], `${where}: ${n} admin port ${DAEMONS[svc]}`);
    check(env.TN_ADMIN_LISTEN === `0.0.0.0:${DAEMONS[svc]}`, `${where}: ${n} TN_ADMIN_LISTEN on the admin port`);
    check(c.livenessProbe?.httpGet?.path === "/healthz" && c.livenessProbe.httpGet.port === "admin",
        `${where}: ${n} liveness is GET /healthz on admin`);
    check(c.readinessProbe?.httpGet?.path === "/readyz" && c.readinessProbe.httpGet.port === "admin",
        `${where}: ${n} readiness is GET /readyz on admin`);
    check(spec.securityContext?.runAsNonRoot === true && c.securityContext?.allowPrivilegeEscalation === false,
        `${where}: ${n} runs as non-root without privilege escalation`);
    // Secrets only as files: no plain secret variables, every *_FILE under a secret mount.
    const secretMounts = (c.volumeMounts || [])
        .filter((m) => (spec.volumes || []).some((v) => v.name === m.name && v.secret))
        .map((m) => m.mountPath);
    for (const name of ["TN_REDIS_URL", "TN_PG_DSN", "TN_MASTER_KEY"]) {
        check(!(name in env), `${where}: ${n} gets ${name} as a file, not a variable`);
        if (`${name}_FILE` in env)
            check(secretMounts.some((m) => env[`${name}_FILE`].startsWith(`${m}/`)),
                `${where}: ${n} ${name}_FILE lies in a mounted Secret`);
    }
    check(`TN_REDIS_URL_FILE` in env, `${where}: ${n} has TN_REDIS_URL_FILE`);
    const pdbs = all.filter((o) => o.kind === "PodDisruptionBudget" && matches(o.spec.selector, d.spec.template.metadata.labels));
    check(pdbs.length === 1, `${where}: ${n} has one PodDisruptionBudget`);
    check(matches(d.spec.selector, d.spec.template.metadata.labels), `${where}: ${n} selector matches its pods`);
}

function checkSet(objs, where, proto) {
    const byKind = (k) => objs.filter((o) => o.kind === k);
    const named = (k, n) => objs.find((o) => o.kind === k && o.metadata?.name === n);
    check(byKind("Secret").length === 0, `${where}: no Secret objects are committed`);
    const cfg = named("ConfigMap", "tern-config")?.data || {};
    check(cfg.TN_DRAIN_TIMEOUT !== undefined, `${where}: tern-config sets TN_DRAIN_TIMEOUT`);
    for (const svc of Object.keys(DAEMONS)) {
        const d = named("Deployment", `tern-${svc}`);
        if (check(d !== undefined, `${where}: Deployment tern-${svc}`)) checkDeployment(d, cfg, objs, where);
    }
    // tern-ingest: Service, Ingress to it, CPU HPA.
    const ing = named("Deployment", "tern-ingest");
    const svc = named("Service", "tern-ingest");
    check(svc && ing && matches({ matchLabels: svc.spec.selector }, ing.spec.template.metadata.labels),
        `${where}: Service tern-ingest selects the ingest pods`);
    const ingress = byKind("Ingress");
    check(ingress.length === 1 && ingress[0].spec.rules.every((r) =>
        r.http.paths.every((p) => p.backend.service?.name === "tern-ingest")),
        `${where}: the one Ingress routes only to tern-ingest`);
    const hpa = named("HorizontalPodAutoscaler", "tern-ingest");
    check(hpa?.spec.scaleTargetRef.name === "tern-ingest" &&
        hpa.spec.metrics.some((m) => m.resource?.name === "cpu"), `${where}: HPA scales tern-ingest on CPU`);
    check(ing && ing.spec.replicas === undefined, `${where}: tern-ingest leaves replicas to its HPA`);
    // Migration Job.
    const job = byKind("Job").find((j) => (j.spec.template.spec.containers[0].args || []).join(" ") === "migrate");
    check(job !== undefined && job.spec.template.spec.restartPolicy !== "Always", `${where}: migration Job runs ternctl migrate`);
    // KEDA: one ScaledObject per scaled worker, triggers on proto's streams and groups.
    const seen = new Set();
    const auths = new Set(byKind("TriggerAuthentication").map((t) => t.metadata.name));
    for (const so of byKind("ScaledObject")) {
        const target = so.spec.scaleTargetRef.name;
        const group = target.replace(/^tern-/, "");
        check(named("Deployment", target) !== undefined, `${where}: ScaledObject ${so.metadata.name} targets a Deployment`);
        check(target !== "tern-sweeper" && target !== "tern-ingest", `${where}: ${target} is not KEDA-scaled`);
        const min = so.spec.minReplicaCount ?? 0;
        const max = so.spec.maxReplicaCount ?? 100;
        check(min <= max && max >= 1 && max <= 100, `${where}: ${so.metadata.name} replicas ${min}..${max}`);
        for (const t of so.spec.triggers) {
            const md = t.metadata || {};
            const id = `${where}: ${so.metadata.name} trigger ${md.stream}/${md.consumerGroup}`;
            check(t.type === "redis-streams", `${id} is redis-streams`);
            check(proto.pairs.has(`${md.stream} ${md.consumerGroup}`), `${id} is a stream and group in proto`);
            check(md.consumerGroup === group, `${id}: group is the target daemon's own`);
            check(/^[1-9][0-9]*$/.test(md.lagCount || ""), `${id} is lag-based (lagCount)`);
            check(md.activationLagCount !== undefined, `${id} sets activationLagCount`);
            check(md.pendingEntriesCount === undefined && md.streamLength === undefined, `${id} uses only lagCount`);
            check(typeof md.address === "string" && /:\d+$/.test(md.address), `${id} has a Redis address`);
            check(auths.has(t.authenticationRef?.name), `${id} authenticates with a TriggerAuthentication`);
            seen.add(`${md.stream} ${md.consumerGroup}`);
        }
    }
    for (const p of proto.pairs) {
        if (p.endsWith(" sweeper")) continue; // single replica by design (sweeper.yaml)
        check(seen.has(p), `${where}: a ScaledObject scales on ${p}`);
    }
    const sw = named("Deployment", "tern-sweeper");
    check(sw?.spec.replicas === 1 && sw.spec.strategy?.type === "Recreate", `${where}: tern-sweeper is one replica, Recreate`);
    // NetworkPolicies: default deny; only tern-ingest open to any source.
    const nps = byKind("NetworkPolicy");
    check(nps.some((p) => Object.keys(p.spec.podSelector || {}).length === 0 &&
        (p.spec.policyTypes || []).includes("Ingress") && !(p.spec.ingress || []).length),
        `${where}: a default-deny ingress NetworkPolicy`);
    for (const p of nps) {
        const open = (p.spec.ingress || []).some((r) => !r.from || r.from.length === 0);
        if (!open) continue;
        const sel = p.spec.podSelector?.matchLabels || {};
        check(sel["app.kubernetes.io/name"] === "tern-ingest" &&
            (p.spec.ingress || []).every((r) => (r.ports || []).length > 0 && r.ports.every((x) => x.port === 8080)),
            `${where}: NetworkPolicy ${p.metadata.name} opens only tern-ingest's webhook port`);
    }
}

// ------------------------------------------------------------------ compose

// The provider URL variables a daemon reads: TN_ENV_STR entries whose
// default is an https:// URL (a provider's or the LLM's) in
// services/<daemon>/*.c.
function providerUrlVars(daemon) {
    const dir = path.join(src, "services", daemon);
    const vars = new Set();
    if (!fs.existsSync(dir)) return vars;
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith(".c")))
        for (const m of fs.readFileSync(path.join(dir, f), "utf8").matchAll(/TN_ENV_STR\(\s*"(TN_[A-Z0-9_]+)",\s*"https:\/\//g))
            vars.add(m[1]);
    return vars;
}

// The sandbox's path prefix for a provider URL variable (tests/sandbox/README.md).
function sandboxPrefix(name) {
    for (const [re, p] of [[/LLM|OPENAI/, "/openai/v1"], [/WHATSAPP/, "/whatsapp"], [/TWILIO/, "/twilio"],
        [/TELEGRAM/, "/telegram"], [/GMAIL/, "/gmail"], [/GOOGLE/, "/google/"]])
        if (re.test(name)) return p;
    return null;
}

function checkComposeDaemon(s, name, svc, port) {
    const d = s[name];
    check(d.healthcheck?.test !== undefined, `compose: ${name} has a health check`);
    check(/^(always|unless-stopped|on-failure)/.test(d.restart || ""), `compose: ${name} has a restart policy`);
    check((d.secrets || []).some((x) => (x.source || x) === `redis-url-${svc}`), `compose: ${name} has its own Redis credentials`);
    check(d.depends_on?.migrate?.condition === "service_completed_successfully", `compose: ${name} waits for the migration`);
    const env = d.environment || {};
    check(env.TN_ADMIN_LISTEN === `0.0.0.0:${port}`, `compose: ${name} admin port ${port}`);
    check(!("TN_REDIS_URL" in env) && env.TN_REDIS_URL_FILE !== undefined, `compose: ${name} reads its Redis URL from a file`);
    if (svc === "ingest") check((d.ports || []).length > 0, `compose: the ingester's port is published (${name})`);
    else check(!(d.ports || []).length, `compose: ${name} publishes no port`);
}

function checkCompose() {
    const file = path.join(src, "deploy/compose.yaml");
    if (!check(fs.existsSync(file), "deploy/compose.yaml exists")) return;
    const [c] = loadDocs(file);
    const s = c?.services || {};
    const profiles = (x) => x?.profiles || [];
    for (const need of ["redis", "postgres", "migrate", "pg-roles"])
        if (check(need in s, `compose: service ${need}`))
            check(profiles(s[need]).length === 0, `compose: ${need} belongs to every profile`);
    const redisCmd = [].concat(s.redis?.command || []).join(" ");
    check(/--appendonly yes/.test(redisCmd) && /--aclfile /.test(redisCmd), "compose: redis runs with AOF and the ACL file");
    check(s.migrate?.restart === "no" || s.migrate?.restart === undefined, "compose: migrate is one-shot");
    // Each daemon twice: for the real providers (profile prod) and on the
    // sandbox (profile sandbox, service sandbox-<daemon>), same image.
    for (const [svc, port] of Object.entries(DAEMONS)) {
        for (const [name, prof] of [[svc, "prod"], [`sandbox-${svc}`, "sandbox"]]) {
            if (!check(s[name] !== undefined, `compose: service ${name}`)) continue;
            check(isDeepStrictEqual(profiles(s[name]), [prof]), `compose: ${name} is only in profile ${prof}`);
            checkComposeDaemon(s, name, svc, port);
        }
        if (s[svc] && s[`sandbox-${svc}`])
            check(s[svc].image === s[`sandbox-${svc}`].image, `compose: sandbox-${svc} runs ${svc}'s image`);
    }
    for (const [name, def] of Object.entries(c.secrets || {}))
        check(typeof def.file === "string", `compose: secret ${name} is a file`);

    // The provider sandbox and the demo seed job exist only under the profile.
    const sb = s.sandbox;
    if (!check(sb !== undefined, "compose: service sandbox (the provider sandbox)")) return;
    check(isDeepStrictEqual(profiles(sb), ["sandbox"]), "compose: the provider sandbox exists only under profile sandbox");
    check(sb.build?.target === "sandbox" && sb.healthcheck?.test !== undefined, "compose: sandbox is built from target sandbox, with a health check");
    const sbPort = /:(\d+)$/.exec(sb.environment?.TN_SANDBOX_LISTEN || "")?.[1];
    check(sbPort !== undefined, "compose: sandbox has TN_SANDBOX_LISTEN");
    check(sb.environment?.TN_SANDBOX_INGEST_URL === `http://sandbox-ingest:${/:(\d+)$/.exec(s.ingest?.environment?.TN_INGEST_LISTEN || "")?.[1]}`,
        "compose: the sandbox emits webhooks to sandbox-ingest's listener");
    const demo = s["sandbox-demo"];
    if (check(demo !== undefined, "compose: service sandbox-demo (the demo seed job)")) {
        check(isDeepStrictEqual(profiles(demo), ["sandbox"]), "compose: sandbox-demo exists only under profile sandbox");
        check(demo.restart === "no" && demo.depends_on?.["pg-roles"]?.condition === "service_completed_successfully",
            "compose: sandbox-demo is one-shot, after the migration and role passwords");
        const env = demo.environment || {};
        check(["TN_DEMO_SLUG", "TN_DEMO_PHONE_NUMBER_ID", "TN_DEMO_APP_SECRET", "TN_DEMO_VERIFY_TOKEN", "TN_DEMO_ACCESS_TOKEN"]
            .every((k) => typeof env[k] === "string" && env[k] !== ""), "compose: sandbox-demo has the demo tenant's settings");
    }
    // Every provider/LLM URL a daemon reads points at the sandbox in the
    // profile (a URL a browser follows, at its published port), and the
    // prod daemons know nothing of the sandbox.
    const sandboxUrl = new RegExp(`^http://(sandbox:${sbPort}|\\$\\{TN_SANDBOX_PUBLISH:-127\\.0\\.0\\.1:\\d+\\})(/.*)?$`);
    let nvars = 0;
    for (const svc of Object.keys(DAEMONS)) {
        const sd = s[`sandbox-${svc}`];
        if (!sd) continue;
        const env = sd.environment || {};
        for (const v of providerUrlVars(svc)) {
            nvars++;
            const prefix = sandboxPrefix(v);
            const m = sandboxUrl.exec(env[v] || "");
            check(m !== null && (prefix === null || `${m[2] || ""}/`.startsWith(prefix.endsWith("/") ? prefix : `${prefix}/`)),
                `compose: sandbox-${svc} ${v} points at the sandbox${prefix ?? ""} (is ${env[v]})`);
        }
        for (const [k, v] of Object.entries(env))
            if (typeof v === "string" && /^https?:\/\//.test(v) && !sandboxUrl.test(v) && !/^http:\/\/sandbox-ingest:/.test(v))
                check(false, `compose: sandbox-${svc} ${k} leaves the compose network (${v})`);
        check(sd.depends_on?.sandbox?.condition === "service_healthy" &&
            sd.depends_on?.["sandbox-demo"]?.condition === "service_completed_successfully",
            `compose: sandbox-${svc} starts after the sandbox and the demo seed`);
        const prod = s[svc];
        if (prod)
            check(!/sandbox/.test(JSON.stringify({ e: prod.environment, d: prod.depends_on })),
                `compose: ${svc} (prod) refers to nothing of the sandbox`);
    }
    check(nvars > 0, "services/*/*.c name provider URL variables (TN_ENV_STR with an https:// default)");
}

// ------------------------------------------------------------------ alerts and runbook

function cSources(dir) {
    if (!fs.existsSync(dir)) return [];
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? cSources(path.join(dir, e.name)) : /\.c$/.test(e.name) ? [path.join(dir, e.name)] : []);
}

function checkAlertsAndRunbook(prometheusRules) {
    const rulesFile = path.join(src, "deploy/prometheus/alerts.yaml");
    const runbookFile = path.join(src, "deploy/RUNBOOK.md");
    if (!check(fs.existsSync(rulesFile) && fs.existsSync(runbookFile), "alerts.yaml and RUNBOOK.md exist")) return;
    const [rules] = loadDocs(rulesFile);
    for (const pr of prometheusRules)
        check(isDeepStrictEqual(pr.spec.groups, rules.groups), `PrometheusRule ${pr.metadata.name} equals deploy/prometheus/alerts.yaml`);
    const runbook = fs.readFileSync(runbookFile, "utf8");
    // The metrics table: | `name` | type | labels | state | meaning |
    // A row may name several metrics: | `a`, `b` | counter | labels | exists | meaning |
    const table = new Map();
    const state = new Map();
    for (const m of runbook.matchAll(/^\|\s*((?:`[a-z_:][a-z0-9_:]*`,?\s*)+)\|\s*(counter|gauge|histogram)\s*\|[^|\n]*\|\s*([a-z]+)\s*\|/gm)) {
        for (const n of m[1].matchAll(/`([a-z_:][a-z0-9_:]*)`/g)) {
            table.set(n[1], m[2]);
            state.set(n[1], m[3]);
        }
    }
    check(table.size >= 5, "RUNBOOK has a metrics table");
    // "exists" must be true: the name is a string literal in the C sources
    // (common/src, services). Metrics only tn_consumer_export.c registers
    // exist once a daemon calls tn_consumer_export().
    const cFiles = ["common/src", "services"].flatMap((d) => cSources(path.join(src, d)));
    const texts = new Map(cFiles.map((f) => [f, fs.readFileSync(f, "utf8")]));
    const exportCalled = [...texts].some(([f, t]) => rel(f).startsWith("services/") && /\btn_consumer_export\s*\(/.test(t));
    for (const [name, st] of state) {
        check(st === "exists" || st === "planned", `metric ${name}: state is exists or planned (is ${st})`);
        if (st !== "exists") continue;
        const lit = new RegExp(`"${name}["{ ]`);
        const files = [...texts].filter(([, t]) => lit.test(t)).map(([f]) => rel(f));
        check(files.length > 0, `metric ${name} is marked exists: a C source registers it`);
        if (files.length > 0 && files.every((f) => f.endsWith("tn_consumer_export.c")))
            check(exportCalled, `metric ${name} is marked exists: a daemon calls tn_consumer_export()`);
    }
    for (const [name, type] of table) {
        check(/^(tern|process)_/.test(name), `metric ${name} has the tern_ (or process_) prefix`);
        check((type === "counter") === name.endsWith("_total"), `metric ${name}: only counters end in _total`);
        check(!/_(count|sum|bucket)$/.test(name) || type === "histogram", `metric ${name}: reserved suffix`);
    }
    const reserved = new Set(["sum", "by", "and", "or", "unless", "rate", "increase", "delta", "max", "min",
        "offset", "humanizePercentage", "without", "avg", "count", "on", "ignoring", "deriv", "result", "reason"]);
    for (const g of rules.groups) {
        for (const r of g.rules) {
            check(/^Tern[A-Za-z]+$/.test(r.alert) && r.annotations?.summary && r.labels?.severity,
                `alert ${r.alert}: name, summary, severity`);
            const anchor = (r.annotations?.runbook || "").split("#")[1];
            check(anchor && runbook.toLowerCase().includes(`## ${anchor.replace(/-/g, " ")}`) ,
                `alert ${r.alert}: its runbook section "${anchor}" exists`);
            const expr = r.expr.replace(/\{[^}]*\}/g, "").replace(/\[[^\]]*\]/g, "").replace(/"[^"]*"/g, "");
            for (const id of expr.match(/[a-z_][a-z0-9_]*/g) || []) {
                if (reserved.has(id) || !id.includes("_")) continue;
                check(table.has(id), `alert ${r.alert}: metric ${id} is in the RUNBOOK's metrics table`);
            }
        }
    }
    // Every ternctl command named in a code block exists, or its line says "planned".
    const mainC = path.join(src, "services/ctl/main.c");
    const cmds = new Set(fs.existsSync(mainC)
        ? [...fs.readFileSync(mainC, "utf8").matchAll(/\{"([a-z-]+)",\s*\w+\}/g)].map((m) => m[1]) : []);
    check(cmds.has("migrate"), "services/ctl/main.c lists ternctl's commands");
    const blocks = [...runbook.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].map((m) => m[1]).join("\n");
    for (const line of blocks.split("\n")) {
        for (const m of line.matchAll(/\bternctl\s+([a-z][a-z-]*)/g)) {
            if (/planned/i.test(line)) continue;
            check(cmds.has(m[1]), `RUNBOOK: "ternctl ${m[1]}" exists (or the line says planned)`);
        }
        for (const m of line.replace(/\s#.*$/, "").matchAll(/(?:^|\s)((?:deploy|scripts)\/[\w./-]+)/g))
            check(fs.existsSync(path.join(src, m[1])), `RUNBOOK: ${m[1]} exists`);
    }
}

// ------------------------------------------------------------------ main

const proto = protoPairs();
const prometheusRules = [];
for (const dir of ["deploy/k8s/base", "deploy/k8s/components"]) {
    const objs = [];
    for (const f of yamlFiles(path.join(src, dir))) {
        for (const o of loadDocs(f)) {
            if (o.kind === "Kustomization" || o.kind === "Component") continue;
            await validateSchema(o, rel(f));
            objs.push(o);
            if (o.kind === "PrometheusRule") prometheusRules.push(o);
        }
    }
    if (dir.endsWith("base")) checkSet(objs, "base", proto);
}
for (const f of rendered) {
    const objs = loadDocs(f);
    const where = path.basename(f, ".yaml");
    for (const o of objs) await validateSchema(o, where);
    checkSet(objs, where, proto);
    prometheusRules.push(...objs.filter((o) => o.kind === "PrometheusRule"));
}
checkCompose();
checkAlertsAndRunbook(prometheusRules);
console.log(`k8s: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
