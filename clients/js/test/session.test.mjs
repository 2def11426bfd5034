// ParleySession against the real parley (through nginx): the Session
// interface, how items are stored as native messages, idempotent addItems,
// and parley's extras.  tests/openai.sh runs it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ParleySession, ParleyError, itemToMessage } from '../parley-session.mjs';
import { URL, api, newUser, countingFetch } from './helpers.mjs';

const enc = encodeURIComponent;

// One item of each kind the Agents SDK keeps in a session, in the shapes
// its runner produces (ids, providerData and all).
function mixedItems(tag = '') {
  return [
    { type: 'message', role: 'system', content: `You are terse.${tag}` },
    { type: 'message', role: 'user', content: `What is the weather in Paris?${tag}` },
    {
      type: 'message', role: 'user',
      content: [
        { type: 'input_text', text: 'and this picture' },
        { type: 'input_image', image: 'https://example.com/cloud.png', detail: 'low' },
        { type: 'input_text', text: 'line one\nline two' },
      ],
    },
    {
      type: 'reasoning', id: 'rs_0123456789abcdef',
      content: [{ type: 'input_text', text: 'The user wants the weather.' }],
      providerData: { encryptedContent: 'gAAAAABo-opaque' },
    },
    {
      type: 'function_call', id: 'fc_42', callId: 'call_weather_1', name: 'get_weather',
      arguments: '{"city":"Paris"}', status: 'completed', providerData: { model: 'gpt-test' },
    },
    {
      type: 'function_call_result', callId: 'call_weather_1', name: 'get_weather',
      status: 'completed', output: { type: 'text', text: '{"temp_c":21}' },
    },
    {
      type: 'message', role: 'assistant', id: 'msg_7', status: 'completed',
      content: [{ type: 'output_text', text: 'It is 21 °C in Paris.', providerData: { annotations: [] } }],
    },
    {
      type: 'message', role: 'assistant', status: 'completed',
      content: [{ type: 'refusal', refusal: 'I will not say that.' }],
    },
    { type: 'function_call_result', callId: 'call_2', name: 'lookup', status: 'completed', output: 'plain' },
    { type: 'hosted_tool_call', id: 'ws_1', name: 'web_search_call', status: 'completed', providerData: { type: 'web_search_call', action: { type: 'search', query: 'paris' } } },
  ];
}

function session(token, opts = {}) {
  return new ParleySession({ baseURL: URL, token, ...opts });
}

async function messages(token, sid) {
  const r = await api(token, 'GET', `/api/agent-sessions/${enc(sid)}/messages?limit=200`);
  assert.equal(r.status, 200);
  return r.body.items;
}

test('the session is made lazily, with the given fields, and getSessionId names it', async () => {
  const { token } = newUser();
  const f = countingFetch();
  const s = session(token, { fetch: f, session: { session_name: 'Trip', agent_name: 'Planner' } });
  assert.equal(f.calls.length, 0, 'the constructor sends nothing');
  assert.match(s.sessionId, /^[0-9a-f-]{36}$/);
  assert.equal(await s.getSessionId(), s.sessionId);
  assert.deepEqual(f.calls, ['POST /api/agent-sessions']);
  const r = await api(token, 'GET', `/api/agent-sessions/${s.sessionId}`);
  assert.equal(r.status, 200);
  assert.equal(r.body.session_name, 'Trip');
  assert.equal(r.body.agent_name, 'Planner');
  // A second call, and the other methods, do not create it again.
  await s.getSessionId();
  await s.getItems();
  assert.equal(f.calls.filter((c) => c === 'POST /api/agent-sessions').length, 1);
  assert.deepEqual(await s.getItems(0), []);
});

test('an existing session_id is used as it is', async () => {
  const { token } = newUser();
  const r = await api(token, 'POST', '/api/agent-sessions', { session_id: 'chat-2026', session_name: 'Mine' });
  assert.equal(r.status, 201);
  await api(token, 'POST', '/api/agent-sessions/chat-2026/messages', { role: 'user', content: 'hello' });
  const s = session(token, { sessionId: 'chat-2026', session: { session_name: 'Other' } });
  assert.deepEqual(await s.getItems(), [{ type: 'message', role: 'user', content: 'hello' }]);
  assert.equal((await s.getSession()).session_name, 'Mine');
});

