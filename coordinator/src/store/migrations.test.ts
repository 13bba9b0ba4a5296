import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { hasCode } from '@nodekeeper/common';
import { openStore } from './db.ts';
import { StoreErrorCode } from './errors.ts';
import { migrate, migrations, SCHEMA_VERSION, userVersion, type Migration } from './migrations.ts';
import { buildAtSchema, dumpTables, identity, tempDir } from './test-support.ts';

const tmp = tempDir();
after(() => tmp.remove());

test('a new file gets the whole schema, WAL, FULL sync, foreign keys, mode 0600', () => {
  const file = tmp.file('new.db');
  const store = openStore(file);
  store.close();
  const db = new Database(file);
  try {
    assert.equal(userVersion(db), SCHEMA_VERSION);
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>).map((t) => t.name);
    for (const t of ['api_credentials', 'events', 'machines', 'observations', 'tokens']) assert.ok(tables.includes(t), t);
  } finally {
    db.close();
  }
  assert.equal(statSync(file).mode & 0o777, 0o600);
});

test('the connection runs with WAL, synchronous=FULL, foreign keys and a busy timeout', () => {
  const store = openStore(tmp.file('pragmas.db'), { busyTimeoutMs: 1234 });
  try {
    assert.deepEqual(store.settings(), { journalMode: 'wal', synchronous: 'FULL', foreignKeys: true, busyTimeoutMs: 1234 });
    // A status for a machine that does not exist is refused, not silently dropped.
    assert.throws(() => store.saveStatus('ghost', { report: null, reportChangedAt: null, liveness: { state: 'Ready', since: 1, reason: 'X', message: '' }, conditions: [], agentVersion: null }), (err) => hasCode(err, StoreErrorCode.machineNotFound));
  } finally {
    store.close();
  }
});

test('migrating twice changes nothing', () => {
  const file = tmp.file('twice.db');
  const s1 = openStore(file, { now: () => 5 });
  s1.createToken({ ttlMs: 1000, maxUses: 1, description: 'keep me' });
  s1.close();
  const before = dumpTables(file);
  openStore(file).close();
  assert.deepEqual(dumpTables(file), before);
  const db = new Database(file);
  assert.deepEqual(migrate(db), []);
  db.close();
});

test('a file from a newer coordinator is refused with NK_STORE_SCHEMA_TOO_NEW and left untouched', () => {
  const file = tmp.file('newer.db');
  openStore(file).close();
  const db = new Database(file);
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  const before = dumpTables(file);
  assert.throws(() => openStore(file), (err) => hasCode(err, StoreErrorCode.schemaTooNew) && /newer/.test(err.message));
  assert.deepEqual(dumpTables(file), before);
});

