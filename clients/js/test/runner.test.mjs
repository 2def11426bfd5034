// The Agents SDK's own runner keeps its history in a ParleySession: two
// turns with a tool call, against the real parley.  The model is the SDK's
// ScriptedModel (no model server here); everything else is real.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, run, tool, setTracingDisabled } from '@openai/agents-core';
import { ScriptedModel, functionCall, assistantMessage } from '@openai/agents-core/testing';
import { ParleySession } from '../parley-session.mjs';
import { URL, api, newUser } from './helpers.mjs';

setTracingDisabled(true);

const getWeather = tool({
  name: 'get_weather',
  description: 'The weather in a city.',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string' } },
    required: ['city'],
    additionalProperties: false,
  },
  strict: true,
  execute: async ({ city }) => JSON.stringify({ city, temp_c: 21 }),
});

test('run() keeps a two-turn history with a tool call in a ParleySession', async () => {
  const { token } = newUser('runner');
  const session = new ParleySession({ baseURL: URL, token, session: { agent_name: 'weather' } });
  const model = new ScriptedModel([
    [functionCall('get_weather', { city: 'Paris' }, { callId: 'call_p1' })],
    [assistantMessage('It is 21 °C in Paris.')],
    [assistantMessage('You are welcome.')],
  ]);
  const agent = new Agent({ name: 'weather', instructions: 'Answer briefly.', model, tools: [getWeather] });

  const r1 = await run(agent, 'What is the weather in Paris?', { session });
  assert.equal(r1.finalOutput, 'It is 21 °C in Paris.');
  const after1 = await session.getItems();
  assert.deepEqual(after1.map((i) => i.type ?? 'message'),
    ['message', 'function_call', 'function_call_result', 'message']);
  assert.equal(after1[1].callId, 'call_p1');
  assert.equal(after1[2].callId, 'call_p1');
  assert.match(JSON.stringify(after1[2].output), /temp_c/);

  const r2 = await run(agent, 'Thanks!', { session });
  assert.equal(r2.finalOutput, 'You are welcome.');
  // The model's second turn saw the whole first turn, from parley.
  const input = model.lastCall.request.input;
  assert.ok(Array.isArray(input));
  assert.deepEqual(input.map((i) => i.type ?? 'message'),
    ['message', 'function_call', 'function_call_result', 'message', 'message']);
  assert.equal(input.at(-1).content, 'Thanks!');
  model.assertComplete();

  const ms = await api(token, 'GET', `/api/agent-sessions/${session.sessionId}/messages`);
  assert.deepEqual(ms.body.items.map((m) => [m.role, m.tool_call_id]), [
    ['user', null], ['assistant', 'call_p1'], ['tool', 'call_p1'], ['assistant', null],
    ['user', null], ['assistant', null],
  ]);
  assert.equal(ms.body.items[0].content, 'What is the weather in Paris?');
  assert.equal(ms.body.items[5].content, 'You are welcome.');
});
