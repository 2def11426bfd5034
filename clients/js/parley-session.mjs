// parley-session.mjs — an OpenAI Agents SDK `Session` kept in parley,
// through parley's native API (/api/agent-sessions).
//
//   import { ParleySession } from './parley-session.mjs';
//   const session = new ParleySession({ baseURL: 'https://parley.example',
//                                       token: process.env.PARLEY_TOKEN });
//   await run(agent, 'What is the weather in Paris?', { session });
//
// What it adds over OpenAIConversationsSession on parley's /v1:
//   - addItems is idempotent: every item gets a client_message_id derived
//     from the session, where the call appends, the call's items and the
//     item's position among them, so a call that is sent again (by this
//     class's own retries, or by the caller after an error) stores nothing
//     twice;
//   - parley's extras: the session object and its status, the session's
//     key-value memory, and /context (the newest items within a token budget).
//
// How items are stored, one parley message per item:
//   message (user, system, developer, assistant) → a message of that role
//   function_call        → an assistant message with tool_call_id = callId,
//                          tool_name = name, content = arguments
//   function_call_result → a tool message with tool_call_id = callId,
//                          tool_name = name, content = the output's text
//   any other item       → an assistant message with empty content
// `content` holds the item's text (the text parts of a message joined with
// "\n"), so that parley's search, /context and its model backend see it;
// `extra_data.agents_sdk` holds the item itself with that text cut out, and
// where each piece goes back, so getItems returns exactly what was added.
// Messages written by other clients (no extra_data.agents_sdk) are read as
// the nearest items: string content, a function_call for an assistant
// message with a tool_call_id (or one per extra_data.tool_calls[] entry),
// a function_call_result for a tool message.
//
// Needs fetch and crypto.subtle (Node 20 or later, or a browser); depends on
// nothing else at run time.

const API = '/api/agent-sessions';
const MESSAGE_ROLES = new Set(['user', 'system', 'developer', 'assistant']);
const RETRY_STATUSES = new Set([429, 502, 503, 504]);
const KEY_PREFIX = 'pa1-';

/** An error answer from parley (or no answer at all: status 0). */
export class ParleyError extends Error {
  constructor(message, { status = 0, code = null, param = null, body, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'ParleyError';
    /** HTTP status; 0 when parley could not be reached. */
    this.status = status;
    /** parley's error code, e.g. `not_found`, `validation_error`. */
    this.code = code;
    /** The offending field, when parley names one. */
    this.param = param;
    /** The parsed error body. */
    this.body = body;
  }
}

/**
 * A `Session` (`@openai/agents-core`) whose items live in one parley session.
 *
 * Options:
 * - `baseURL`   parley's address, without /api (e.g. `https://parley.example`).
 * - `token`     the parley JWT, or a function returning one (called for
 *               every request, so it can refresh).
 * - `sessionId` the parley `session_id` to use; made lazily (with `session`'s
 *               fields) if it does not exist. Default: a new random UUID.
 * - `session`   fields for the session when this class creates it:
 *               `session_name`, `description`, `agent_name`,
 *               `agent_instructions`, `metadata`.
 * - `maxRetries` times a request is sent again after a network error, 429,
 *               502, 503 or 504 (default 2); `Retry-After` is honoured.
 * - `timeoutMs` per request (default 30 000).
 * - `batchSize` messages per append request, 1–100 (default 20). parley
 *               makes a few database calls per keyed message, more to
 *               replay one, and a request must end by its deadline (4 s
 *               by default), retries included.
 * - `fetch`     the fetch function to use (default: the global one).
 *
 * Methods run one at a time per instance, in call order.
 */
export class ParleySession {
  #baseURL;
  #token;
  #sessionId;
  #sessionFields;
  #fetch;
  #maxRetries;
  #timeoutMs;
  #batchSize;
  #ready = false; // the session exists (made or found by this instance)
  #anchor; // seq of the newest message when the next addItems starts
  #queue = Promise.resolve();

