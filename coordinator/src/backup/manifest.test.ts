import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AppError } from '@nodekeeper/common';
import { listingProblem, parseManifest, snapshotName, snapshotsToPrune, type BackupManifest } from './manifest.ts';

const SHA = 'a'.repeat(64);
const manifest = (files: Array<{ path: string; size: number }> = [{ path: 'state.db', size: 10 }, { path: 'pki/ca.crt', size: 3 }, { path: 'pki/ca.key', size: 4 }]): BackupManifest => ({
  kind: 'NodekeeperCoordinatorBackup', formatVersion: 1, createdAt: '2026-12-03T11:00:00.000Z', coordinatorVersion: '0.2.0', schemaVersion: 7, reason: 'manual',
  files: files.map((f) => ({ ...f, sha256: SHA })),
});
const refused = (m: unknown, re: RegExp) =>
  assert.throws(() => parseManifest(JSON.stringify(m)), (e: unknown) => e instanceof AppError && e.code === 'NK_BACKUP_MANIFEST_INVALID' && re.test(e.message));

test('a manifest is parsed only when it is ours and lists only what a backup holds', () => {
  assert.deepEqual(parseManifest(JSON.stringify(manifest())), manifest());
  assert.throws(() => parseManifest('{'), /not JSON/);
  refused({ ...manifest(), kind: 'Other' }, /not a nodekeeper coordinator backup/);
  refused({ ...manifest(), formatVersion: 2 }, /format 2 is not supported/);
  refused({ ...manifest(), schemaVersion: 0 }, /schemaVersion/);
  refused({ ...manifest(), reason: 'whim' }, /reason/);
  for (const p of ['../etc/passwd', '/etc/passwd', 'pki/../../x', 'artifacts/sha256/zz', 'nkctl.yaml', 'backups/x.tar.gz', 'state.db-wal']) {
    refused(manifest([{ path: 'state.db', size: 1 }, { path: p, size: 1 }]), /not a file a backup holds/);
  }
  refused(manifest([{ path: 'state.db', size: 1 }, { path: 'state.db', size: 1 }]), /twice/);
  refused(manifest([{ path: 'pki/ca.crt', size: 1 }]), /no state\.db/);
  refused(manifest([{ path: 'state.db', size: 1 }, { path: 'pki/ca.key', size: 1 }]), /half a CA/);
  refused({ ...manifest(), files: [{ path: 'state.db', size: -1, sha256: SHA }] }, /size/);
  refused({ ...manifest(), files: [{ path: 'state.db', size: 1, sha256: 'x' }] }, /sha256/);
});

test('the listing must be exactly the manifest: regular files of its sizes, each once', () => {
  const m = manifest();
  const good = [{ path: 'manifest.json', type: 'File', size: 100 }, ...m.files.map((f) => ({ path: f.path, type: 'File', size: f.size }))];
  assert.equal(listingProblem(m, good), null);
  assert.equal(listingProblem(m, [{ path: 'pki/', type: 'Directory', size: 0 }, ...good]), null);
  assert.match(listingProblem(m, [...good, { path: 'pki/ca.key', type: 'File', size: 4 }]) ?? '', /twice/);
  assert.match(listingProblem(m, good.map((e) => (e.path === 'pki/ca.key' ? { ...e, type: 'SymbolicLink' } : e))) ?? '', /SymbolicLink/);
  assert.match(listingProblem(m, good.map((e) => (e.path === 'state.db' ? { ...e, size: 11 } : e))) ?? '', /11 bytes in the archive, 10 in the manifest/);
  assert.match(listingProblem(m, good.filter((e) => e.path !== 'pki/ca.crt')) ?? '', /missing from the archive/);
  assert.match(listingProblem(m, [...good, { path: 'x/../evil', type: 'File', size: 1 }]) ?? '', /not listed/);
  assert.match(listingProblem(m, [...good, { path: 'etc', type: 'Directory', size: 0 }]) ?? '', /Directory/);
});

test('pruning keeps the newest `keep` snapshots and never touches other files', () => {
  const name = fc.oneof(
    fc.date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2040-01-01T00:00:00Z'), noInvalidDate: true }).map(snapshotName),
    fc.constantFrom('notes.txt', 'nodekeeper-backup-manual.tar.gz', '.nodekeeper-backup-20261203T110000Z.tar.gz.partial-0a1b2c3d', 'pre-migration-6-7-20261203T110000Z.tar.gz'),
  );
  fc.assert(fc.property(fc.uniqueArray(name, { maxLength: 30 }), fc.integer({ min: 1, max: 10 }), (names, keep) => {
    const gone = snapshotsToPrune(names, keep);
    const snaps = names.filter((n) => /^nodekeeper-backup-\d{8}T\d{6}Z\.tar\.gz$/.test(n)).sort();
    assert.deepEqual(gone, snaps.slice(0, Math.max(0, snaps.length - keep)));
    const kept = snaps.filter((n) => !gone.includes(n));
    assert.equal(kept.length, Math.min(keep, snaps.length));
    for (const g of gone) for (const k of kept) assert.ok(g < k, 'only older ones go');
  }));
  assert.throws(() => snapshotsToPrune([], 0), RangeError);
  assert.equal(snapshotName(new Date('2026-12-03T11:05:09.123Z')), 'nodekeeper-backup-20261203T110509Z.tar.gz');
});
