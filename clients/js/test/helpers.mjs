// Shared by the tests: where parley is and how to get a token for a user.
// tests/openai.sh starts parley and nginx and sets these variables.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';

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
export function newUser(prefix = 'js') {
  const sub = `${prefix}-${randomUUID()}`;
  return { sub, token: mintToken(sub) };
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
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

/**
 * A fetch that records the requests parley answered, by "METHOD path": one
 * that nginx's rate limit turned away (429, which the class retries) is not
 * counted.
 */
export function countingFetch() {
  const calls = [];
  const f = async (url, init = {}) => {
    const res = await fetch(url, init);
    if (res.status !== 429) calls.push(`${init.method ?? 'GET'} ${new globalThis.URL(url).pathname}`);
    return res;
  };
  f.calls = calls;
  return f;
}