  constructor({
    baseURL,
    token,
    sessionId,
    session = {},
    maxRetries = 2,
    timeoutMs = 30000,
    batchSize = 20,
    fetch: fetchFn = globalThis.fetch,
  } = {}) {
    if (typeof baseURL !== 'string' || baseURL === '') {
      throw new TypeError('ParleySession: baseURL is required');
    }
    if (token === undefined || token === null || token === '') {
      throw new TypeError('ParleySession: token is required');
    }
    this.#baseURL = baseURL.replace(/\/+$/, '');
    this.#token = token;
    this.#sessionId = sessionId ?? globalThis.crypto.randomUUID();
    this.#sessionFields = { ...session };
    this.#fetch = fetchFn;
    this.#maxRetries = maxRetries;
    this.#timeoutMs = timeoutMs;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100) {
      throw new TypeError('ParleySession: batchSize is 1 to 100');
    }
    this.#batchSize = batchSize;
  }

  /** The parley `session_id` (known before the session is made). */
  get sessionId() {
    return this.#sessionId;
  }

  // --- the Session interface -------------------------------------------------

  /** Makes the session in parley if it does not exist yet; its `session_id`. */
  async getSessionId() {
    return this.#serial(async () => {
      await this.#ensure();
      return this.#sessionId;
    });
  }

  /**
   * The session's items, oldest first; with `limit`, the newest `limit` of
   * them (still oldest first). `limit <= 0` gives [] without a request.
   */
  async getItems(limit) {
    return this.#serial(async () => {
      if (limit !== undefined && limit <= 0) return [];
      await this.#ensure();
      return limit === undefined ? this.#allItems() : this.#newestItems(limit);
    });
  }

  /**
   * Appends items, in order, `batchSize` (20) per request. Idempotent:
   * sending the same items again after an error (whether or not the first
   * try was stored) stores them once. Each request is all or none.
   */
  async addItems(items) {
    return this.#serial(async () => {
      if (!Array.isArray(items)) throw new TypeError('addItems: items must be an array');
      if (items.length === 0) return;
      const messages = items.map(itemToMessage);
      await this.#ensure();
      if (this.#anchor === undefined) {
        const [newest] = await this.#page({ order: 'desc', limit: 1 });
        this.#anchor = newest ? newest.seq : 0;
      }
      const keys = await idempotencyKeys(this.#sessionId, this.#anchor, items);
      messages.forEach((m, i) => { m.client_message_id = keys[i]; });
      let newest = this.#anchor;
      for (let i = 0; i < messages.length; i += this.#batchSize) {
        const body = await this.#request('POST', this.#path('/messages'), {
          messages: messages.slice(i, i + this.#batchSize),
        });
        for (const m of body.items) newest = Math.max(newest, m.seq);
      }
      // Only once all of them are stored: a call that failed part way and
      // is made again derives the same keys.
      this.#anchor = newest;
    });
  }

  /**
   * Removes the newest message and returns its item (undefined when the
   * session is empty). A message written by another client that reads as
   * several items (an assistant message with several tool calls) is removed
   * whole; its last item is returned.
   */
  async popItem() {
    return this.#serial(async () => {
      await this.#ensure();
      const [newest] = await this.#page({ order: 'desc', limit: 1 });
      if (!newest) return undefined;
      await this.#request('DELETE', this.#path(`/messages/${encodeURIComponent(newest.id)}`),
        undefined, { missingOk: true });
      return messageToItems(newest).at(-1);
    });
  }

  /**
   * Deletes every message of the session. The session itself, its status,
   * metadata and memory stay (deleteSession() removes those too).
   */
  async clearSession() {
    return this.#serial(async () => {
      await this.#ensure();
      await this.#request('DELETE', this.#path('/clear-messages'));
    });
  }

  // --- parley's extras -------------------------------------------------------

  /** The parley session object (`status`, `message_count`, `metadata`, ...). */
  async getSession() {
    return this.#serial(async () => {
      await this.#ensure();
      return this.#request('GET', this.#path(''));
    });
  }

  /**
   * Changes the session's status: `active` or `inactive` (reversible), or
   * `completed`, `failed`, `expired` (ends it; completed and failed are
   * final). Appends to a session that is not active fail with status 409.
   * Returns the session object.
   */
  async setStatus(status) {
    return this.#serial(async () => {
      await this.#ensure();
      if (status === 'active') return this.#request('PUT', this.#path('/activate'));
      if (status === 'inactive') return this.#request('PUT', this.#path('/deactivate'));
      return this.#request('POST', this.#path('/end'), { status }, { retry: false });
    });
  }

  /** The value stored under memory key `key`, or undefined. */
  async getMemory(key) {
    return this.#serial(async () => {
      await this.#ensure();
      const body = await this.#request('GET', this.#path(`/memory/${encodeURIComponent(key)}`),
        undefined, { missingOk: true });
      return body === null ? undefined : body.value;
    });
  }

  /** Stores any JSON value under memory key `key` (1–128 chars of [A-Za-z0-9._:-]). */
  async setMemory(key, value) {
    return this.#serial(async () => {
      await this.#ensure();
      await this.#request('PUT', this.#path(`/memory/${encodeURIComponent(key)}`),
        value === undefined ? null : value);
    });
  }

  /** Removes memory key `key`; false when it was not set. */
  async deleteMemory(key) {
    return this.#serial(async () => {
      await this.#ensure();
      const body = await this.#request('DELETE', this.#path(`/memory/${encodeURIComponent(key)}`),
        undefined, { missingOk: true });
      return body !== null;
    });
  }

  /** The whole memory as an object, keys in ascending order. */
  async listMemory() {
    return this.#serial(async () => {
      await this.#ensure();
      const out = {};
      let after;
      for (;;) {
        // The first page at parley's default size, the next ones after the
        // last key of the one before.
        const q = after === undefined ? '' : `?${new URLSearchParams({ after, limit: '1000' })}`;
        const body = await this.#request('GET', this.#path(`/memory${q}`));
        Object.assign(out, body.items);
        if (!body.has_more || !body.next_after) return out;
        after = body.next_after;
      }
    });
  }

  /**
   * parley's context window as items: the newest unbroken run of messages
   * within `limit` messages and `maxTokens` tokens, with tool results whose
   * call fell outside it dropped. Useful as a `sessionInputCallback`'s
   * history for long sessions.
   */
  async getContextItems({ limit, maxTokens } = {}) {
    return this.#serial(async () => {
      await this.#ensure();
      const q = new URLSearchParams();
      if (limit !== undefined) q.set('limit', String(limit));
      if (maxTokens !== undefined) q.set('max_tokens', String(maxTokens));
      const body = await this.#request('GET', this.#path(`/context?${q}`));
      return body.items.flatMap(messageToItems);
    });
  }

  /** Deletes the session with its messages and memory. */
  async deleteSession() {
    return this.#serial(async () => {
      await this.#request('DELETE', this.#path(''), undefined, { missingOk: true });
      this.#ready = false;
      this.#anchor = undefined;
    });
  }

  // --- internals ---------------------------------------------------------------

  #serial(fn) {
    const result = this.#queue.then(fn);
    this.#queue = result.then(() => undefined, () => undefined);
    return result;
  }

  #path(rest) {
    return `${API}/${encodeURIComponent(this.#sessionId)}${rest}`;
  }

  // Creates the session, or finds it (if_exists: "return"): a retried
  // create makes no second session, since the client chose the session_id.
  async #ensure() {
    if (this.#ready) return;
    const { status } = await this.#request('POST', API, {
      ...this.#sessionFields,
      session_id: this.#sessionId,
      if_exists: 'return',
    }, { withStatus: true });
    // A session this instance made has no messages yet.
    if (status === 201) this.#anchor = 0;
    this.#ready = true;
  }

  async #page(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) q.set(k, String(v));
    const body = await this.#request('GET', this.#path(`/messages?${q}`));
    return body.items;
  }

  async #allItems() {
    const items = [];
    let after = 0;
    for (;;) {
      const q = new URLSearchParams({ order: 'asc', limit: '200', after_seq: String(after) });
      const body = await this.#request('GET', this.#path(`/messages?${q}`));
      for (const m of body.items) items.push(...messageToItems(m));
      if (!body.has_more || body.items.length === 0) return items;
      after = body.items.at(-1).seq;
    }
  }

  async #newestItems(limit) {
    const groups = [];
    let count = 0;
    let before;
    while (count < limit) {
      const q = new URLSearchParams({ order: 'desc', limit: String(Math.min(limit, 200)) });
      if (before !== undefined) q.set('before_seq', String(before));
      const body = await this.#request('GET', this.#path(`/messages?${q}`));
      for (const m of body.items) {
        const group = messageToItems(m);
        groups.push(group);
        count += group.length;
        if (count >= limit) break;
      }
      if (!body.has_more || body.items.length === 0) break;
      before = body.items.at(-1).seq;
    }
    return groups.reverse().flat().slice(-limit);
  }

  // One API call. Sent again after a network error, 429, 502, 503 or 504
  // (every call this class makes is safe to repeat). `missingOk`: a 404
  // answers null (what DELETE of something already gone answers).
  async #request(method, path, body, { retry = true, missingOk = false, withStatus = false } = {}) {
    const url = this.#baseURL + path;
    for (let attempt = 0; ; attempt++) {
      const token = typeof this.#token === 'function' ? await this.#token() : this.#token;
      const headers = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
      const init = { method, headers, signal: AbortSignal.timeout(this.#timeoutMs) };
      if (body !== undefined) {
        headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body);
      }
      let res;
      try {
        res = await this.#fetch(url, init);
      } catch (err) {
        if (retry && attempt < this.#maxRetries) {
          await sleep(backoff(attempt));
          continue;
        }
        throw new ParleyError(`${method} ${path}: ${err.message}`, { cause: err });
      }
      if (res.ok) {
        const out = res.status === 204 ? {} : await res.json();
        return withStatus ? { status: res.status, body: out } : out;
      }
      const text = await res.text();
      if (retry && attempt < this.#maxRetries && RETRY_STATUSES.has(res.status)) {
        await sleep(retryAfter(res) ?? backoff(attempt));
        continue;
      }
      // A repeated DELETE finds nothing left when the first one did it.
      if (res.status === 404 && missingOk) return null;
      let parsed;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      const e = parsed?.error ?? {};
      throw new ParleyError(`${res.status} ${e.message ?? res.statusText}`, {
        status: res.status, code: e.code ?? null, param: e.param ?? null, body: parsed,
      });
    }
  }
}

