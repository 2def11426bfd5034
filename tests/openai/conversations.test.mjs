// The official `openai` client, unchanged, against parley's /v1: the
// Conversations API as API.md's "OpenAI-compatible conversations (/v1)"
// section and OPENAI.md describe it.  tests/openai.sh runs it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { api, client, collect, countingFetch, newUser } from './helpers.mjs';

const now = () => Math.floor(Date.now() / 1000);
const withoutId = ({ id, ...rest }) => rest;

// Items of every kind, as sent, and what each must come back as (less its
// id): content parts verbatim, string content as one part, `type` and
// `status: "completed"` filled in, other item types exactly as given.
const SENT = [
  {
    type: 'message', role: 'user',
    content: [
      { type: 'input_text', text: 'Hi there' },
      { type: 'input_image', image_url: 'https://example.com/a.png', detail: 'low' },
    ],
  },
  { role: 'user', content: 'plain string' },
  { type: 'message', role: 'system', content: 'Be brief.' },
  { type: 'message', role: 'developer', content: [{ type: 'input_text', text: 'Use metric units.' }] },
  { type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Hello!', annotations: [] }] },
  { role: 'assistant', content: 'Sure.' },
  { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
  { type: 'function_call_output', call_id: 'call_1', output: '{"temp_c":21}' },
  { type: 'function_call_output', call_id: 'call_2', output: [{ type: 'input_text', text: 'as parts' }] },
  {
    type: 'reasoning', id: 'rs_0a1b2c3d',
    summary: [{ type: 'summary_text', text: 'Looked up the weather.' }],
    encrypted_content: 'gAAAAB-opaque-blob',
  },
];
const EXPECTED = [
  {
    type: 'message', role: 'user', status: 'completed',
    content: [
      { type: 'input_text', text: 'Hi there' },
      { type: 'input_image', image_url: 'https://example.com/a.png', detail: 'low' },
    ],
  },
  { type: 'message', role: 'user', status: 'completed', content: [{ type: 'input_text', text: 'plain string' }] },
  { type: 'message', role: 'system', status: 'completed', content: [{ type: 'input_text', text: 'Be brief.' }] },
  { type: 'message', role: 'developer', status: 'completed', content: [{ type: 'input_text', text: 'Use metric units.' }] },
  { type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Hello!', annotations: [] }] },
  { type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Sure.', annotations: [] }] },
  { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}', status: 'completed' },
  { type: 'function_call_output', call_id: 'call_1', output: '{"temp_c":21}', status: 'completed' },
  { type: 'function_call_output', call_id: 'call_2', output: [{ type: 'input_text', text: 'as parts' }], status: 'completed' },
  {
    type: 'reasoning',
    summary: [{ type: 'summary_text', text: 'Looked up the weather.' }],
    encrypted_content: 'gAAAAB-opaque-blob',
  },
];

test('create, retrieve, update and delete a conversation', async () => {
  const { token } = newUser();
  const c = client(token);
  const conv = await c.conversations.create({ metadata: { topic: 'weather', lang: 'en' } });
  assert.match(conv.id, /^conv_[0-9a-f]{32}$/);
  assert.deepEqual(Object.keys(conv).sort(), ['created_at', 'id', 'metadata', 'object']);
  assert.equal(conv.object, 'conversation');
  assert.ok(Number.isInteger(conv.created_at), 'created_at is Unix seconds');
  assert.ok(Math.abs(conv.created_at - now()) < 300, `created_at ${conv.created_at} is now`);
  assert.deepEqual(conv.metadata, { topic: 'weather', lang: 'en' });

  assert.deepEqual(await c.conversations.retrieve(conv.id), conv);

  // POST /conversations/{id} replaces the metadata.
  const upd = await c.conversations.update(conv.id, { metadata: { topic: 'travel' } });
  assert.deepEqual(upd, { ...conv, metadata: { topic: 'travel' } });
  assert.deepEqual((await c.conversations.retrieve(conv.id)).metadata, { topic: 'travel' });
  assert.deepEqual((await c.conversations.update(conv.id, { metadata: null })).metadata, {});

  const del = await c.conversations.delete(conv.id);
  assert.deepEqual(del, { id: conv.id, object: 'conversation.deleted', deleted: true });
  await assert.rejects(c.conversations.retrieve(conv.id), OpenAI.NotFoundError);
  await assert.rejects(c.conversations.delete(conv.id), OpenAI.NotFoundError);

  const bare = await c.conversations.create();
  assert.deepEqual(bare.metadata, {});
  assert.notEqual(bare.id, conv.id);
});

test('items of every kind come back as they were sent, with nothing added', async () => {
  const { token } = newUser();
  const c = client(token);
  const conv = await c.conversations.create({ items: SENT.slice(0, 2) });
  const created = await c.conversations.items.create(conv.id, { items: SENT.slice(2) });
  assert.equal(created.object, 'list');
  assert.equal(created.has_more, false);
  assert.deepEqual(created.data.map(withoutId), EXPECTED.slice(2));
  assert.equal(created.first_id, created.data[0].id);
  assert.equal(created.last_id, created.data.at(-1).id);

  const all = await collect(c.conversations.items.list(conv.id, { order: 'asc' }));
  assert.deepEqual(all.map(withoutId), EXPECTED);
  assert.deepEqual(all.slice(2), created.data);
  for (const item of all) assert.equal(typeof item.id, 'string');
  assert.equal(new Set(all.map((i) => i.id)).size, all.length, 'ids are unique');
  assert.equal(all.at(-1).id, 'rs_0a1b2c3d', 'a reasoning item keeps the id the client gave');

  // include[] is accepted (and changes nothing here).
  const page = await c.conversations.items.list(conv.id, {
    order: 'asc', limit: 3, include: ['message.output_text.logprobs'],
  });
  assert.deepEqual(page.data, all.slice(0, 3));
});

test('250 items page both ways with for await and with after', async () => {
  const { token } = newUser();
  const f = countingFetch();
  const c = client(token, { fetch: f });
  const conv = await c.conversations.create();
  const texts = Array.from({ length: 250 }, (_, i) => `item ${i}`);
  for (let i = 0; i < texts.length; i += 100) {
    const batch = texts.slice(i, i + 100).map((t, j) =>
      ((i + j) % 2 ? { role: 'assistant', content: t } : { role: 'user', content: t }));
    const r = await c.conversations.items.create(conv.id, { items: batch });
    assert.equal(r.data.length, batch.length);
  }
  const text = (item) => item.content[0].text;

  // for await: the default page (20) and order (desc), then asc.
  let from = f.calls.length;
  const desc = await collect(c.conversations.items.list(conv.id));
  assert.deepEqual(desc.map(text), [...texts].reverse());
  assert.equal(f.calls.length - from, 13, '250 items are 13 pages of 20; the last says has_more: false');
  assert.ok(f.calls.slice(from + 1).every((u) => u.includes('after=')));
  from = f.calls.length;
  const asc = await collect(c.conversations.items.list(conv.id, { order: 'asc', limit: 100 }));
  assert.deepEqual(asc.map(text), texts);
  assert.equal(f.calls.length - from, 3);
  assert.deepEqual(asc.map((i) => i.id), desc.map((i) => i.id).reverse());

  // after, by hand, both ways, with the page object's own helpers too.
  for (const order of ['asc', 'desc']) {
    const want = order === 'asc' ? texts : [...texts].reverse();
    const got = [];
    let after;
    for (;;) {
      const p = await c.conversations.items.list(conv.id, { order, limit: 37, ...(after && { after }) });
      assert.ok(p.data.length <= 37);
      got.push(...p.data);
      assert.equal(p.last_id, p.data.at(-1).id);
      if (!p.has_more) break;
      after = p.last_id;
    }
    assert.deepEqual(got.map(text), want);
    let page = await c.conversations.items.list(conv.id, { order, limit: 100 });
    const viaHelpers = [...page.data];
    while (page.hasNextPage()) {
      page = await page.getNextPage();
      viaHelpers.push(...page.data);
    }
    assert.deepEqual(viaHelpers.map(text), want);
  }

  // after an item in the middle: the items after it in the order asked.
  const mid = asc[100].id;
  const next = await c.conversations.items.list(conv.id, { order: 'asc', after: mid, limit: 2 });
  assert.deepEqual(next.data.map(text), ['item 101', 'item 102']);
  assert.equal(next.has_more, true);
  const prev = await c.conversations.items.list(conv.id, { after: mid, limit: 2 });
  assert.deepEqual(prev.data.map(text), ['item 99', 'item 98']);
  const last = await c.conversations.items.list(conv.id, { order: 'asc', after: asc[248].id });
  assert.deepEqual(last.data.map(text), ['item 249']);
  assert.equal(last.has_more, false);
  const none = await c.conversations.items.list(conv.id, { order: 'asc', after: asc[249].id });
  assert.deepEqual(none.data, []);
  assert.equal(none.has_more, false);
});

test('retrieve and delete items', async () => {
  const { token } = newUser();
  const c = client(token);
  const conv = await c.conversations.create({ items: SENT });
  const all = await collect(c.conversations.items.list(conv.id, { order: 'asc' }));
  for (const item of all) {
    assert.deepEqual(await c.conversations.items.retrieve(item.id, { conversation_id: conv.id }), item);
  }
  const fcall = all.find((i) => i.type === 'function_call');
  const after = await c.conversations.items.delete(fcall.id, { conversation_id: conv.id });
  assert.deepEqual(after, await c.conversations.retrieve(conv.id), 'item delete answers the conversation');
  await assert.rejects(c.conversations.items.retrieve(fcall.id, { conversation_id: conv.id }), OpenAI.NotFoundError);
  await assert.rejects(c.conversations.items.delete(fcall.id, { conversation_id: conv.id }), OpenAI.NotFoundError);
  // The reasoning item, by the id the client gave it.
  await c.conversations.items.delete('rs_0a1b2c3d', { conversation_id: conv.id });
  const left = await collect(c.conversations.items.list(conv.id, { order: 'asc' }));
  assert.deepEqual(left, all.filter((i) => i.id !== fcall.id && i.id !== 'rs_0a1b2c3d'));
});

test("another user's conversation does not exist for you (NotFoundError)", async () => {
  const a = client(newUser().token);
  const b = client(newUser().token);
  const conv = await a.conversations.create({ items: [{ role: 'user', content: 'mine' }], metadata: { k: 'v' } });
  const [item] = (await a.conversations.items.list(conv.id)).data;
  const attempts = [
    () => b.conversations.retrieve(conv.id),
    () => b.conversations.update(conv.id, { metadata: { k: 'stolen' } }),
    () => b.conversations.delete(conv.id),
    () => b.conversations.items.list(conv.id),
    () => b.conversations.items.create(conv.id, { items: [{ role: 'user', content: 'theirs' }] }),
    () => b.conversations.items.retrieve(item.id, { conversation_id: conv.id }),
    () => b.conversations.items.delete(item.id, { conversation_id: conv.id }),
    () => b.conversations.retrieve('conv_00000000000000000000000000000000'),
  ];
  for (const attempt of attempts) {
    await assert.rejects(attempt(), (e) => {
      assert.ok(e instanceof OpenAI.NotFoundError, `${e.constructor.name}: ${e.message}`);
      assert.equal(e.status, 404);
      assert.equal(e.type, 'invalid_request_error');
      return true;
    });
  }
  assert.deepEqual((await a.conversations.retrieve(conv.id)).metadata, { k: 'v' });
  assert.deepEqual((await a.conversations.items.list(conv.id)).data, [item]);
});

test('bad input is a BadRequestError with OpenAI\'s error type', async () => {
  const { token } = newUser();
  const c = client(token);
  const conv = await c.conversations.create();
  const many = (n) => Array.from({ length: n }, (_, i) => ({ role: 'user', content: `m${i}` }));
  const bad = {
    'no items': () => c.conversations.items.create(conv.id, { items: [] }),
    '101 items': () => c.conversations.items.create(conv.id, { items: many(101) }),
    'a role parley does not have': () => c.conversations.items.create(conv.id, { items: [{ type: 'message', role: 'wizard', content: 'x' }] }),
    'a message without content': () => c.conversations.items.create(conv.id, { items: [{ type: 'message', role: 'user' }] }),
    'a function_call without arguments': () => c.conversations.items.create(conv.id, { items: [{ type: 'function_call', call_id: 'c', name: 'f' }] }),
    '17 metadata keys': () => c.conversations.create({ metadata: Object.fromEntries(many(17).map((m, i) => [`k${i}`, 'v'])) }),
    'a 65-char metadata key': () => c.conversations.update(conv.id, { metadata: { ['k'.repeat(65)]: 'v' } }),
    'a 513-char metadata value': () => c.conversations.update(conv.id, { metadata: { k: 'v'.repeat(513) } }),
    'a non-string metadata value': () => c.conversations.update(conv.id, { metadata: { k: 3 } }),
    'limit 0': () => c.conversations.items.list(conv.id, { limit: 0 }),
    'limit 101': () => c.conversations.items.list(conv.id, { limit: 101 }),
    'order sideways': () => c.conversations.items.list(conv.id, { order: 'sideways' }),
  };
  for (const [what, call] of Object.entries(bad)) {
    await assert.rejects(call(), (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError, `${what}: ${e.constructor.name}: ${e.message}`);
      assert.equal(e.type, 'invalid_request_error', what);
      return true;
    }, what);
  }
  // Nothing of it was stored, and the limits themselves are fine.
  assert.deepEqual((await c.conversations.items.list(conv.id)).data, []);
  assert.equal((await c.conversations.items.create(conv.id, { items: many(100) })).data.length, 100);
  const meta = Object.fromEntries(many(16).map((m, i) => [`${'k'.repeat(62)}${String(i).padStart(2, '0')}`, 'v'.repeat(512)]));
  assert.deepEqual((await c.conversations.update(conv.id, { metadata: meta })).metadata, meta);
  assert.equal((await c.conversations.items.list(conv.id, { limit: 100 })).data.length, 100);
});

test('a 409 is a ConflictError the client does not retry (x-should-retry: false)', async () => {
  const { token } = newUser();
  const f = countingFetch();
  const c = client(token, { fetch: f }); // maxRetries: the default, 2
  const conv = await c.conversations.create({ items: [{ role: 'user', content: 'hello' }] });
  // A session that is not active takes no writes (API.md, Messages).
  const r = await api(token, 'PUT', `/api/agent-sessions/${conv.id}/deactivate`);
  assert.equal(r.status, 200);
  const from = f.calls.length;
  await assert.rejects(c.conversations.items.create(conv.id, { items: [{ role: 'user', content: 'more' }] }), (e) => {
    assert.ok(e instanceof OpenAI.ConflictError, `${e.constructor.name}: ${e.message}`);
    assert.equal(e.status, 409);
    assert.equal(e.headers.get('x-should-retry'), 'false');
    assert.equal(typeof e.type, 'string');
    return true;
  });
  assert.equal(f.calls.length - from, 1, 'one request: the 409 was not retried');
  const items = await collect(c.conversations.items.list(conv.id));
  assert.equal(items.length, 1);
  const [item] = items;
  await assert.rejects(c.conversations.items.delete(item.id, { conversation_id: conv.id }), OpenAI.ConflictError);
  assert.equal(f.calls.length - from, 3, 'list, then one delete');
});

test('a bad token is an AuthenticationError', async () => {
  const { token } = newUser();
  const [head, body, sig] = token.split('.');
  const forged = `${head}.${body}.${sig.slice(0, -4)}${sig.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
  for (const key of ['not-a-jwt', forged]) {
    const f = countingFetch();
    const c = client(key, { fetch: f });
    await assert.rejects(c.conversations.create(), (e) => {
      assert.ok(e instanceof OpenAI.AuthenticationError, `${e.constructor.name}: ${e.message}`);
      assert.equal(e.status, 401);
      assert.equal(typeof e.type, 'string');
      return true;
    });
    await assert.rejects(c.conversations.retrieve('conv_00000000000000000000000000000000'), OpenAI.AuthenticationError);
    assert.equal(f.calls.length, 2);
  }
});