test('getItems gives back exactly the items added; getItems(n) the newest n', async () => {
  const { token } = newUser();
  const s = session(token);
  const items = mixedItems();
  await s.addItems(items.slice(0, 4));
  await s.addItems(items.slice(4));
  assert.deepEqual(await s.getItems(), items);
  assert.deepEqual(await s.getItems(3), items.slice(-3));
  assert.deepEqual(await s.getItems(1), items.slice(-1));
  assert.deepEqual(await s.getItems(100), items);
  // Another instance on the same session reads the same.
  assert.deepEqual(await session(token, { sessionId: s.sessionId }).getItems(), items);
});

test('items are native messages: roles, text in content, tool calls paired by tool_call_id', async () => {
  const { token } = newUser();
  const s = session(token);
  const items = mixedItems();
  await s.addItems(items);
  const ms = await messages(token, s.sessionId);
  assert.deepEqual(ms.map((m) => m.role),
    ['system', 'user', 'user', 'assistant', 'assistant', 'tool', 'assistant', 'assistant', 'tool', 'assistant']);
  assert.deepEqual(ms.map((m) => m.content), [
    'You are terse.', 'What is the weather in Paris?', 'and this picture\nline one\nline two', '',
    '{"city":"Paris"}', '{"temp_c":21}', 'It is 21 °C in Paris.', 'I will not say that.', 'plain', '',
  ]);
  assert.equal(ms[4].tool_call_id, 'call_weather_1');
  assert.equal(ms[4].tool_name, 'get_weather');
  assert.equal(ms[5].tool_call_id, 'call_weather_1');
  assert.equal(ms[5].tool_name, 'get_weather');
  // parley's search sees the text.
  const found = await api(token, 'GET', `/api/agent-sessions/${s.sessionId}/messages?search=${enc('21 °C')}`);
  assert.deepEqual(found.body.items.map((m) => m.seq), [ms[6].seq]);

  // /context keeps a tool result whose call is in the window, and drops
  // one whose call is not.
  // (items[8] answers call_2, which is in no assistant message at all.)
  const withCall = await api(token, 'GET', `/api/agent-sessions/${s.sessionId}/context?limit=6`);
  assert.deepEqual(withCall.body.items.map((m) => m.seq), [4, 5, 6, 7, 9].map((i) => ms[i].seq));
  const cut = await api(token, 'GET', `/api/agent-sessions/${s.sessionId}/context?limit=5`);
  assert.deepEqual(cut.body.items.map((m) => m.seq), [ms[6].seq, ms[7].seq, ms[9].seq],
    'the tool results of calls outside the window are dropped');
  assert.deepEqual(await s.getContextItems({ limit: 6 }), [4, 5, 6, 7, 9].map((i) => items[i]));
});

test('text of any size lives in content; extra_data keeps only the rest of the item', async () => {
  const { token } = newUser();
  const s = session(token);
  const big = 'x'.repeat(200 * 1024) + '\n€';
  const items = [
    { type: 'message', role: 'user', content: big },
    { type: 'function_call_result', callId: 'c', name: 'fetch_page', status: 'completed', output: big },
  ];
  await s.addItems(items);
  assert.deepEqual(await s.getItems(), items);
  const [m] = await messages(token, s.sessionId);
  assert.ok(JSON.stringify(m.extra_data).length < 1024);
});

// A fetch that loses the answers of appends parley stored (2xx), as a
// connection dropped on the way back would: `drop` of them (Infinity: all),
// of those whose body `dropIf` accepts.  Other answers (a 503 under load,
// say) pass, and the class retries them as usual.
function lossyFetch() {
  const f = async (url, init) => {
    const res = await fetch(url, init);
    if (init.method === 'POST' && url.endsWith('/messages') && res.ok &&
        f.drop > 0 && f.dropIf(init.body)) {
      f.drop--;
      f.dropped++;
      await res.arrayBuffer();
      throw new TypeError('fetch failed (answer lost on the way back)');
    }
    return res;
  };
  f.drop = 0;
  f.dropped = 0;
  f.dropIf = () => true;
  return f;
}

test('addItems sent again after a lost answer stores nothing twice', async () => {
  const { token } = newUser();
  const lossy = lossyFetch();
  const s = session(token, { fetch: lossy }); // retries: 2
  const items = mixedItems();
  lossy.drop = Infinity;
  await assert.rejects(s.addItems(items), (e) => e instanceof ParleyError && e.status === 0);
  assert.equal(lossy.dropped, 3, 'sent three times (the class retried twice)');
  assert.equal((await messages(token, s.sessionId)).length, items.length, 'stored once');
  lossy.drop = 0;
  await s.addItems(items); // the caller's retry: the same batch again
  assert.equal((await messages(token, s.sessionId)).length, items.length);
  assert.deepEqual(await s.getItems(), items);

  // The class's own retry, without the caller seeing an error.
  lossy.drop = 1;
  const more = [{ type: 'message', role: 'user', content: 'and tomorrow?' }];
  const s2 = session(token, { sessionId: s.sessionId, fetch: lossy });
  await s2.addItems(more);
  assert.equal(lossy.dropped, 4);
  assert.deepEqual(await s2.getItems(), [...items, ...more]);
});