// --- items ⇄ messages ------------------------------------------------------------

/**
 * The parley message (role, content, tool_call_id, tool_name, extra_data)
 * that stores an Agents SDK item. Throws TypeError for what cannot be stored
 * as JSON or a message with a role parley does not have.
 */
export function itemToMessage(item) {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) {
    throw new TypeError('an item must be an object');
  }
  assertJSON(item, 'item');
  const type = item.type ?? (typeof item.role === 'string' ? 'message' : undefined);
  if (typeof type !== 'string') throw new TypeError('an item needs a type (or a role)');
  const msg = { role: 'assistant', content: '' };
  if (type === 'message') {
    if (!MESSAGE_ROLES.has(item.role)) {
      throw new TypeError(`a message's role must be user, system, developer or assistant (got ${JSON.stringify(item.role)})`);
    }
    msg.role = item.role;
  } else if (type === 'function_call') {
    msg.tool_call_id = item.callId ?? null;
    msg.tool_name = item.name ?? null;
  } else if (type === 'function_call_result') {
    msg.role = 'tool';
    msg.tool_call_id = item.callId ?? null;
    msg.tool_name = item.name ?? null;
  }
  const slots = textSlots(item, type);
  const stored = structuredClone(item);
  const text = [];
  for (const path of slots) {
    const value = getPath(item, path);
    text.push([path, value.length]);
    setPath(stored, path, '');
  }
  msg.content = slots.map((p) => getPath(item, p)).join('\n');
  msg.extra_data = { agents_sdk: { v: 1, item: stored, text } };
  return msg;
}

