/**
 * The domain model's boundary (issue 14, item 5): the pure decision modules take their
 * types from model/, never from the store, so a decision can be read, tested and moved
 * without the SQLite layer; and model/ itself imports nothing of the coordinator's.
 * Imports are read with TypeScript's own pre-processor (static, dynamic and type-only).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Pure decision modules: whole directories, and single files of directories that also hold I/O. */
const PURE_DIRS = ['budget', 'model', 'rollout', 'remediation'];
const PURE_FILES = ['fleet/liveness.ts', 'fleet/conditions.ts', 'fleet/merge-report.ts', 'convergence/planner.ts', 'convergence/types.ts', 'convergence/status.ts', 'convergence/summary.ts'];

function sources(dir: string): string[] {
  return readdirSync(join(SRC, dir)).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts')).map((f) => `${dir}/${f}`);
}

/** The coordinator-relative paths a file imports (packages and node: modules left out). */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(join(SRC, file), 'utf8'), true, true);
  return info.importedFiles.map((i) => i.fileName).filter((n) => n.startsWith('.')).map((n) => relative(SRC, resolve(SRC, dirname(file), n)));
}

const pure = [...PURE_DIRS.flatMap(sources), ...PURE_FILES];

test('the pure decision modules import nothing from store/', () => {
  assert.ok(pure.length > 20, `found ${pure.length} files: the scan must see the modules it guards`);
  const bad = pure.flatMap((f) => importsOf(f).filter((i) => i.startsWith('store/')).map((i) => `${f} -> ${i}`));
  assert.deepEqual(bad, []);
});

test('model/ imports only model/', () => {
  const bad = sources('model').flatMap((f) => importsOf(f).filter((i) => !i.startsWith('model/')).map((i) => `${f} -> ${i}`));
  assert.deepEqual(bad, []);
});