test('a failing migration is rolled back whole and reported with its cause', () => {
  const file = tmp.file('broken.db');
  const broken: Migration[] = [
    ...migrations,
    { version: SCHEMA_VERSION + 1, name: 'half good', sql: 'CREATE TABLE extra (x INTEGER); INSERT INTO nowhere VALUES (1);' },
  ];
  assert.throws(() => openStore(file, { migrations: broken }), (err) => hasCode(err, StoreErrorCode.migrationFailed) && err.cause instanceof Error);
  const db = new Database(file);
  assert.equal(userVersion(db), SCHEMA_VERSION);
  assert.deepEqual(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'extra'").get(), { n: 0 });
  db.close();
  // Fixed code can still open it.
  openStore(file).close();
});

test('migrations out of order are a programming error', () => {
  const db = new Database(':memory:');
  assert.throws(() => migrate(db, [{ version: 2, name: 'skips one', sql: '' }]), RangeError);
  db.close();
});

test('a file that cannot be opened, or is not a database, is NK_STORE_OPEN_FAILED with the cause', () => {
  const missingDir = tmp.file('no/such/dir/store.db');
  assert.throws(() => openStore(missingDir), (err) => hasCode(err, StoreErrorCode.openFailed) && err.cause !== undefined);
  const garbage = tmp.file('garbage.db');
  writeFileSync(garbage, 'this is not sqlite, not at all, and it is long enough to have a header'.repeat(20));
  assert.throws(() => openStore(garbage), (err) => hasCode(err, StoreErrorCode.openFailed) && /not a database/.test(String((err.cause as Error).message)));
});

test('migration 5 carries the one-row remediation record over into rows per machine', () => {
  const file = tmp.file('remediation-v4.db');
  openStore(file, { migrations: migrations.slice(0, 4) }).close();
  // The record as schema 4 kept it (odd values included: they must come back as they went in).
  const ladder = { phase: 'Running', reason: 'StepStarted', message: 'step 1/2 of rule "kubelet" — restart ✓', since: 1_764_000_000_123, rule: 'kubelet', step: 0, ladders: 2, attempts: [1.5, 1_764_000_000_000], cooldownUntil: 0, commandId: 'rm-1', stepStartedAt: 1_764_000_000_123, commandOutcome: null, cordoned: false, waiting: null, dryRunNoted: null, history: [{ at: 1, rule: 'kubelet', step: 0, action: 'none', result: 'ladder started' }] };
  const idle = { ...ladder, phase: 'Idle', reason: 'NoFault', message: '', rule: null, history: [] };
  const storm = { active: true, reason: 'TooManyUnhealthy', message: '3 of 4', since: 10, calmSince: null };
  const fault = (status: string) => ({ faults: { KubeletUnhealthy: { type: 'KubeletUnhealthy', status, since: 5, lastTransitionTime: 6, goodSince: null, reason: 'HealthzRefused', message: 'refused' } }, restarts: { kubelet: [{ at: 1, count: 3 }], runtime: [] } });
  const v4 = new Database(file);
  const insert = v4.prepare("INSERT INTO remediation (name, state, faults, paused, dry_run, paused_machines, updated_at) VALUES ('cluster', ?, ?, 1, 0, ?, 7)");
  insert.run(JSON.stringify({ machines: { 'node-a': ladder, 'node-b': idle }, storm }), JSON.stringify({ 'node-a': fault('Active'), 'node-c': fault('Pending') }), JSON.stringify(['node-b']));
  v4.close();

  const store = openStore(file);
  try {
    assert.deepEqual(store.getRemediation(), {
      state: { machines: { 'node-a': ladder, 'node-b': idle }, storm },
      faults: new Map([['node-a', fault('Active')], ['node-c', fault('Pending')]]),
      paused: true,
      dryRun: false,
      pausedMachines: ['node-b'],
    });
  } finally {
    store.close();
  }
  const db = new Database(file, { readonly: true });
  try {
    const columns = (db.prepare("SELECT name FROM pragma_table_info('remediation') ORDER BY cid").all() as Array<{ name: string }>).map((c) => c.name);
    assert.deepEqual(columns, ['name', 'paused', 'dry_run', 'paused_machines', 'updated_at', 'storm'], 'the whole-record columns are gone');
  } finally {
    db.close();
  }
});

test('migration 5 on a record never planned, and on a store without one', () => {
  const planned = tmp.file('remediation-v4-null.db');
  openStore(planned, { migrations: migrations.slice(0, 4) }).close();
  const v4 = new Database(planned);
  v4.prepare("INSERT INTO remediation (name, state, faults, paused, dry_run, paused_machines, updated_at) VALUES ('cluster', 'null', '{}', 0, 1, '[]', 7)").run();
  v4.close();
  const a = openStore(planned);
  assert.deepEqual(a.getRemediation(), { state: null, faults: new Map(), paused: false, dryRun: true, pausedMachines: [] });
  a.close();
  const none = tmp.file('remediation-v4-none.db');
  openStore(none, { migrations: migrations.slice(0, 4) }).close();
  const b = openStore(none);
  assert.equal(b.getRemediation(), null);
  b.close();
});

test('migration 14 moves last-seen times to machine_seen; a deleted machine takes its row along', () => {
  const file = tmp.file('seen.db');
  buildAtSchema(file, 13, (s0) => {
    const { token } = s0.createToken({ ttlMs: 60_000, maxUses: 2, description: '' });
    s0.enroll({ token, identity: identity('seen-1'), agentVersion: 't' });
    s0.enroll({ token, identity: identity('never-1'), agentVersion: 't' });
  });
  const raw = new Database(file);
  raw.prepare("UPDATE machines SET last_seen_at = 777 WHERE name = 'seen-1'").run();
  raw.close();

  const s = openStore(file, { now: () => 2_000 });
  try {
    assert.equal(s.getMachine('seen-1')?.lastSeenAt, 777, 'the time is carried over');
    assert.equal(s.getMachine('never-1')?.lastSeenAt, null);
    s.writeBatch({ lastSeen: new Map([['never-1', 900], ['seen-1', 500], ['gone-1', 1]]), events: [], statuses: [] });
    assert.equal(s.getMachine('seen-1')?.lastSeenAt, 777, 'a late flush never moves it back');
    assert.equal(s.getMachine('never-1')?.lastSeenAt, 900);
    s.deleteMachine('seen-1', 'test');
  } finally {
    s.close();
  }
  const db = new Database(file, { readonly: true });
  try {
    assert.deepEqual(db.prepare('SELECT name, at FROM machine_seen ORDER BY name').all(), [{ name: 'never-1', at: 900 }], 'no row for a deleted or unknown machine');
    const columns = (db.prepare("SELECT name FROM pragma_table_info('machines')").all() as Array<{ name: string }>).map((c) => c.name);
    assert.ok(!columns.includes('last_seen_at'), 'the machines row no longer carries it');
  } finally {
    db.close();
  }
});