/**
 * The Agents SDK items a parley message stands for: the stored item itself
 * when the message was written by itemToMessage (and its content not
 * changed since), else the nearest items (see the top of this file).
 */
export function messageToItems(message) {
  const saved = message.extra_data?.agents_sdk;
  if (saved && saved.v === 1 && saved.item && Array.isArray(saved.text)) {
    const item = restoreText(saved.item, saved.text, message.content);
    if (item) return [item];
  }
  const content = message.content ?? '';
  switch (message.role) {
    case 'user':
    case 'system':
    case 'developer':
      return [{ type: 'message', role: message.role, content }];
    case 'tool':
      return [{
        type: 'function_call_result',
        callId: message.tool_call_id ?? '',
        name: message.tool_name ?? '',
        status: 'completed',
        output: content,
      }];
    case 'assistant': {
      if (message.tool_call_id) {
        return [{
          type: 'function_call',
          callId: message.tool_call_id,
          name: message.tool_name ?? '',
          arguments: content,
          status: 'completed',
        }];
      }
      const calls = Array.isArray(message.extra_data?.tool_calls) ? message.extra_data.tool_calls : [];
      const out = [];
      if (content !== '' || calls.length === 0) {
        out.push({
          type: 'message',
          role: 'assistant',
          status: 'completed',
          content: [{ type: 'output_text', text: content }],
        });
      }
      for (const c of calls) {
        out.push({
          type: 'function_call',
          callId: String(c?.id ?? ''),
          name: String(c?.function?.name ?? c?.name ?? ''),
          arguments: String(c?.function?.arguments ?? c?.arguments ?? ''),
          status: 'completed',
        });
      }
      return out;
    }
    default:
      return [];
  }
}

