/**
 * A gateway worker that sends the writer garbage over IPC (test/fixtures/rogue-gateway-worker.ts)
 * must not take the writer down (invariant 11): the real GatewayWorkers and AgentGateway,
 * on a real store, log and drop each malformed message, ignore messages about sessions
 * they never admitted, and keep answering: the upgrade that follows is refused as it
 * would be in-process, and the worker counts as listening.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '@nodekeeper/common';
import { monotonicClock } from '../coordinator/src/clock.ts';
import { CommandDispatcher } from '../coordinator/src/commands/dispatcher.ts';
import { defaults } from '../coordinator/src/config.ts';
import { FleetView } from '../coordinator/src/fleet/fleet-view.ts';
import { AgentGateway } from '../coordinator/src/gateway/agent-gateway.ts';
import { GatewayWorkers } from '../coordinator/src/gateway/gateway-workers.ts';
import { SourceLimiter } from '../coordinator/src/gateway/source-limiter.ts';
import { createMetrics } from '../coordinator/src/metrics.ts';
import { openStore } from '../coordinator/src/store/db.ts';
import { WriteBatcher } from '../coordinator/src/store/write-batcher.ts';
import { waitFor } from './harness/processes.ts';

const ROGUE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'rogue-gateway-worker.ts');

test('malformed worker messages are logged and dropped; the writer keeps answering', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'nk-rogue-worker-'));
  const answers = path.join(dir, 'answers.jsonl');
  process.env['ROGUE_ANSWERS'] = answers; // the fork inherits it (the fixture's only input)
  const logged: Array<{ problem?: string; msg: string }> = [];
  const log = createLogger({ name: 'test', level: 'silent' });
  const spy = Object.assign(Object.create(log) as typeof log, {
    child: () => spy,
    error: (o: { problem?: string }, msg: string) => void logged.push({ ...o, msg }),
    warn: () => {},
  });
  const clock = monotonicClock;
  const store = openStore(path.join(dir, 'state.db'), { now: clock, log });
  const batcher = new WriteBatcher(store, { intervalMs: 1000, log });
  const fleet = new FleetView({ store, batcher, clock, log }, { livenessGraceMs: 40_000, livenessRecoverMs: 10_000 });
  const metrics = createMetrics();
  const gateway = new AgentGateway(
    { store, fleet, clock, log, metrics, commands: new CommandDispatcher({ store, clock, log }), authFailures: new SourceLimiter() },
    { machineCredentialTtlMs: defaults.machineCredentialTtlMs, heartbeatIntervalMs: 1000, rateLimit: defaults.rateLimit, maxInvalidFrames: 10, maxConnections: 10, admission: defaults.admission },
  );
  const workers = new GatewayWorkers({ gateway, metrics, log: spy, entry: ROGUE }, 1, {
    host: '127.0.0.1', tlsSessionSeconds: 60, http: defaults.http, transport: { rateLimit: defaults.rateLimit, maxInvalidFrames: 10 },
    heartbeatIntervalMs: 1000, writerSocket: path.join(dir, 'none.sock'), secret: 's', logLevel: 'silent',
  }, null, null);
  try {
    const port = await workers.start(0);
    assert.ok(port > 0);
    await waitFor('the refusal of the honest upgrade', async () => (await readFile(answers, 'utf8').catch(() => '')).includes('"refused"'), 10_000);
    const lines = (await readFile(answers, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines.slice(1), [{ t: 'refused', session: 1, refusal: { status: 401, code: 'NK_AUTH_CREDENTIAL_INVALID', message: lines[1].refusal.message } }]);
    assert.deepEqual(logged.map((l) => l.problem), [
      'not an object', 'not an object', 'not an object', 'not an object', 'unknown type "shutdown"', 'listening: port',
      'upgrade: session', 'message: not an agent message', 'heartbeats: sessions', 'metrics: counters',
    ]);
    assert.match(await metrics.registry.metrics(), /nodekeeper_agent_upgrades_rejected_total\{code="NK_AUTH_CREDENTIAL_INVALID"\} 1/);
  } finally {
    await workers.stop();
    gateway.close();
    batcher.close();
    store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
