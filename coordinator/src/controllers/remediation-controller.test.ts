/**
 * The remediation controller keeps fault derivations, views and the committed record in
 * memory and writes only what moved; these tests hold it to the store: a quiet tick
 * writes nothing, a tick where a few machines' faults moved writes exactly their rows,
 * and a controller restarted on the same file resumes from the very record it left.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { createLogger } from '@nodekeeper/common';
import type { NodeReport } from '@nodekeeper/protocol';
import { SharedBudget } from '../budget/shared-budget.ts';
import { CommandDispatcher } from '../commands/dispatcher.ts';
import { FleetView } from '../fleet/fleet-view.ts';
import type { RemediationState } from '../remediation/types.ts';
import { enrolledStore, sampleReport, tempDir } from '../store/test-support.ts';
import { WriteBatcher } from '../store/write-batcher.ts';
import { RemediationController } from './remediation-controller.ts';

const log = createLogger({ name: 'test', level: 'silent' });
const NODES = Array.from({ length: 40 }, (_, i) => `node-${String(i).padStart(2, '0')}`);
const tmp = tempDir('nk-remediation-ctl-');
after(() => tmp.remove());

const kubeletDown = (name: string): NodeReport => {
  const r = sampleReport(name);
  Object.assign(r.kubelet, { health: 'unhealthy', reason: 'HealthzRefused', message: 'connection refused' });
  return r;
};

/** A coordinator's store, fleet view, dispatcher and remediation controller on `file`, every agent connected. */
function coordinator(file: string, now: { t: number }, controlPlaneVersion: string | null = null) {
  const clock = () => now.t;
  const store = enrolledStore(file, NODES, { now: clock, log });
  const batcher = new WriteBatcher(store, { intervalMs: 3_600_000, log });
  const fleet = new FleetView({ store, batcher, clock, log }, { livenessGraceMs: 40_000, livenessRecoverMs: 0 });
  const link = { resync() {}, close() {}, sendCommand: () => true };
  for (const n of NODES) fleet.attach(n, link, 't');
  const commands = new CommandDispatcher({ store, clock, log });
  commands.setTransport((machine) => fleet.isConnected(machine));
  const remediation = new RemediationController({ store, fleet, commands, clock, log, budget: new SharedBudget(10), artifactBaseUrl: () => 'https://c.example', controlPlaneVersion: () => controlPlaneVersion }, {});
  /** Time passes; every agent keeps talking (liveness is judged on messages). */
  const advance = (ms: number) => {
    now.t += ms;
    for (const n of NODES) fleet.touch(n);
    fleet.tick();
  };
  return { store, fleet, remediation, advance, close: () => { batcher.close(); store.close(); } };
}

/** The committed record as plain data. */
const snapshot = (rec: ReturnType<RemediationController['record']>) => ({ ...rec, faults: Object.fromEntries([...rec.faults].sort(([a], [b]) => (a < b ? -1 : 1))) });

/** Logs every row written to the per-machine tables (through a second connection: real triggers on the file). */
function logWrites(file: string): { take: () => string[]; close: () => void } {
  const db = new Database(file);
  db.exec(`
    CREATE TABLE IF NOT EXISTS test_writes (what TEXT NOT NULL);
    CREATE TRIGGER IF NOT EXISTS tw1 AFTER INSERT ON remediation_faults BEGIN INSERT INTO test_writes VALUES ('faults ' || new.machine); END;
    CREATE TRIGGER IF NOT EXISTS tw2 AFTER UPDATE ON remediation_faults BEGIN INSERT INTO test_writes VALUES ('faults ' || new.machine); END;
    CREATE TRIGGER IF NOT EXISTS tw3 AFTER DELETE ON remediation_faults BEGIN INSERT INTO test_writes VALUES ('faults -' || old.machine); END;
    CREATE TRIGGER IF NOT EXISTS tw4 AFTER INSERT ON remediation_machines BEGIN INSERT INTO test_writes VALUES ('machine ' || new.machine); END;
    CREATE TRIGGER IF NOT EXISTS tw5 AFTER UPDATE ON remediation_machines BEGIN INSERT INTO test_writes VALUES ('machine ' || new.machine); END;
    CREATE TRIGGER IF NOT EXISTS tw6 AFTER DELETE ON remediation_machines BEGIN INSERT INTO test_writes VALUES ('machine -' || old.machine); END;
    CREATE TRIGGER IF NOT EXISTS tw7 AFTER UPDATE ON remediation BEGIN INSERT INTO test_writes VALUES ('cluster'); END;
  `);
  return {
    take: () => {
      const rows = (db.prepare('SELECT what FROM test_writes ORDER BY rowid').all() as Array<{ what: string }>).map((r) => r.what);
      db.exec('DELETE FROM test_writes');
      return rows.sort();
    },
    close: () => db.close(),
  };
}

