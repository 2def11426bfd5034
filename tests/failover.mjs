// tests/failover.mjs DIR DEADLINE_MS — the checks and figures of
// tests/failover.sh over what it left in DIR: the load records of each
// fault (NAME.tsv, tests/loadgen's format), their times (NAME.times:
// fault_ms writable_ms old new rollback_lines elected_ms, writable_ms
// being when the new primary first took a w:majority write), the appends sent again
// (resent.tsv: key status id client seq), every session's messages and
// every session as listed (messages.jsonl, sessions.jsonl: one page a
// line), mongo_probe's errors (probe.jsonl) and parley's log.  Prints the
// figures, and one "PROBLEM ..." line per failed check.
import { readFileSync, existsSync } from "node:fs";

const [dir, deadlineArg] = process.argv.slice(2);
const deadline = Number(deadlineArg);
const faults = ["stepdown", "kill", "stop"];
const APPENDERS = 5, CREATOR = 5;
const problems = [];
const problem = (s) => problems.push(s);
const lines = (f) => existsSync(`${dir}/${f}`)
    ? readFileSync(`${dir}/${f}`, "utf8").split("\n").filter(Boolean) : [];
const ok2xx = (s) => s >= 200 && s < 300;

const records = {};
for (const name of faults) {
    records[name] = lines(`${name}.tsv`).map((l) => {
        const f = l.split("\t");
        return {
            c: +f[0], i: +f[1], start: +f[2], end: +f[3], status: +f[4], ra: f[5],
            id: f[6], seq: f[7] === "-" ? null : +f[7], rid: f[9], version: f[11] === "-" ? null : +f[11],
        };
    });
}

// --- each fault -------------------------------------------------------------
for (const name of faults) {
    const rs = records[name];
    const [fault, np, oldp, newp, rollbacks, elected] = readFileSync(`${dir}/${name}.times`, "utf8").trim().split(" ").map(Number);
    const by = {};
    for (const r of rs) by[r.status] = (by[r.status] || 0) + 1;
    const st = Object.keys(by).sort().map((s) => `${s}:${by[s]}`).join(" ");
    const bad = rs.filter((r) => !ok2xx(r.status) && r.status !== 503);
    for (const r of bad.slice(0, 5))
        problem(`${name}: client ${r.c} request ${r.i} answered ${r.status} (${r.rid})`);
    if (bad.length > 5) problem(`${name}: ${bad.length} answers neither 2xx nor 503`);
    const u503 = rs.filter((r) => r.status === 503);
    for (const r of u503.filter((r) => r.ra !== "1").slice(0, 3))
        problem(`${name}: a 503 without Retry-After: 1 (${r.rid})`);
    // A 503 says no primary could be reached within the deadline: it must
    // have been under way after the fault and sent before parley could
    // know the new primary (2 s after the harness saw it).
    const outside = u503.filter((r) => r.end < fault || r.start > np + 2000);
    for (const r of outside.slice(0, 3))
        problem(`${name}: a 503 sent ${r.start - np} ms after the new primary took w:majority writes, answered ${r.end - fault} ms after the fault (${r.rid})`);
    const after = rs.filter((r) => ok2xx(r.status) && r.end > np).map((r) => r.end - np);
    const firstOk = after.length ? Math.min(...after) : null;
    if (firstOk === null) problem(`${name}: no 2xx after the new primary took w:majority writes`);
    else if (firstOk > 2000) problem(`${name}: first 2xx ${firstOk} ms after the new primary took w:majority writes (limit 2000)`);
    const during = rs.filter((r) => r.end >= fault && r.start <= np + 2000);
    const slowest = Math.max(0, ...during.map((r) => r.end - r.start));
    const before = rs.filter((r) => r.end < fault && ok2xx(r.status));
    const okBefore = before.length ? (before.reduce((a, r) => a + r.end - r.start, 0) / before.length).toFixed(0) : "-";
    console.log(`${name}: ${rs.length} requests (${st}); member ${oldp} -> ${newp}: elected ${elected - fault} ms after the fault, ` +
        `w:majority writes taken after ${np - fault} ms; ` +
        `${u503.length} answered 503 (first ${u503.length ? Math.min(...u503.map((r) => r.end)) - fault : "-"} ms, ` +
        `last ${u503.length ? Math.max(...u503.map((r) => r.end)) - fault : "-"} ms after the fault); first 2xx ${firstOk} ms after ` +
        `the new primary; slowest answer meanwhile ${slowest} ms (mean 2xx before: ${okBefore} ms); ` +
        `${rollbacks} rollback lines in the old primary's log`);
}