test('a long call goes in batches, and sent again stores each once', async () => {
  const { token } = newUser();
  const lossy = lossyFetch();
  const s = session(token, { fetch: lossy }); // batches of 20
  const items = Array.from({ length: 250 }, (_, i) => ({ type: 'message', role: 'user', content: `m${i}` }));
  lossy.drop = Infinity;
  lossy.dropIf = (body) => body.includes('"m100"'); // the sixth batch
  await assert.rejects(s.addItems(items));
  assert.equal((await s.getSession()).message_count, 120, 'six batches stored, the sixth one\'s answer lost');
  lossy.drop = 0;
  await s.addItems(items);
  assert.equal((await s.getSession()).message_count, 250);
  assert.deepEqual(await s.getItems(), items);
  assert.deepEqual(await s.getItems(120), items.slice(-120));
});

test('equal items added by later calls are stored again', async () => {
  const { token } = newUser();
  const s = session(token);
  const yes = [{ type: 'message', role: 'user', content: 'yes' }];
  await s.addItems(yes);
  await s.addItems(yes);
  assert.deepEqual(await s.getItems(), [...yes, ...yes]);
  // A new instance (say, the next process) on the same session too.
  await session(token, { sessionId: s.sessionId }).addItems(yes);
  assert.deepEqual(await s.getItems(), [...yes, ...yes, ...yes]);
  // And after popItem removed one.
  assert.deepEqual(await s.popItem(), yes[0]);
  await s.addItems(yes);
  assert.equal((await s.getItems()).length, 3);
});

test('popItem removes and returns the newest item; clearSession empties the session', async () => {
  const { token } = newUser();
  const s = session(token);
  assert.equal(await s.popItem(), undefined);
  const items = mixedItems();
  await s.addItems(items);
  assert.deepEqual(await s.popItem(), items.at(-1));
  assert.deepEqual(await s.popItem(), items.at(-2));
  assert.deepEqual(await s.getItems(), items.slice(0, -2));
  await s.setMemory('city', 'Paris');
  await s.clearSession();
  assert.deepEqual(await s.getItems(), []);
  const info = await s.getSession();
  assert.equal(info.message_count, 0);
  assert.equal(await s.getMemory('city'), 'Paris', 'clearSession keeps the memory');
  await s.addItems(items.slice(0, 2));
  assert.deepEqual(await s.getItems(), items.slice(0, 2));
  await s.deleteSession();
  const gone = await api(token, 'GET', `/api/agent-sessions/${s.sessionId}`);
  assert.equal(gone.status, 404);
});

test('messages written by other clients read as the nearest items', async () => {
  const { token } = newUser();
  const s = session(token);
  const sid = await s.getSessionId();
  const r = await api(token, 'POST', `/api/agent-sessions/${sid}/messages`, {
    messages: [
      { role: 'system', content: 'be kind' },
      { role: 'user', content: 'weather and time?' },
      {
        role: 'assistant', content: 'Let me look.',
        extra_data: {
          tool_calls: [
            { id: 'c1', type: 'function', function: { name: 'weather', arguments: '{}' } },
            { id: 'c2', type: 'function', function: { name: 'clock', arguments: '{"tz":"CET"}' } },
          ],
        },
      },
      { role: 'tool', content: 'sunny', tool_call_id: 'c1', tool_name: 'weather' },
      { role: 'assistant', content: '{"q":1}', tool_call_id: 'c3', tool_name: 'search' },
      { role: 'assistant', content: 'Sunny.' },
    ],
  });
  assert.equal(r.status, 201);
  assert.deepEqual(await s.getItems(), [
    { type: 'message', role: 'system', content: 'be kind' },
    { type: 'message', role: 'user', content: 'weather and time?' },
    { type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Let me look.' }] },
    { type: 'function_call', callId: 'c1', name: 'weather', arguments: '{}', status: 'completed' },
    { type: 'function_call', callId: 'c2', name: 'clock', arguments: '{"tz":"CET"}', status: 'completed' },
    { type: 'function_call_result', callId: 'c1', name: 'weather', status: 'completed', output: 'sunny' },
    { type: 'function_call', callId: 'c3', name: 'search', arguments: '{"q":1}', status: 'completed' },
    { type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Sunny.' }] },
  ]);
  // getItems(n) counts items, not messages.
  const last4 = await s.getItems(4);
  assert.equal(last4.length, 4);
  assert.equal(last4[0].callId, 'c2');

  // A message of ours whose content someone changed reads as the new text.
  await s.addItems([{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'old' }] }]);
  const ms = await messages(token, sid);
  const p = await api(token, 'PATCH', `/api/agent-sessions/${sid}/messages/${ms.at(-1).id}`, { content: 'new text' });
  assert.equal(p.status, 200);
  assert.deepEqual((await s.getItems(1))[0], { type: 'message', role: 'user', content: 'new text' });
});

