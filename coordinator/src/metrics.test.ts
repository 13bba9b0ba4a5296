import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMetrics } from './metrics.ts';

const framesOf = async (m: ReturnType<typeof createMetrics>, type: string): Promise<number> => {
  const line = (await m.registry.metrics()).split('\n').find((l) => l.startsWith(`nodekeeper_agent_frames_received_total{type="${type}"} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
};

test('frames counted on the hot path reach the exposition once each, across scrapes, with the workers\' batched adds', async () => {
  const m = createMetrics();
  assert.equal(await framesOf(m, 'heartbeat'), 0);
  for (let i = 0; i < 3; i++) m.frameReceived('heartbeat');
  m.frameReceived('report');
  assert.equal(await framesOf(m, 'heartbeat'), 3);
  assert.equal(await framesOf(m, 'report'), 1);
  // A second scrape with nothing new does not count the same frames again.
  assert.equal(await framesOf(m, 'heartbeat'), 3);
  m.frameReceived('heartbeat');
  m.frameReceived('heartbeat', 10); // a gateway worker's batch (gateway-workers.ts)
  assert.equal(await framesOf(m, 'heartbeat'), 14);
  assert.equal(await framesOf(m, 'report'), 1);
});