// --- what is stored -----------------------------------------------------------
const listed = new Map(); // id -> [{session, seq, content}]
const byContent = new Map();
const bySessionSeq = new Map();
for (const page of lines("messages.jsonl")) {
    let p;
    try { p = JSON.parse(page); } catch { problem(`a message page is not JSON: ${page.slice(0, 100)}`); continue; }
    for (const m of p.items) {
        const e = { session: m.session_id, seq: m.seq, content: m.content };
        listed.set(m.id, [...(listed.get(m.id) || []), e]);
        byContent.set(m.content, (byContent.get(m.content) || 0) + 1);
        const k = `${m.session_id}/${m.seq}`;
        bySessionSeq.set(k, (bySessionSeq.get(k) || 0) + 1);
    }
}
for (const [k, n] of bySessionSeq) if (n > 1) problem(`seq ${k} listed ${n} times`);

const acked = new Map(); // key -> {id, seq, session, start}
const keys = new Set();
let ackedFirst = 0;
for (const name of faults)
    for (const r of records[name]) {
        if (r.c >= APPENDERS) continue;
        const key = `${name}-${r.c}-${r.i}`;
        keys.add(key);
        if (ok2xx(r.status)) {
            acked.set(key, { id: r.id, seq: r.seq, session: `f${r.c}`, start: r.start, c: r.c });
            ackedFirst++;
        }
    }
let resent = 0;
for (const l of lines("resent.tsv")) {
    const [key, status, id, c, seq] = l.split("\t");
    if (!ok2xx(+status)) continue;
    resent++;
    acked.set(key, { id, seq: seq === "-" ? null : +seq, session: `f${c}`, start: Infinity, c: +c, resent: true });
}
for (const [key, a] of acked) {
    const l = listed.get(a.id) || [];
    if (l.length !== 1) { problem(`${key}: acknowledged as ${a.id}, listed ${l.length} times`); continue; }
    if (l[0].session !== a.session) problem(`${key}: listed in ${l[0].session}, not ${a.session}`);
    if (a.seq !== null && l[0].seq !== a.seq) problem(`${key}: answered seq ${a.seq}, listed with seq ${l[0].seq}`);
}
for (const key of keys) {
    const n = byContent.get(key) || 0;
    if (n !== 1) problem(`${key}: stored ${n} times`);
}
for (const [content] of byContent) if (!keys.has(content)) problem(`stored ${content}, which was never sent`);
// No seq handed to two messages; each client's acknowledged seqs grow.
const seqOwner = new Map();
for (const [key, a] of acked) {
    if (a.seq === null) continue;
    const k = `${a.session}/${a.seq}`;
    if (seqOwner.has(k) && seqOwner.get(k) !== a.id) problem(`seq ${k} answered for two messages (${key})`);
    seqOwner.set(k, a.id);
}
for (let c = 0; c < APPENDERS; c++) {
    const mine = [...acked.values()].filter((a) => a.c === c && !a.resent).sort((x, y) => x.start - y.start);
    for (let k = 1; k < mine.length; k++)
        if (!(mine[k].seq > mine[k - 1].seq))
            problem(`client ${c}: seq ${mine[k].seq} answered after ${mine[k - 1].seq}`);
}
console.log(`appends: ${keys.size} keys, ${ackedFirst} acknowledged at once, ${resent} resent until stored; ` +
    `${listed.size} messages listed`);

