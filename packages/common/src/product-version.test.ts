import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageJsonVersion, readVersionFile } from './product-version.ts';

test('a VERSION file gives its first line when that is a version, else null', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nk-version-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'VERSION');
  assert.equal(readVersionFile(file), null, 'missing');
  writeFileSync(file, '0.3.1\nbuilt by ci\n');
  assert.equal(readVersionFile(file), '0.3.1');
  for (const bad of ['', '\n', '../../etc\n', '1.0 beta\n', `${'9'.repeat(65)}\n`]) {
    writeFileSync(file, bad);
    assert.equal(readVersionFile(file), null, JSON.stringify(bad));
  }
  assert.equal(readVersionFile(dir), null, 'a directory, not a file');
});

test('package.json gives its version, or null', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nk-version-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'package.json');
  writeFileSync(file, '{"version":"1.2.3"}');
  assert.equal(packageJsonVersion(file), '1.2.3');
  writeFileSync(file, '{"name":"x"}');
  assert.equal(packageJsonVersion(file), null);
  writeFileSync(file, '{not json');
  assert.equal(packageJsonVersion(file), null);
  assert.match(packageJsonVersion(new URL('../package.json', import.meta.url)) ?? '', /^\d+\.\d+\.\d+/);
});