test('a quiet tick writes nothing; a tick where a few faults moved writes exactly those machines\' rows', () => {
  const file = tmp.file('rows.db');
  const now = { t: 1_000_000 };
  const c = coordinator(file, now);
  for (const n of NODES) c.fleet.report(n, true, sampleReport(n));
  c.remediation.tick();
  const first = c.store.getRemediation();
  assert.equal(first?.faults.size, NODES.length, 'every machine\'s fault state is stored');
  assert.equal(Object.keys((first?.state as RemediationState).machines).length, NODES.length);
  const writes = logWrites(file);
  try {
    for (let i = 0; i < 3; i++) {
      c.advance(1000);
      const before = c.store.counters.transactions;
      c.remediation.tick();
      assert.equal(c.store.counters.transactions, before, 'a quiet tick commits nothing');
    }
    assert.deepEqual(writes.take(), []);
    // Two kubelets go down: their faults go Pending (rows written), nobody else's moves.
    c.fleet.report('node-03', true, kubeletDown('node-03'));
    c.fleet.report('node-17', true, kubeletDown('node-17'));
    c.advance(1000);
    c.remediation.tick();
    assert.deepEqual(writes.take(), ['faults node-03', 'faults node-17']);
    // Still down, the clock moves but not past the hold: the Pending faults do not move.
    c.advance(10_000);
    c.remediation.tick();
    assert.deepEqual(writes.take(), []);
    // Past the fault's hold: Active.
    c.advance(30_000);
    c.remediation.tick();
    assert.deepEqual(writes.take(), ['faults node-03', 'faults node-17']);
    // Past the rule's hold: a ladder starts on each; their faults do not move, their ladders do.
    c.advance(25_000);
    c.remediation.tick();
    assert.deepEqual(writes.take(), ['machine node-03', 'machine node-17']);
    assert.equal(c.remediation.machineState('node-03')?.phase, 'Running');
    assert.deepEqual(c.store.commandsByOwner('remediation').map((x) => x.machine).sort(), ['node-03', 'node-17'], 'a command each');
    // What the controller holds is what the store holds.
    assert.deepEqual(snapshot(c.remediation.record()), snapshot(c.store.getRemediation() ?? assert.fail('no record')));
    // Revoked: its rows go (the policy forgets an Idle machine without a view; its faults were never kept for one).
    c.store.revokeMachine('node-30');
    c.fleet.revoked('node-30');
    c.advance(1000);
    c.remediation.tick();
    assert.deepEqual(writes.take(), ['faults -node-30', 'machine -node-30']);
  } finally {
    writes.close();
    c.close();
  }
});

test('a restarted controller resumes from exactly the record it left: fault states, ladders, switches', () => {
  const file = tmp.file('restart.db');
  const now = { t: 5_000_000 };
  const a = coordinator(file, now);
  for (const n of NODES) a.fleet.report(n, true, n === 'node-05' || n === 'node-06' ? kubeletDown(n) : sampleReport(n));
  a.remediation.tick();
  a.remediation.setSwitch({ machine: { name: 'node-09', paused: true } });
  a.advance(65_000);
  a.remediation.tick();
  a.advance(5_000);
  a.fleet.report('node-20', true, kubeletDown('node-20')); // Pending when we die
  a.remediation.tick();
  const left = snapshot(a.remediation.record());
  assert.equal((left.state as RemediationState).machines['node-05']?.phase, 'Running', 'a ladder in flight');
  assert.equal((left.faults['node-20'] as { faults: { KubeletUnhealthy: { status: string } } }).faults.KubeletUnhealthy.status, 'Pending');
  assert.deepEqual(left.pausedMachines, ['node-09']);
  a.close(); // as a kill -9 would: everything above was committed tick by tick
  const b = coordinator(file, now);
  try {
    assert.deepEqual(snapshot(b.remediation.record()), left);
    assert.equal(b.remediation.machineState('node-05')?.commandId, (left.state as RemediationState).machines['node-05']?.commandId);
  } finally {
    b.close();
  }
});

test('a reinstall that would move kubelet outside the version-skew policy is refused (NK_VERSION_SKEW), never sent, and the ladder escalates', () => {
  const file = tmp.file('skew.db');
  const now = { t: 9_000_000 };
  const c = coordinator(file, now, 'v1.32.1');
  try {
    // The desired kubelet is newer than the control plane (set while its version was unknown).
    c.store.putClusterPackageVersion([{ name: 'kubelet', version: '1.33.0', artifact: { url: 'https://artifacts.example/k', sha256: 'b'.repeat(64), size: 1 } }]);
    c.remediation.applyRule({
      apiVersion: 'nodekeeper.io/v1alpha1', kind: 'RemediationRule', metadata: { name: 'kubelet-reinstall' },
      spec: { fault: 'KubeletUnhealthy', forSeconds: 0, ladder: [{ action: 'ReinstallPackage', target: 'kubelet' }, { action: 'CordonAndNotify' }] },
    });
    for (const n of NODES) c.fleet.report(n, true, n === 'node-07' ? kubeletDown(n) : sampleReport(n));
    for (let i = 0; i < 10; i++) {
      c.advance(10_000);
      c.remediation.tick();
    }
    assert.deepEqual(c.store.commandsByOwner('remediation'), [], 'nothing recorded, nothing sent');
    const events = c.store.machineEvents('node-07', 100).map((e) => `${e.reason}: ${e.message}`);
    assert.ok(events.some((e) => /^RemediationStepImpossible: .*NK_VERSION_SKEW: reinstall of kubelet 1\.33\.0 refused by the version-skew guard: kubelet 1\.33\.0 would be newer than the control plane v1\.32\.1/.test(e)), events.join('\n'));
    const m = c.remediation.machineState('node-07');
    assert.equal(m?.phase, 'NeedsHuman');
    assert.ok(m?.history.some((h) => h.action === 'ReinstallPackage' && /failed/.test(h.result)), JSON.stringify(m?.history));
  } finally {
    c.close();
  }
});
