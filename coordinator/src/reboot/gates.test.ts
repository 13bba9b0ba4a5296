import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createLogger } from '@nodekeeper/common';
import type { RebootSpec } from '../rollout/spec.ts';
import { alertHold, podHolds, RebootGateChecker } from './gates.ts';

const answer = (alerts: unknown[]) => ({ status: 'success', data: { alerts } });
const alert = (alertname: string, state = 'firing') => ({ labels: { alertname, severity: 'page' }, annotations: {}, state, activeAt: '2026-12-03T10:00:00Z', value: '1e+00' });

test('no firing alert, or only pending ones: no hold', () => {
  assert.equal(alertHold(answer([]), null, 'http://p'), null);
  assert.equal(alertHold(answer([alert('NodeDown', 'pending')]), null, 'http://p'), null);
});

test('firing alerts hold, named; the filter ignores the ones it matches (kured --alert-filter-regexp)', () => {
  const h = alertHold(answer([alert('NodeDown'), alert('Watchdog'), alert('DiskFull')]), /^Watchdog$/, 'http://p');
  assert.deepEqual(h, { reason: 'RebootHeld', message: '2 alert(s) firing in Prometheus at http://p: DiskFull, NodeDown' });
  assert.equal(alertHold(answer([alert('Watchdog')]), /^Watchdog$/, 'http://p'), null);
});

test('an answer that is not the alerts shape holds (unknown is not fine)', () => {
  for (const body of [null, 'x', { status: 'error', error: 'boom' }, { status: 'success', data: {} }]) {
    const h = alertHold(body, null, 'http://p');
    assert.equal(h?.reason, 'RebootHeld');
    assert.match(h?.message ?? '', /did not answer with its alerts/);
  }
});

test('blocking pods hold only the machines whose Node runs one; finished pods do not block', () => {
  const pods = [
    { namespace: 'default', name: 'db-0', node: 'node-a', phase: 'Running' },
    { namespace: 'default', name: 'job-1', node: 'node-b', phase: 'Succeeded' },
    { namespace: 'default', name: 'pending', node: null, phase: 'Pending' },
  ];
  const holds = podHolds(pods, 'app=db', (m) => m, ['node-a', 'node-b']);
  assert.deepEqual([...holds.keys()], ['node-a']);
  assert.equal(holds.get('node-a')?.message, 'blocking pods (app=db) on Node node-a: default/db-0');
});

test('RebootGateChecker against a Prometheus stand-in on port 0: holds before the first read, on firing alerts, when unreachable; releases when they clear', async (t) => {
  let alerts: unknown[] = [alert('NodeDown')];
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer(alerts))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  let changes = 0;
  const checker = new RebootGateChecker({ listPods: null, nodeOf: () => null, log: createLogger({ name: 'gates-test', level: 'silent' }), changed: () => void changes++, refreshMs: 0 });
  const spec = (u: string): RebootSpec => ({ onlyRequired: false, blockingPods: null, prometheus: { url: u, alertFilter: null }, drain: { force: false, deleteEmptyDirData: false, timeoutSeconds: 60, gracePeriodSeconds: null }, timeoutSeconds: 900 });
  let now = 0;
  /** Asks as the controller does on each step, until the answer says what is expected. */
  const until = async (name: string, u: string, ok: (m: string | null) => boolean) => {
    for (let i = 0; i < 200; i++) {
      const m = checker.gatesFor(name, spec(u), ['a'], ++now).rollout?.message ?? null;
      if (ok(m)) return m;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`${name}: never as expected`);
  };
  assert.match(checker.gatesFor('r', spec(url), ['a'], ++now).rollout?.message ?? '', /checking alerts/);
  await until('r', url, (m) => m !== null && /NodeDown/.test(m));
  alerts = [];
  await until('r', url, (m) => m === null);
  await until('down', 'http://127.0.0.1:9', (m) => m !== null && /unreachable/.test(m));
  assert.ok(changes >= 3);
  assert.equal(checker.gatesFor('none', { ...spec(url), prometheus: null }, ['a'], ++now).rollout, null, 'no gates: never held');
});
