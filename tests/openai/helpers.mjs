// Shared by the tests: where parley is, tokens, and the clients as a user
// of OpenAI's SDKs would make them (only baseURL and apiKey differ).
// tests/openai.sh starts parley and nginx and sets the variables.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import OpenAI from 'openai';

export const URL = process.env.PARLEY_URL;
const BIN = process.env.PARLEY_BIN;
const CONFIG = process.env.PARLEY_CONFIG;
if (!URL || !BIN || !CONFIG) {
  throw new Error('PARLEY_URL, PARLEY_BIN and PARLEY_CONFIG must be set (tests/openai.sh sets them)');
}

/** A token for user `sub`, made by `parley token`. */
export function mintToken(sub) {
  return execFileSync(BIN, ['token', '--sub', sub, '-c', CONFIG], { encoding: 'utf8' }).trim();
}

/** A token for a new user of its own. */
export function newUser(prefix = 'sdk') {
  const sub = `${prefix}-${randomUUID()}`;
  return { sub, token: mintToken(sub) };
}

/** The official client, pointed at parley's /v1 with a parley token. */
export function client(token, options = {}) {
  return new OpenAI({ baseURL: `${URL}/v1`, apiKey: token, ...options });
}

/**
 * A fetch that records every request parley answered ("METHOD path?query"):
 * one that nginx's rate limit turned away (429, which the clients retry)
 * is not counted, so that counts are parley's requests.
 */
export function countingFetch() {
  const calls = [];
  const f = async (url, init = {}) => {
    const u = new globalThis.URL(String(url));
    const res = await fetch(url, init);
    if (res.status !== 429) calls.push(`${init.method ?? 'GET'} ${u.pathname}${u.search}`);
    return res;
  };
  f.calls = calls;
  return f;
}

/** One call to parley's native API; resolves to {status, body, headers}. */
export async function api(token, method, path, body) {
  const headers = { Authorization: `Bearer ${token}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(URL + path, init);
  const text = await res.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** Everything an async iterable yields. */
export async function collect(iterable) {
  const out = [];
  for await (const x of iterable) out.push(x);
  return out;
}
