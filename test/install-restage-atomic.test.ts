/**
 * Re-staging the active version (a repair: its files were damaged) is atomic: at no
 * moment does `current` lead to a missing or half-written directory. A separate process
 * reads files of the active version through `current` in a tight loop while the version
 * is damaged and re-staged again and again; it must never miss one of the files the
 * repair leaves alone. (Before the fix the old directory was removed, then the new one
 * renamed in: the reader saw the gap.)
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { PackageManifest } from '../packages/protocol/src/index.ts';
import { installParams, serveArtifacts, type ArtifactServer } from './harness/artifacts.ts';
import { hostileTar, type TarEntry } from './harness/hostile-tar.ts';
import { packagePaths, testNode } from './fixtures/install-node.ts';

let work: string | undefined;
let server: ArtifactServer | undefined;
after(async () => {
  await server?.close();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

const V = '1.31.2';
const FILES = 200;
const ROUNDS = 5;
const manifest: PackageManifest = { name: 'kubelet', format: 'tar.gz', links: [{ path: '/usr/bin/kubelet', target: 'kubelet' }], service: null, healthProbe: 'none', healthTimeoutMs: 1000 };

/** Reads `dir/m/f*` in a loop until `stop` exists; prints how many reads failed, and of how many. */
const READER = `
const fs = require('node:fs');
const [dir, stop, files] = process.argv.slice(1);
let misses = 0, reads = 0, i = 0;
while (!fs.existsSync(stop)) {
  for (let k = 0; k < 50; k++) {
    reads++;
    try { fs.statSync(dir + '/m/f' + (i++ % Number(files))); } catch { misses++; }
  }
}
process.stdout.write(JSON.stringify({ misses, reads }));
`;

test('the active version re-staged again and again: `current` never leads to a missing file', async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'nk-restage-'));
  const entries: TarEntry[] = [{ name: 'kubelet', body: '#!/bin/sh\n', mode: 0o755 }, { name: 'm', type: '5' }];
  for (let i = 0; i < FILES; i++) entries.push({ name: `m/f${i}`, body: `file ${i}\n` });
  await mkdir(path.join(work, 'art'));
  const art = await hostileTar(path.join(work, 'art'), 'k.tgz', entries);
  server = await serveArtifacts({ '/k.tgz': art.file });
  const hostRoot = path.join(work, 'root');
  const node = testNode({ hostRoot, stateDir: path.join(work, 'state') });
  const params = installParams(manifest, V, art, server.url('/k.tgz'));
  const first = await node.executor.runInstall('i-0', params);
  assert.equal(first.ok, true, JSON.stringify(first));

  const { current, versions } = packagePaths(hostRoot, 'kubelet');
  const stop = path.join(work, 'stop');
  const reader = spawn(process.execPath, ['-e', READER, current, stop, String(FILES)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  reader.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((resolve) => reader.on('exit', () => resolve()));
  try {
    for (let r = 1; r <= ROUNDS; r++) {
      await unlink(path.join(versions, V, 'kubelet'));
      const res = await node.executor.runInstall(`i-${r}`, params);
      assert.equal(res.result?.['outcome'], 'installed', JSON.stringify(res));
    }
  } finally {
    await writeFile(stop, '');
    await exited;
  }
  const { misses, reads } = JSON.parse(out) as { misses: number; reads: number };
  assert.ok(reads > 1000, `the reader ran (${reads} reads)`);
  assert.equal(misses, 0, `${misses} of ${reads} reads through current found nothing`);
});
