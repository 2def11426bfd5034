// tests/multihost-load.mjs — the client side of tests/multihost.sh.
//
//   node multihost-load.mjs load   --url U --token T --session S
//                                  --concurrency C --stop-file F
//                                  --max-seconds N --out FILE
//   node multihost-load.mjs verify --url U --token T --session S --in FILE
//
// `load` runs C clients against U (nginx's balanced server) until F exists
// or N seconds have passed.  Each client repeats one round of requests on
// the session S:
//
//   PUT    memory/k-<c>-<i>        200, and sets the value
//   GET    memory/k-<c>-<i>        200 with that value
//   DELETE memory/k-<c>-<i>        204 (404 only if nginx sent it twice:
//                                  the test checks that in nginx's log)
//   POST   messages                201, Idempotency-Key m-<c>-<i>,
//                                  content = the key
//   GET    the session             200
//
// Every request carries `X-Load-Id: <c>-<i>-<step>`, which nginx logs with
// the upstream(s) it tried.  It writes FILE: counts by request and status,
// every unexpected answer, the keys whose POST failed (a 502 when the host
// died while the request was in flight is expected: nginx does not resend a
// POST), and the keys whose POST succeeded.
//
// `verify` reads that FILE, sends every failed POST again with its key
// (what a client does after a 502: the key makes the retry safe), then
// lists the session's messages and checks that every key is stored exactly
// once.  It prints one JSON line of numbers and exits 1 on any problem.
//
// Only node's own modules; the URL is loopback.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

function args(argv) {
  const o = { _: argv[0] };
  for (let i = 1; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) {
      throw new Error(`bad argument ${argv[i]}`);
    }
    o[argv[i].slice(2)] = argv[i + 1];
  }
  return o;
}

const opt = args(process.argv.slice(2));
const base = `${opt.url}/api/agent-sessions/${encodeURIComponent(opt.session)}`;
const auth = { Authorization: `Bearer ${opt.token}` };

async function call(method, path, { body, headers = {}, loadId } = {}) {
  const h = { ...auth, ...headers };
  if (loadId) h['X-Load-Id'] = loadId;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const started = Date.now();
  try {
    const r = await fetch(base + path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30000),
    });
    const text = await r.text();
    return { status: r.status, text, started, ended: Date.now() };
  } catch (e) {
    // No HTTP answer at all (nginx itself unreachable, or the timeout).
    return { status: 0, text: String(e), started, ended: Date.now() };
  }
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function load() {
  const clients = Number(opt.concurrency || 8);
  const deadline = Date.now() + Number(opt['max-seconds'] || 60) * 1000;
  const counts = {};
  const unexpected = [];
  const failedPosts = [];
  const okPosts = [];
  const delete404 = [];
  let rounds = 0;

  const note = (what, r, expected, id) => {
    const k = `${what} ${r.status}`;
    counts[k] = (counts[k] || 0) + 1;
    if (!expected) {
      unexpected.push({ what, id, status: r.status, at: r.started, body: r.text.slice(0, 200) });
    }
  };
  const stopping = () => Date.now() >= deadline || existsSync(opt['stop-file']);

  async function client(c) {
    for (let i = 0; !stopping(); i++) {
      const key = `k-${c}-${i}`;
      const id = (step) => `${c}-${i}-${step}`;
      const value = { client: c, round: i };

      let r = await call('PUT', `/memory/${key}`, { body: value, loadId: id('put') });
      note('PUT memory', r, r.status === 200, id('put'));
      const stored = r.status === 200;

      r = await call('GET', `/memory/${key}`, { loadId: id('get') });
      const got = parse(r.text);
      const same = got && JSON.stringify(got.value) === JSON.stringify(value);
      note('GET memory', r, r.status === 200 ? same : !stored && r.status === 404, id('get'));

      r = await call('DELETE', `/memory/${key}`, { loadId: id('delete') });
      note('DELETE memory', r, r.status === 204 || r.status === 404, id('delete'));
      if (r.status === 404) delete404.push(id('delete'));

      const mkey = `m-${c}-${i}`;
      r = await call('POST', '/messages', {
        body: { role: 'user', content: mkey },
        headers: { 'Idempotency-Key': mkey },
        loadId: id('post'),
      });
      if (r.status === 201) {
        okPosts.push(mkey);
        note('POST message', r, true, id('post'));
      } else if (r.status === 502 || r.status === 504) {
        // The host died with the request in flight: not resent by nginx.
        failedPosts.push({ key: mkey, status: r.status, at: r.started, id: id('post') });
        note('POST message', r, true, id('post'));
      } else {
        failedPosts.push({ key: mkey, status: r.status, at: r.started, id: id('post') });
        note('POST message', r, false, id('post'));
      }

      r = await call('GET', '', { loadId: id('session') });
      note('GET session', r, r.status === 200, id('session'));
      rounds++;
    }
  }

  const started = Date.now();
  await Promise.all(Array.from({ length: clients }, (_, c) => client(c)));
  const result = {
    clients,
    rounds,
    seconds: (Date.now() - started) / 1000,
    counts,
    unexpected,
    failedPosts,
    okPosts,
    delete404,
  };
  writeFileSync(opt.out, JSON.stringify(result));
  console.log(JSON.stringify({ rounds, counts, unexpected: unexpected.length,
    failedPosts: failedPosts.length, delete404: delete404.length }));
}