test('status and memory: parley extras', async () => {
  const { token } = newUser();
  const s = session(token);
  assert.equal((await s.getSession()).status, 'active');
  assert.equal(await s.getMemory('nothing'), undefined);
  await s.setMemory('prefs', { units: 'metric', langs: ['fr', 'en'] });
  await s.setMemory('a.b:c-1', 42);
  assert.deepEqual(await s.getMemory('prefs'), { units: 'metric', langs: ['fr', 'en'] });
  assert.deepEqual(await s.listMemory(), { 'a.b:c-1': 42, prefs: { units: 'metric', langs: ['fr', 'en'] } });
  assert.equal(await s.deleteMemory('a.b:c-1'), true);
  assert.equal(await s.deleteMemory('a.b:c-1'), false);
  assert.deepEqual(Object.keys(await s.listMemory()), ['prefs']);

  const info = await s.setStatus('inactive');
  assert.equal(info.status, 'inactive');
  await assert.rejects(s.addItems([{ role: 'user', content: 'hi' }]),
    (e) => e instanceof ParleyError && e.status === 409);
  await s.setStatus('active');
  await s.addItems([{ role: 'user', content: 'hi' }]);
  assert.equal((await s.setStatus('completed')).status, 'completed');
  await assert.rejects(s.setStatus('active'), (e) => e.status === 409);
  await assert.rejects(s.popItem(), (e) => e.status === 409);
  assert.deepEqual(await s.getItems(), [{ role: 'user', content: 'hi' }]);
});

test('errors: a bad token, another user, what parley refuses', async () => {
  const a = newUser();
  const b = newUser();
  await assert.rejects(session('not-a-token').getItems(),
    (e) => e instanceof ParleyError && e.status === 401);
  const sa = session(a.token, { sessionId: 'shared-name' });
  await sa.addItems([{ role: 'user', content: 'secret of a' }]);
  // b's session of the same name is b's own: a's items are not there.
  const sb = session(b.token, { sessionId: 'shared-name' });
  assert.deepEqual(await sb.getItems(), []);
  await sb.addItems([{ role: 'user', content: 'b' }]);
  assert.deepEqual(await sa.getItems(), [{ role: 'user', content: 'secret of a' }]);
  // A bad session_id, an item parley cannot keep.
  await assert.rejects(session(a.token, { sessionId: 'no spaces' }).getItems(),
    (e) => e.status === 400 && e.param === 'session_id');
  await assert.rejects(sa.addItems([{ role: 'tool', content: 'x' }]), TypeError);
  await assert.rejects(sa.addItems([{ type: 'message', role: 'user', content: [{ type: 'input_file', file: new Uint8Array([1]) }] }]), TypeError);
  await assert.rejects(sa.addItems([{ content: 'no type' }]), TypeError);
  assert.equal((await sa.getItems()).length, 1, 'nothing stored by refused calls');
});

test('the message of an item is what the module says', () => {
  const m = itemToMessage({ type: 'function_call', callId: 'c9', name: 'f', arguments: '{}', status: 'completed' });
  assert.equal(m.role, 'assistant');
  assert.equal(m.tool_call_id, 'c9');
  assert.equal(m.tool_name, 'f');
  assert.equal(m.content, '{}');
  assert.deepEqual(m.extra_data, {
    agents_sdk: { v: 1, item: { type: 'function_call', callId: 'c9', name: 'f', arguments: '', status: 'completed' }, text: [[['arguments'], 2]] },
  });
});

// API.md lists the developer role; parley's C side adds it with issue 13.
test('needs the developer role (API.md): a developer message round-trips', async () => {
  const { token } = newUser();
  const s = session(token);
  const items = [
    { type: 'message', role: 'developer', content: 'Answer in French.' },
    { role: 'developer', content: [{ type: 'input_text', text: 'Be brief.' }] },
  ];
  await s.addItems(items);
  assert.deepEqual(await s.getItems(), items);
  assert.deepEqual((await messages(token, s.sessionId)).map((m) => m.role), ['developer', 'developer']);
});
