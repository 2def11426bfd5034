// The Agents SDK's OpenAIConversationsSession, unchanged, kept in parley
// through /v1: only the client it is given points at parley.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { Agent, OpenAIConversationsSession, run, tool, setTracingDisabled } from '@openai/agents';
import { ScriptedModel, functionCall, assistantMessage } from '@openai/agents-core/testing';
import { client, countingFetch, newUser } from './helpers.mjs';

// Traces would go to OpenAI; nothing here may leave the machine.
setTracingDisabled(true);

// What a run puts in a session: the user's input, a system message, a
// reasoning item (which keeps its id), a tool call and its result, and the
// assistant's answer, in the shapes the runner gives addItems.
const ADDED = [
  { type: 'message', role: 'system', content: 'You are terse.' },
  { type: 'message', role: 'user', content: 'What is the weather in Paris?' },
  {
    type: 'message', role: 'user',
    content: [
      { type: 'input_text', text: 'and look at this' },
      // (no detail: the SDK reads an image part back without it)
      { type: 'input_image', image: 'https://example.com/cloud.png' },
    ],
  },
  {
    type: 'reasoning', id: 'rs_5f2e9c',
    content: [{ type: 'input_text', text: 'The user wants the weather.' }],
    providerData: { encryptedContent: 'gAAAAB-opaque' },
  },
  {
    type: 'function_call', callId: 'call_w1', name: 'get_weather',
    arguments: '{"city":"Paris"}', status: 'completed',
  },
  {
    type: 'function_call_result', callId: 'call_w1', name: 'get_weather',
    status: 'completed', output: { type: 'text', text: '{"temp_c":21}' },
  },
  {
    type: 'message', role: 'assistant', status: 'completed',
    content: [{ type: 'output_text', text: 'It is 21 °C in Paris.' }],
  },
];

// OpenAI keeps a user message's string content as one input_text part,
// and the SDK reads it back so (OPENAI.md, section 3).
function asStored(items) {
  return items.map((i) => (i.role === 'user' && typeof i.content === 'string'
    ? { ...i, content: [{ type: 'input_text', text: i.content }] }
    : i));
}

test('OpenAIConversationsSession gets back exactly what it added', async () => {
  const { token } = newUser();
  const f = countingFetch();
  const session = new OpenAIConversationsSession({ client: client(token, { fetch: f }) });
  // The SDK's own normalisation, the one its runner compares histories
  // with.  It keeps every field it does not know, so a field parley added
  // to an item (which the SDK would send on to the model) fails the
  // comparisons below.
  const norm = (items) => session.prepareHistoryItemsForPersistenceComparison(items);

  const id = await session.getSessionId();
  assert.match(id, /^conv_[0-9a-f]{32}$/);
  await session.addItems(ADDED.slice(0, 3));
  await session.addItems(ADDED.slice(3));

  const got = await session.getItems();
  assert.equal(got.length, ADDED.length);
  assert.deepEqual(norm(got), norm(asStored(ADDED)));
  for (const item of got) assert.equal(typeof item.id, 'string');
  assert.equal(got[3].id, 'rs_5f2e9c');
  assert.equal(got[4].callId, 'call_w1');
  assert.equal(got[4].arguments, '{"city":"Paris"}');
  assert.equal(got[5].callId, 'call_w1');
  assert.deepEqual(norm(await session.getItems(2)), norm(ADDED.slice(-2)));
  assert.deepEqual(norm(await session.getItems(100)), norm(asStored(ADDED)));
  const before = f.calls.length;
  assert.deepEqual(await session.getItems(0), []);
  assert.equal(f.calls.length, before);

  const popped = await session.popItem();
  assert.deepEqual(norm([popped]), norm(ADDED.slice(-1)));
  assert.deepEqual(norm(await session.getItems()), norm(asStored(ADDED.slice(0, -1))));
  const poppedResult = await session.popItem();
  assert.equal(poppedResult.type, 'function_call_result');
  assert.equal(poppedResult.callId, 'call_w1');
  assert.equal((await session.getItems()).length, ADDED.length - 2);

  await session.clearSession();
  await assert.rejects(client(token).conversations.retrieve(id), OpenAI.NotFoundError);
  const id2 = await session.getSessionId();
  assert.notEqual(id2, id);
  assert.deepEqual(await session.getItems(), []);
  assert.equal(await session.popItem(), undefined);
});

test('OpenAIConversationsSession pages through a long history', async () => {
  const { token } = newUser();
  const session = new OpenAIConversationsSession({ client: client(token) });
  const items = Array.from({ length: 230 }, (_, i) => (i % 2
    ? { type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: `a${i}` }] }
    : { type: 'message', role: 'user', content: [{ type: 'input_text', text: `u${i}` }] }));
  // The SDK sends one items.create per addItems; API.md takes 100 a call.
  for (let i = 0; i < items.length; i += 100) await session.addItems(items.slice(i, i + 100));
  const norm = (x) => session.prepareHistoryItemsForPersistenceComparison(x);
  assert.deepEqual(norm(await session.getItems()), norm(items));
  assert.deepEqual(norm(await session.getItems(150)), norm(items.slice(-150)));
  assert.deepEqual(norm(await session.getItems(7)), norm(items.slice(-7)));
});

test('an existing conversation is used by its id', async () => {
  const { token } = newUser();
  const c = client(token);
  const conv = await c.conversations.create({ items: [{ role: 'user', content: 'first' }] });
  const f = countingFetch();
  const session = new OpenAIConversationsSession({ client: client(token, { fetch: f }), conversationId: conv.id });
  assert.equal(await session.getSessionId(), conv.id);
  assert.equal(f.calls.length, 0);
  const [item] = await session.getItems();
  assert.deepEqual(item.content, [{ type: 'input_text', text: 'first' }]);
});

test('the Agents runner keeps a two-turn history with a tool call in parley', async () => {
  const { token } = newUser();
  const session = new OpenAIConversationsSession({ client: client(token) });
  const getWeather = tool({
    name: 'get_weather',
    description: 'The weather in a city.',
    parameters: {
      type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false,
    },
    strict: true,
    execute: async ({ city }) => JSON.stringify({ city, temp_c: 21 }),
  });
  // No model server here: the SDK's scripted model answers; the session,
  // the client and parley are real.
  const model = new ScriptedModel([
    [functionCall('get_weather', { city: 'Paris' }, { callId: 'call_r1' })],
    [assistantMessage('It is 21 °C in Paris.')],
    [assistantMessage('You are welcome.')],
  ]);
  const agent = new Agent({ name: 'weather', instructions: 'Answer briefly.', model, tools: [getWeather] });

  const r1 = await run(agent, 'What is the weather in Paris?', { session });
  assert.equal(r1.finalOutput, 'It is 21 °C in Paris.');
  const r2 = await run(agent, 'Thanks!', { session });
  assert.equal(r2.finalOutput, 'You are welcome.');
  model.assertComplete();

  // The second turn's model input is the first turn, read back from parley.
  const input = model.lastCall.request.input;
  assert.deepEqual(input.map((i) => i.type ?? 'message'),
    ['message', 'function_call', 'function_call_result', 'message', 'message']);
  assert.equal(input[1].callId, 'call_r1');
  assert.match(JSON.stringify(input[2].output), /temp_c/);
  const items = await session.getItems();
  assert.deepEqual(items.map((i) => [i.type, i.role]), [
    ['message', 'user'], ['function_call', undefined], ['function_call_result', undefined],
    ['message', 'assistant'], ['message', 'user'], ['message', 'assistant'],
  ]);
});
