// One store: a conversation made through /v1 is a parley session (seen,
// paired and deleted through /api), and a session made through /api reads
// through /v1 and through OpenAIConversationsSession.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { OpenAIConversationsSession } from '@openai/agents';
import { api, client, collect, newUser } from './helpers.mjs';

const enc = encodeURIComponent;

test('a conversation made through /v1 is a session under /api', async () => {
  const { token } = newUser();
  const c = client(token);
  const conv = await c.conversations.create({
    metadata: { topic: 'weather' },
    items: [
      { role: 'user', content: 'What is the weather in Paris?' },
      { type: 'function_call', call_id: 'call_9', name: 'get_weather', arguments: '{"city":"Paris"}' },
      { type: 'function_call_output', call_id: 'call_9', output: '{"temp_c":21}' },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'It is 21 °C.', annotations: [] }] },
      { type: 'message', role: 'developer', content: 'Answer in French next time.' },
    ],
  });
  const s = await api(token, 'GET', `/api/agent-sessions/${conv.id}`);
  assert.equal(s.status, 200);
  assert.equal(s.body.session_id, conv.id);
  assert.equal(s.body.status, 'active');
  assert.equal(s.body.message_count, 5);
  assert.deepEqual(s.body.metadata, { topic: 'weather' });
  assert.equal(Math.floor(Date.parse(s.body.created_at) / 1000), conv.created_at);

  const list = await api(token, 'GET', '/api/agent-sessions?limit=200');
  assert.ok(list.body.items.some((x) => x.session_id === conv.id), 'listed with the others');

  // Items are messages: a call is an assistant message with tool_call_id and
  // tool_name, its output a tool message; the text is the content.
  const ms = (await api(token, 'GET', `/api/agent-sessions/${conv.id}/messages`)).body.items;
  assert.deepEqual(ms.map((m) => [m.role, m.tool_call_id]), [
    ['user', null],
    ['assistant', 'call_9'],
    ['tool', 'call_9'],
    ['assistant', null],
    ['developer', null],
  ]);
  assert.equal(ms[1].tool_name, 'get_weather');
  assert.equal(ms[0].content, 'What is the weather in Paris?');
  assert.equal(ms[2].content, '{"temp_c":21}');
  assert.equal(ms[3].content, 'It is 21 °C.');
  const found = await api(token, 'GET', `/api/agent-sessions/${conv.id}/messages?search=${enc('weather in paris')}`);
  assert.deepEqual(found.body.items.map((m) => m.seq), [ms[0].seq]);

  // /context pairs the output with its call, and drops it without the call.
  const both = await api(token, 'GET', `/api/agent-sessions/${conv.id}/context?limit=4`);
  assert.deepEqual(both.body.items.map((m) => m.seq), ms.slice(1).map((m) => m.seq));
  const cut = await api(token, 'GET', `/api/agent-sessions/${conv.id}/context?limit=3`);
  assert.deepEqual(cut.body.items.map((m) => m.seq), [ms[3].seq, ms[4].seq]);

  // Exported like any session.
  const exp = await api(token, 'GET', `/api/agent-sessions/${conv.id}/export?format=json`);
  assert.equal(exp.status, 200);
  assert.equal(exp.body.messages.length, 5);

  // Written through /api, read through /v1; deleted through /api, gone in /v1.
  const add = await api(token, 'POST', `/api/agent-sessions/${conv.id}/messages`, { role: 'user', content: 'merci' });
  assert.equal(add.status, 201);
  const items = await collect(c.conversations.items.list(conv.id, { order: 'asc' }));
  assert.equal(items.length, 6);
  assert.deepEqual(items[5].content, [{ type: 'input_text', text: 'merci' }]);
  assert.equal((await api(token, 'DELETE', `/api/agent-sessions/${conv.id}`)).status, 204);
  await assert.rejects(c.conversations.retrieve(conv.id), OpenAI.NotFoundError);
});

test('a session made through /api reads through /v1', async () => {
  const { token } = newUser();
  const r = await api(token, 'POST', '/api/agent-sessions', {
    session_id: 'native-chat.1',
    metadata: { source: 'web', n: 3, nested: { a: 1 } },
  });
  assert.equal(r.status, 201);
  const m = await api(token, 'POST', '/api/agent-sessions/native-chat.1/messages', {
    messages: [
      { role: 'system', content: 'Be kind.' },
      { role: 'user', content: 'Hello' },
      { role: 'assistant', content: 'Hi! How can I help?' },
    ],
  });
  assert.equal(m.status, 201);

  const c = client(token);
  const conv = await c.conversations.retrieve('native-chat.1');
  assert.deepEqual(conv, {
    id: 'native-chat.1',
    object: 'conversation',
    created_at: Math.floor(Date.parse(r.body.created_at) / 1000),
    // Non-string values are shown as their JSON text.
    metadata: { source: 'web', n: '3', nested: '{"a":1}' },
  });

  // String content is shown as one part.
  const items = await collect(c.conversations.items.list('native-chat.1', { order: 'asc' }));
  assert.deepEqual(items.map(({ id, ...rest }) => rest), [
    { type: 'message', role: 'system', status: 'completed', content: [{ type: 'input_text', text: 'Be kind.' }] },
    { type: 'message', role: 'user', status: 'completed', content: [{ type: 'input_text', text: 'Hello' }] },
    {
      type: 'message', role: 'assistant', status: 'completed',
      content: [{ type: 'output_text', text: 'Hi! How can I help?', annotations: [] }],
    },
  ]);
  assert.deepEqual(await c.conversations.items.retrieve(items[1].id, { conversation_id: 'native-chat.1' }), items[1]);

  // The Agents SDK reads it too, and appends to it.
  const session = new OpenAIConversationsSession({ client: c, conversationId: 'native-chat.1' });
  const got = await session.getItems();
  assert.deepEqual(got.map((i) => [i.type, i.role]), [['message', 'system'], ['message', 'user'], ['message', 'assistant']]);
  assert.equal(got[0].content, 'Be kind.');
  assert.deepEqual(got[1].content, [{ type: 'input_text', text: 'Hello' }]);
  assert.equal(got[2].content[0].text, 'Hi! How can I help?');
  await session.addItems([{ type: 'message', role: 'user', content: 'Thanks' }]);
  const native = await api(token, 'GET', '/api/agent-sessions/native-chat.1/messages');
  assert.deepEqual(native.body.items.map((x) => [x.role, x.content]), [
    ['system', 'Be kind.'], ['user', 'Hello'], ['assistant', 'Hi! How can I help?'], ['user', 'Thanks'],
  ]);
});
