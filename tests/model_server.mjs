// tests/model_server.mjs — an OpenAI-compatible model server that answers
// from a script, for the tests (no real model runs here).  Node 20, only
// node's own modules.
//
//   node tests/model_server.mjs [--host 127.0.0.1] [--port 0]
//                               [--tls-cert FILE --tls-key FILE]
//
// Prints one line, `model_server ready http://127.0.0.1:PORT` (https with
// TLS), on stdout once it listens; the base URL a client wants is that plus
// "/v1".  Logs go to stderr.  SIGTERM and SIGINT stop it.
//
// Model endpoints: POST to any path ending in /chat/completions (so any
// base URL prefix works: /v1/chat/completions, /chat/completions, ...; a
// proxy's absolute-form target too), and GET .../models.  Each chat request
// is recorded, then answered with the next reply of the script's queue, or
// with the script's `default` reply when the queue is empty, or with a 500
// "no scripted reply" when there is neither.
//
// Control endpoints (plain HTTP on the same port):
//   POST /_script    {"replies": [REPLY...], "default": REPLY}  appends the
//                    replies to the queue; sets the default when given
//                    (null clears it).  A bare JSON array is {"replies": it}.
//   GET  /_requests  every chat request recorded since the last reset, in
//                    arrival order: {"method", "url", "path", "headers" (names
//                    lower-case), "remote_port" (the client's, to tell
//                    connections apart), "body" (parsed JSON, or null),
//                    "body_text" (when not JSON), "outcome"}.  outcome is "pending" while
//                    the reply is being sent, then "completed", "cut" (the
//                    script cut it) or "client_closed" (the client went away
//                    first).
//   GET  /_state     {"queued": n, "active": n, "requests": n}
//   POST /_reset     empties the queue, the default and the record.
//
// A REPLY (every member optional):
//   status          HTTP status, default 200.  Not 2xx: the body is
//                   {"error": error} (or `body` when given).
//   error           {"message", "type", "code"} for an error status;
//                   default {"message": "scripted error", "type": "server_error"}.
//   retry_after     value of a Retry-After header (string or number).
//   headers         more response headers, {"name": "value"}.
//   body            the raw response body, sent as is (with content_type,
//                   default application/json).
//   delay_ms        wait before sending the status line and headers.
//   content         the assistant's text; tool_calls: [{"id", "name",
//                   "arguments"}]; finish_reason (default "tool_calls" when
//                   there are tool calls, else "stop"); usage:
//                   {"prompt_tokens", "completion_tokens"} (omitted when
//                   not given); model (default: the request's).
//   stream          true/false answers SSE/JSON whatever the request asked;
//                   default: what the request asked ("stream": true).
//   times           the reply answers this many requests (default 1).
//  Streamed replies (text/event-stream), built from the above:
//   chunks          the content's pieces; default: content cut into pieces
//                   of chunk_size (default 4) characters.
//   args_chunk_size tool-call arguments are sent in pieces of this many
//                   characters (default 8).
//   chunk_delay_ms  wait between two events.
//   events          instead of the built events: each item is a string (an
//                   event's text, "\n\n" is added), {"data": JSON value}
//                   (sent as `data: <JSON>`), {"raw": "..."} (written
//                   exactly as given) or {"sleep_ms": n}.
//   cut_after       destroy the connection after this many events (no
//                   [DONE], no end of the chunked body).
//   never_end       after the built events but before the finish, send a
//                   content piece "x" every chunk_delay_ms (default 50)
//                   until the client goes away.
//  The built events are: a first chunk with role "assistant" and content
//  "", one per content piece, one per tool-call fragment (the first of each
//  call carries its index, id, type and name with empty arguments; then the
//  arguments' pieces), one with finish_reason, one with usage and empty
//  choices when usage is given and the request asked for it
//  (stream_options.include_usage), then `data: [DONE]`.
import { createServer as createHttp } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { readFileSync } from 'node:fs';

const MAX_BODY = 64 * 1024 * 1024;

function parseArgs(argv) {
  const o = { host: '127.0.0.1', port: '0' };
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i];
    if (!k.startsWith('--') || i + 1 >= argv.length) {
      throw new Error(`model_server: bad argument ${k}`);
    }
    o[k.slice(2)] = argv[i + 1];
  }
  return o;
}

const opts = parseArgs(process.argv.slice(2));

