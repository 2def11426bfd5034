// tests/profile_check.mjs — reads, on stdin, the reply of the aggregation
// testdb_profile_check (scripts/lib.sh) runs over a database's
// system.profile: parley's operations grouped by collection, operation,
// plan summary and whether they sorted in memory.  Prints one line per
// group and exits 1 if any group scanned a collection (COLLSCAN) or had a
// blocking SORT stage, but for the one scan parley makes by design: an
// admin's GET /api/agent-sessions/stats?all=true, an aggregation of every
// session with no $match.
import { readFileSync } from "node:fs";

const reply = JSON.parse(readFileSync(0, "utf8"));
const groups = reply.cursor.firstBatch;
let bad = 0, ops = 0;

function allowed(g) {
    const c = g.command || {};
    return g._id.ns.endsWith(".sessions") && c.aggregate !== undefined &&
        Array.isArray(c.pipeline) && !c.pipeline.some((s) => "$match" in s);
}

for (const g of groups) {
    const plan = g._id.plan || "-";
    const scan = plan.includes("COLLSCAN");
    const sort = g._id.sort === true;
    let verdict = "ok";
    if ((scan && !allowed(g)) || sort) {
        verdict = scan ? "FAIL: collection scan" : "FAIL: blocking sort";
        bad++;
    } else if (scan) {
        verdict = "ok (admin stats?all=true: every session, by design)";
    }
    ops += g.n;
    console.log(`${String(g.n).padStart(6)}  ${g._id.ns.replace(/^[^.]*\./, "").padEnd(16)} ` +
        `${g._id.op.padEnd(8)} ${plan.slice(0, 90).padEnd(90)} keys<=${g.keys ?? "-"} ` +
        `docs<=${g.docs ?? "-"}  ${verdict}`);
    if (verdict.startsWith("FAIL"))
        console.log(`        command: ${JSON.stringify(g.command).slice(0, 400)}`);
}
console.log(`profile: ${ops} operations of parley's in ${groups.length} kinds, ${bad} kinds failed`);
process.exit(bad === 0 ? 0 : 1);