async function verify() {
  const res = JSON.parse(readFileSync(opt.in, 'utf8'));
  const problems = [];
  const keys = new Set(res.okPosts);
  let replayed = 0;
  let createdOnRetry = 0;

  // A client that got a 502 sends the same request again with the same
  // key.  201: the first try never stored it.  200: it did, and the retry
  // answers that message instead of storing a second one.  409: the dead
  // writer's claim on the key is not stale yet (2 x request_deadline_ms):
  // try again a little later, as the error says.
  for (const f of res.failedPosts) {
    const until = Date.now() + 20000;
    let r;
    for (;;) {
      r = await call('POST', '/messages', {
        body: { role: 'user', content: f.key },
        headers: { 'Idempotency-Key': f.key },
      });
      if (r.status !== 409 && r.status !== 502 && r.status !== 503) break;
      if (Date.now() >= until) break;
      await new Promise((ok) => setTimeout(ok, 500));
    }
    const m = parse(r.text);
    if ((r.status === 200 || r.status === 201) && m && m.content === f.key) {
      if (r.status === 200) replayed++;
      else createdOnRetry++;
      keys.add(f.key);
    } else {
      problems.push(`retry of ${f.key}: ${r.status} ${r.text.slice(0, 200)}`);
    }
  }

  // Every key once, nothing else.
  const seen = new Map();
  let total = -1;
  let listed = 0;
  for (let offset = 0; ; offset += 200) {
    const r = await call('GET', `/messages?limit=200&offset=${offset}`);
    const page = parse(r.text);
    if (r.status !== 200 || !page) {
      problems.push(`list at ${offset}: ${r.status} ${r.text.slice(0, 200)}`);
      break;
    }
    total = page.total;
    listed += page.items.length;
    for (const m of page.items) seen.set(m.content, (seen.get(m.content) || 0) + 1);
    if (!page.has_more) break;
  }
  const dup = [...seen].filter(([, n]) => n > 1).map(([k, n]) => `${k} x${n}`);
  const missing = [...keys].filter((k) => !seen.has(k));
  const extra = [...seen.keys()].filter((k) => !keys.has(k));
  if (dup.length) problems.push(`stored more than once: ${dup.slice(0, 10).join(', ')}`);
  if (missing.length) problems.push(`acknowledged but not stored: ${missing.slice(0, 10).join(', ')}`);
  if (extra.length) problems.push(`stored but never acknowledged: ${extra.slice(0, 10).join(', ')}`);
  if (listed !== keys.size) problems.push(`listed ${listed} messages, expected ${keys.size}`);
  // total is the session's message_count (API.md: never a count over the
  // messages), moved when seqs are reserved, before the insert: a writer
  // killed in between leaves it higher by what it reserved, until the
  // sweeper recounts the session.  Never lower, and never higher than
  // what was in flight on the killed host.
  if (total < listed || total > listed + res.failedPosts.length)
    problems.push(`list total ${total}: ${listed} messages, ${res.failedPosts.length} in flight at the kill`);

  // The session's message_count is moved when seqs are reserved, before the
  // insert: report it next to the real count (a writer killed in between
  // leaves it higher).
  const s = parse((await call('GET', '')).text);
  console.log(JSON.stringify({
    messages: listed,
    total,
    keys: keys.size,
    retried: res.failedPosts.length,
    replayed,
    createdOnRetry,
    message_count: s ? s.message_count : null,
    problems,
  }));
  process.exit(problems.length ? 1 : 0);
}

if (opt._ === 'load') await load();
else if (opt._ === 'verify') await verify();
else {
  console.error('usage: multihost-load.mjs load|verify --url U --token T --session S ...');
  process.exit(2);
}