/**
 * The client_message_ids of the items of an addItems call that starts when
 * the session's newest message has seq `anchor`: a hash of the session, the
 * anchor, the call's items and the item's position among them.  The same
 * call made again derives the same keys; a later call (the anchor has moved
 * on) or another list of items derives new ones, even for equal items.
 */
export async function idempotencyKeys(sessionId, anchor, items) {
  const call = await sha256hex(canonicalJSON([sessionId, anchor, items]));
  return Promise.all(items.map(async (_, i) => KEY_PREFIX + await sha256hex(`${call}:${i}`)));
}

async function sha256hex(text) {
  const hash = await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, '0')).join('');
}

// The paths of the strings of an item that are its text.
function textSlots(item, type) {
  const slots = [];
  const parts = (base, list) => {
    if (!Array.isArray(list)) return;
    list.forEach((p, i) => {
      if (p === null || typeof p !== 'object') return;
      if (typeof p.text === 'string') slots.push([...base, i, 'text']);
      else if (p.type === 'refusal' && typeof p.refusal === 'string') slots.push([...base, i, 'refusal']);
    });
  };
  if (type === 'message') {
    if (typeof item.content === 'string') slots.push(['content']);
    else parts(['content'], item.content);
  } else if (type === 'function_call') {
    if (typeof item.arguments === 'string') slots.push(['arguments']);
  } else if (type === 'function_call_result') {
    const o = item.output;
    if (typeof o === 'string') slots.push(['output']);
    else if (Array.isArray(o)) parts(['output'], o);
    else if (o && typeof o === 'object' && typeof o.text === 'string') slots.push(['output', 'text']);
  }
  return slots;
}

// Puts the text back; null when `content` is not what itemToMessage made
// (someone changed the message since).
function restoreText(stored, text, content) {
  if (typeof content !== 'string') return null;
  const item = structuredClone(stored);
  let at = 0;
  for (let i = 0; i < text.length; i++) {
    const [path, len] = text[i];
    if (!Array.isArray(path) || !Number.isInteger(len) || at + len > content.length) return null;
    if (typeof getPath(item, path) !== 'string') return null;
    setPath(item, path, content.slice(at, at + len));
    at += len;
    if (i < text.length - 1) {
      if (content[at] !== '\n') return null;
      at += 1;
    }
  }
  return at === content.length ? item : null;
}

function getPath(obj, path) {
  let v = obj;
  for (const k of path) v = v?.[k];
  return v;
}

function setPath(obj, path, value) {
  let v = obj;
  for (const k of path.slice(0, -1)) v = v[k];
  v[path.at(-1)] = value;
}

function assertJSON(v, where) {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError(`${where} is not a finite number`);
    return;
  }
  if (typeof v !== 'object' || ArrayBuffer.isView(v) || v instanceof ArrayBuffer) {
    throw new TypeError(`${where} is not a JSON value (binary data must be base64 or a URL)`);
  }
  if (Array.isArray(v)) {
    v.forEach((x, i) => assertJSON(x, `${where}[${i}]`));
    return;
  }
  for (const [k, x] of Object.entries(v)) {
    if (x !== undefined) assertJSON(x, `${where}.${k}`);
  }
}

// JSON with object keys sorted, so equal items hash equally whatever the
// order their keys were written in.
function canonicalJSON(v) {
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : canonicalJSON(x))).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v).filter((k) => v[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJSON(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

function backoff(attempt) {
  return Math.min(250 * 2 ** attempt, 4000) * (0.75 + Math.random() / 2);
}

function retryAfter(res) {
  const s = Number(res.headers.get('retry-after'));
  return Number.isFinite(s) && s >= 0 ? Math.min(s, 10) * 1000 : undefined;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
