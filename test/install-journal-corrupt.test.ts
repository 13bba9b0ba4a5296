/**
 * A corrupt install journal record (a torn write, a disk fault, a hand edit) stops only
 * its own command: the record is moved to journal/quarantine, the command is answered
 * NK_INSTALL_JOURNAL_CORRUPT (a result the coordinator sees), and the recovery of every
 * other unfinished install goes on. Real journal, command store, installer, executor.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { PackageManifest } from '../packages/protocol/src/index.ts';
import { testNode } from './fixtures/install-node.ts';

let work: string | undefined;
after(() => (work === undefined ? undefined : rm(work, { recursive: true, force: true })));

const manifest: PackageManifest = { name: 'kubelet', format: 'tar.gz', links: [{ path: '/usr/bin/kubelet', target: 'kubelet' }], service: null, healthProbe: 'none', healthTimeoutMs: 1000 };

test('a corrupt journal record is quarantined and answered; the other journals are recovered', async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'nk-journal-corrupt-'));
  const node = testNode({ hostRoot: path.join(work, 'root'), stateDir: path.join(work, 'state') });
  const params = { package: 'kubelet', version: '1.31.2', artifact: { url: 'http://127.0.0.1:1/k.tgz', sha256: 'a'.repeat(64), size: 10 }, manifest };
  // Two installs a kill interrupted during download, and one record torn in half between them.
  await node.journal.enter({ commandId: 'c-1', params, previousVersion: null }, null, 'download');
  await node.journal.enter({ commandId: 'c-2', params, previousVersion: null }, null, 'download');
  await node.journal.enter({ commandId: 'c-3', params: { ...params, package: 'containerd', manifest: { ...manifest, name: 'containerd', links: [{ path: '/usr/bin/containerd', target: 'containerd' }] } }, previousVersion: null }, null, 'download');
  await writeFile(path.join(node.journal.dir, 'c-2.json'), '{"commandId": "c-2", "par');
  // A record that parses but is not a record at all.
  await writeFile(path.join(node.journal.dir, 'c-4.json'), '[1, 2, 3]\n');

  await node.executor.recover();

  const code = async (id: string) => (await node.store.get(id))?.frame.error?.code;
  assert.equal(await code('c-1'), 'NK_INSTALL_INTERRUPTED', 'recovered before the corrupt record');
  assert.equal(await code('c-3'), 'NK_INSTALL_INTERRUPTED', 'recovered after the corrupt record');
  assert.equal(await code('c-2'), 'NK_INSTALL_JOURNAL_CORRUPT');
  assert.equal(await code('c-4'), 'NK_INSTALL_JOURNAL_CORRUPT');
  assert.match((await node.store.get('c-2'))?.frame.error?.message ?? '', /quarantine/);
  assert.deepEqual(node.sent.map((f) => f.commandId).sort(), ['c-1', 'c-2', 'c-3', 'c-4'], 'every command answered');
  assert.deepEqual((await readdir(node.journal.dir)).filter((n) => n.endsWith('.json')), [], 'no record left to trip the next start');
  const quarantined = await readdir(path.join(node.journal.dir, 'quarantine'));
  assert.equal(quarantined.length, 2);
  const kept = await readFile(path.join(node.journal.dir, 'quarantine', quarantined.find((n) => n.startsWith('c-2'))!), 'utf8');
  assert.equal(kept, '{"commandId": "c-2", "par', 'kept as it was, for a human');
});
