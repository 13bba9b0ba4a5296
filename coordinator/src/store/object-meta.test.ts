import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { openStore } from './db.ts';
import { OBJECT_KINDS, type ObjectMeta } from './object-meta.ts';
import { buildAtSchema, identity, sampleReport, tempDir } from './test-support.ts';

const tmp = tempDir();
after(() => tmp.remove());

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const cpvPackages = [{ name: 'kubelet', version: '1.31.3', artifact: { url: 'https://x/a', sha256: 'a'.repeat(64), size: 1 } }];

/** A store at schema 9 (before object metadata) with one row of every kind. */
function oldStore(file: string): void {
  buildAtSchema(file, 9, (s) => {
    const { token } = s.createToken({ ttlMs: 60_000, maxUses: 2, description: 'old' });
    s.enroll({ token, identity: identity('node-1'), agentVersion: 't' });
    s.enroll({ token, identity: identity('node-2'), agentVersion: 't' });
    s.putClusterPackageVersion(cpvPackages);
    s.putClusterPackageVersion([{ ...cpvPackages[0]!, version: '1.31.4' }]); // generation 2
    s.addArtifact({ sha256: 'b'.repeat(64), package: 'kubelet', version: '1.31.4', size: 3, signature: null });
    s.createRollout({ name: 'r1', spec: { packages: [] }, state: { phase: 'Completed' } });
  });
  const db = new Database(file);
  db.prepare('INSERT INTO remediation_rules (name, object, updated_at) VALUES (?, ?, ?)').run('rule-1', '{"spec":{}}', 500);
  db.close();
}

test('migration 10 backfills uid, resourceVersion and generation for rows made by the older schema', () => {
  const file = tmp.file('old.db');
  oldStore(file);
  const s = openStore(file);
  try {
    const all: ObjectMeta[] = [];
    for (const kind of OBJECT_KINDS) {
      const metas = [...s.objectMetas(kind).values()];
      assert.ok(metas.length >= 1, kind);
      all.push(...metas);
    }
    assert.equal(all.length, 7); // a token, two machines, the CPV, an artifact, a rollout, a rule
    for (const m of all) assert.match(m.uid, UUID);
    assert.equal(new Set(all.map((m) => m.uid)).size, all.length, 'every uid differs');
    assert.equal(new Set(all.map((m) => m.resourceVersion)).size, all.length, 'every row its own resourceVersion');
    assert.ok(all.every((m) => /^[1-9]\d*$/.test(m.resourceVersion)));
    assert.equal(s.currentResourceVersion(), String(Math.max(...all.map((m) => Number(m.resourceVersion)))));
    assert.equal(s.getClusterPackageVersion()?.generation, 2, 'the CPV keeps its generation');
    assert.equal(s.objectMeta('rollout', 'r1')?.generation, 1);
    assert.equal(s.objectMeta('remediationrule', 'rule-1')?.createdAt, 500, 'a rule created before created_at existed: its update time');
  } finally {
    s.close();
  }
});

test('resourceVersion moves on every stored change, from one counter; last-seen-only writes do not move it', () => {
  let now = 10_000;
  const s = openStore(tmp.file('rv.db'), { now: () => now });
  try {
    const { token } = s.createToken({ ttlMs: 60_000, maxUses: 1, description: '' });
    s.enroll({ token, identity: identity('node-1'), agentVersion: 't' });
    const m0 = s.objectMeta('machine', 'node-1')!;
    assert.match(m0.uid, UUID);
    // Heartbeats: last-seen only.
    s.writeBatch({ lastSeen: [['node-1', 20_000]], statuses: [] });
    s.saveLastSeen([['node-1', 30_000]]);
    assert.deepEqual(s.objectMeta('machine', 'node-1'), m0);
    assert.equal(s.getMachine('node-1')?.lastSeenAt, 30_000);
    // A report moves it (the generation stays: status is not spec).
    now += 1;
    s.writeBatch({ lastSeen: [], statuses: [{ name: 'node-1', status: { report: sampleReport('node-1'), reportChangedAt: now, liveness: { state: 'Ready', since: now, reason: 'Reported', message: '' }, conditions: [], agentVersion: 't' }, observations: [] }] });
    const m1 = s.objectMeta('machine', 'node-1')!;
    assert.ok(Number(m1.resourceVersion) > Number(m0.resourceVersion));
    assert.equal(m1.generation, m0.generation);
    assert.equal(m1.uid, m0.uid);
    // A pin is spec: generation moves too.
    s.setPackageOverrides('node-1', { kubelet: { version: '1.31.2' } });
    const m2 = s.objectMeta('machine', 'node-1')!;
    assert.equal(m2.generation, m1.generation + 1);
    assert.ok(Number(m2.resourceVersion) > Number(m1.resourceVersion));
    assert.equal(s.currentResourceVersion(), m2.resourceVersion, 'the counter is store-wide');
    // Token use moved the token's version; a rule applied twice the same is one write.
    assert.equal(s.putRemediationRule('r', { spec: { a: 1 } }), true);
    const r0 = s.objectMeta('remediationrule', 'r')!;
    const tx = s.counters.transactions;
    assert.equal(s.putRemediationRule('r', { spec: { a: 1 } }), false);
    assert.deepEqual(s.objectMeta('remediationrule', 'r'), r0);
    assert.equal(s.putRemediationRule('r', { spec: { a: 2 } }), true);
    assert.equal(s.objectMeta('remediationrule', 'r')?.generation, r0.generation + 1);
    assert.ok(s.counters.transactions > tx);
    // The same artifact pushed again is no write.
    s.addArtifact({ sha256: 'c'.repeat(64), package: 'kubelet', version: '1.31.4', size: 3, signature: null });
    const a0 = s.objectMeta('artifact', 'c'.repeat(64))!;
    s.addArtifact({ sha256: 'c'.repeat(64), package: 'kubelet', version: '1.31.4', size: 3, signature: null });
    assert.deepEqual(s.objectMeta('artifact', 'c'.repeat(64)), a0);
    // Rollout spec updates move the generation; state saves only the resourceVersion.
    const created = s.createRollout({ name: 'r1', spec: { a: 1 }, state: { phase: 'Pending' } });
    assert.equal(created.meta?.generation, 1);
    s.saveRolloutState('r1', { phase: 'Canary' });
    const afterState = s.getRollout('r1')!.meta!;
    assert.equal(afterState.generation, 1);
    assert.notEqual(afterState.resourceVersion, created.meta?.resourceVersion);
    const updated = s.updateRolloutSpec('r1', { a: 2 });
    assert.equal(updated.meta?.generation, 2);
    s.deleteRollout('r1');
    assert.equal(s.objectMeta('rollout', 'r1'), null);
  } finally {
    s.close();
  }
});