let queue = [];
let fallback = null;
let record = [];
let active = 0;
let serial = 0;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function sendJson(res, status, value, extra = {}) {
  const text = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...extra,
  });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    let n = 0;
    req.on('data', (c) => {
      n += c.length;
      if (n > MAX_BODY) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      parts.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

function nextReply() {
  while (queue.length > 0) {
    const r = queue[0];
    const times = r.times ?? 1;
    if (times <= 1) {
      queue.shift();
    } else {
      r.times = times - 1;
    }
    return r;
  }
  return fallback;
}

function pieces(text, size) {
  const chars = Array.from(text); // code points: never split one
  const out = [];
  for (let i = 0; i < chars.length; i += size) {
    out.push(chars.slice(i, i + size).join(''));
  }
  return out;
}

function chunk(id, model, created, choices, usage) {
  const c = { id, object: 'chat.completion.chunk', created, model, choices };
  if (usage !== undefined) c.usage = usage;
  return c;
}

function usageOf(r) {
  if (!r.usage) return undefined;
  const p = r.usage.prompt_tokens ?? 0;
  const q = r.usage.completion_tokens ?? 0;
  return { prompt_tokens: p, completion_tokens: q, total_tokens: p + q, ...r.usage };
}

function finishOf(r) {
  if (r.finish_reason !== undefined) return r.finish_reason;
  return r.tool_calls && r.tool_calls.length > 0 ? 'tool_calls' : 'stop';
}

// The events of a streamed reply, as {data} / {raw} / {sleep_ms} items.
function buildEvents(r, body, id, model, created) {
  if (r.events) {
    return r.events.map((e) => (typeof e === 'string' ? { raw: `${e}\n\n` } : e));
  }
  const ev = [];
  const one = (delta, finish = null) =>
    ev.push({ data: chunk(id, model, created, [{ index: 0, delta, logprobs: null, finish_reason: finish }]) });
  one({ role: 'assistant', content: '' });
  const content = r.content ?? '';
  const parts = r.chunks ?? (content === '' ? [] : pieces(content, r.chunk_size ?? 4));
  for (const p of parts) one({ content: p });
  (r.tool_calls ?? []).forEach((t, i) => {
    one({
      tool_calls: [{ index: i, id: t.id, type: 'function', function: { name: t.name, arguments: '' } }],
    });
    for (const a of pieces(t.arguments ?? '', r.args_chunk_size ?? 8)) {
      one({ tool_calls: [{ index: i, function: { arguments: a } }] });
    }
  });
  ev.push({ never_end: true });
  one({}, finishOf(r));
  const wantUsage = body && body.stream_options && body.stream_options.include_usage;
  if (wantUsage && r.usage) {
    ev.push({ data: chunk(id, model, created, [], usageOf(r)) });
  }
  ev.push({ raw: 'data: [DONE]\n\n' });
  return ev;
}

function write(res, text) {
  return new Promise((resolve) => {
    if (res.destroyed || res.writableEnded) {
      resolve(false);
      return;
    }
    res.write(text, () => resolve(true));
  });
}

async function streamReply(req, res, r, body, entry, id, model, created) {
  res.writeHead(r.status ?? 200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    ...(r.headers ?? {}),
  });
  const events = buildEvents(r, body, id, model, created);
  const gap = r.chunk_delay_ms ?? 0;
  let sent = 0;
  for (const e of events) {
    if (entry.outcome === 'client_closed') return;
    if (e.never_end) {
      if (!r.never_end) continue;
      const every = r.chunk_delay_ms ?? 50;
      while (entry.outcome !== 'client_closed') {
        const c = chunk(id, model, created, [{ index: 0, delta: { content: 'x' }, finish_reason: null }]);
        await write(res, `data: ${JSON.stringify(c)}\n\n`);
        await sleep(every);
      }
      return;
    }
    if (e.sleep_ms !== undefined) {
      await sleep(e.sleep_ms);
      continue;
    }
    if (r.cut_after !== undefined && sent >= r.cut_after) {
      entry.outcome = 'cut';
      res.destroy();
      return;
    }
    if (sent > 0 && gap > 0) await sleep(gap);
    const text = e.raw !== undefined ? e.raw : `data: ${JSON.stringify(e.data)}\n\n`;
    await write(res, text);
    sent++;
  }
  if (r.cut_after !== undefined && sent >= r.cut_after) {
    entry.outcome = 'cut';
    res.destroy();
    return;
  }
  res.end();
}

function plainReply(res, r, id, model, created) {
  const message = { role: 'assistant', content: r.content ?? null };
  if (r.tool_calls && r.tool_calls.length > 0) {
    message.tool_calls = r.tool_calls.map((t) => ({
      id: t.id,
      type: 'function',
      function: { name: t.name, arguments: t.arguments ?? '' },
    }));
  }
  const reply = {
    id,
    object: 'chat.completion',
    created,
    model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finishOf(r) }],
  };
  const u = usageOf(r);
  if (u) reply.usage = u;
  sendJson(res, r.status ?? 200, reply, r.headers ?? {});
}