// Sessions: every acknowledged create listed; PATCH versions never reused.
const sessions = new Map();
for (const page of lines("sessions.jsonl")) {
    let p;
    try { p = JSON.parse(page); } catch { problem(`a session page is not JSON`); continue; }
    for (const s of p.items) {
        if (sessions.has(s.session_id)) problem(`session ${s.session_id} listed twice`);
        sessions.set(s.session_id, s);
    }
}
let creates = 0, patches = 0;
for (const name of faults)
    for (const r of records[name]) {
        if (r.c === CREATOR && ok2xx(r.status)) {
            creates++;
            if (!sessions.has(`${name}-c${r.c}-${r.i}`)) problem(`created ${name}-c${r.c}-${r.i} (201) is not listed`);
        }
    }
for (let c = CREATOR + 1; c < 8; c++) {
    const mine = faults.flatMap((n) => records[n]).filter((r) => r.c === c && ok2xx(r.status))
        .sort((x, y) => x.start - y.start);
    patches += mine.length;
    const seen = new Set();
    for (let k = 0; k < mine.length; k++) {
        if (seen.has(mine[k].version)) problem(`f${c}: version ${mine[k].version} answered to two PATCHes`);
        seen.add(mine[k].version);
        if (k > 0 && !(mine[k].version > mine[k - 1].version))
            problem(`f${c}: version ${mine[k].version} answered after ${mine[k - 1].version}`);
    }
    const stored = sessions.get(`f${c}`);
    const last = mine.length ? mine[mine.length - 1].version : 0;
    if (!stored) problem(`session f${c} is not listed`);
    else if (stored.version < last) problem(`f${c}: stored version ${stored.version} below the acknowledged ${last}`);
}
console.log(`sessions: ${creates} creates acknowledged, all listed; ${patches} PATCHes acknowledged, no version twice`);

// --- the errors the set answered ------------------------------------------------
const classes = new Map();
let probeOk = 0, probeFailed = 0;
for (const l of lines("probe.jsonl")) {
    const d = JSON.parse(l);
    if (d.summary) { probeOk += d.summary.ok; probeFailed += d.summary.failed; continue; }
    const k = `${d.client.padEnd(7)} ${d.op.padEnd(13)} domain ${String(d.domain).padStart(2)} code ${String(d.code).padStart(5)} ` +
        `${(d.codeName || "-").padEnd(31)} ${(d.labels.join(",") || "-").padEnd(19)} -> ${d.verdict.status} retry ${d.verdict.retry}`;
    classes.set(k, (classes.get(k) || 0) + 1);
    if (d.verdict.status !== 503) problem(`probe: ${d.op} failed with ${d.domain}/${d.code} ${d.codeName} "${d.message}", which parley would answer ${d.verdict.status}`);
}
console.log(`probe: ${probeOk} operations ok, ${probeFailed} failed; what failed, and parley's verdict:`);
for (const [k, n] of [...classes].sort()) console.log(`  ${String(n).padStart(4)}  ${k}`);

// parley's own 503s, by the database code it logged.
const codes = new Map();
for (const l of lines("parley.log")) {
    const m = / -> 503: (.*) \(db code (-?\d+), (\d+) tries\)/.exec(l);
    if (!m) continue;
    const what = m[1].replace(/^request deadline reached after \d+ tries: /, "").replace(/: .*/, "");
    const k = `db code ${m[2]} (${what})`;
    codes.set(k, (codes.get(k) || 0) + 1);
}
console.log(`parley's 503s by the last error: ${[...codes].map(([k, n]) => `${n}x ${k}`).join("; ") || "none"}`);

for (const p of problems.slice(0, 30)) console.log(`PROBLEM ${p}`);
if (problems.length > 30) console.log(`PROBLEM ... ${problems.length} problems in all`);