async function chat(req, res, url) {
  const text = await readBody(req);
  let body = null;
  const entry = {
    method: req.method,
    url: req.url,
    path: url.pathname,
    headers: req.headers,
    remote_port: req.socket.remotePort,
    body: null,
    outcome: 'pending',
  };
  try {
    body = JSON.parse(text);
    entry.body = body;
  } catch {
    entry.body_text = text;
  }
  record.push(entry);
  active++;
  res.on('close', () => {
    active--;
    if (entry.outcome === 'pending') {
      entry.outcome = res.writableFinished ? 'completed' : 'client_closed';
    }
  });

  const r = nextReply();
  if (r === null) {
    sendJson(res, 500, { error: { message: 'no scripted reply', type: 'server_error' } });
    return;
  }
  if (r.delay_ms) {
    await sleep(r.delay_ms);
    if (entry.outcome !== 'pending') return;
  }
  const status = r.status ?? 200;
  const extra = { ...(r.headers ?? {}) };
  if (r.retry_after !== undefined) extra['retry-after'] = String(r.retry_after);
  if (r.body !== undefined) {
    res.writeHead(status, { 'content-type': r.content_type ?? 'application/json', ...extra });
    res.end(r.body);
    return;
  }
  if (status < 200 || status > 299) {
    const error = r.error ?? { message: 'scripted error', type: 'server_error' };
    sendJson(res, status, { error }, extra);
    return;
  }
  serial++;
  const id = `chatcmpl-${serial}`;
  const model = r.model ?? (body && body.model) ?? 'test-model';
  const created = Math.floor(Date.now() / 1000);
  const stream = r.stream ?? Boolean(body && body.stream);
  r.headers = extra;
  if (stream) {
    await streamReply(req, res, r, body, entry, id, model, created);
  } else {
    plainReply(res, r, id, model, created);
  }
}

async function control(req, res, url) {
  if (req.method === 'POST' && url.pathname === '/_script') {
    let s;
    try {
      s = JSON.parse(await readBody(req));
    } catch (e) {
      sendJson(res, 400, { error: { message: `bad script: ${e.message}` } });
      return;
    }
    if (Array.isArray(s)) s = { replies: s };
    for (const r of s.replies ?? []) queue.push({ ...r });
    if (s.default !== undefined) fallback = s.default;
    sendJson(res, 200, { queued: queue.length });
    return;
  }
  if (req.method === 'GET' && url.pathname === '/_requests') {
    sendJson(res, 200, record);
    return;
  }
  if (req.method === 'GET' && url.pathname === '/_state') {
    sendJson(res, 200, { queued: queue.length, active, requests: record.length });
    return;
  }
  if (req.method === 'POST' && url.pathname === '/_reset') {
    await readBody(req);
    queue = [];
    fallback = null;
    record = [];
    sendJson(res, 200, { reset: true });
    return;
  }
  sendJson(res, 404, { error: { message: 'no such control endpoint' } });
}

async function handle(req, res) {
  // A proxy's request carries an absolute URL; a server's, a path.
  const url = new URL(req.url, 'http://model.invalid');
  if (url.pathname.startsWith('/_')) {
    await control(req, res, url);
    return;
  }
  if (url.pathname.endsWith('/chat/completions')) {
    if (req.method !== 'POST') {
      sendJson(res, 405, { error: { message: 'use POST', type: 'invalid_request_error' } });
      return;
    }
    await chat(req, res, url);
    return;
  }
  if (req.method === 'GET' && url.pathname.endsWith('/models')) {
    sendJson(res, 200, { object: 'list', data: [{ id: 'test-model', object: 'model', owned_by: 'parley-tests' }] });
    return;
  }
  sendJson(res, 404, { error: { message: `no route ${url.pathname}`, type: 'invalid_request_error' } });
}

function onRequest(req, res) {
  handle(req, res).catch((e) => {
    process.stderr.write(`model_server: ${e.stack}\n`);
    if (!res.headersSent) {
      sendJson(res, 500, { error: { message: 'model_server failed' } });
    } else {
      res.destroy();
    }
  });
}

const tls = opts['tls-cert'] !== undefined;
const server = tls
  ? createHttps({ cert: readFileSync(opts['tls-cert']), key: readFileSync(opts['tls-key']) }, onRequest)
  : createHttp(onRequest);
server.keepAliveTimeout = 30000;
server.headersTimeout = 60000;
server.requestTimeout = 0;
server.listen(Number(opts.port), opts.host, () => {
  const { port } = server.address();
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  process.stdout.write(`model_server ready ${tls ? 'https' : 'http'}://${host}:${port}\n`);
});
const stop = () => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
