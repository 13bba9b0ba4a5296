/**
 * The fleet page's bundle takes the contract's types and its label selector, and nothing
 * else of it: `import type` is erased and @nodekeeper/api/selector is TypeBox-free, so
 * the schema library never reaches the browser. One esbuild run into a temp directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildUi } from '../scripts/lib/ui.ts';

test("the page's bundle carries the contract's label selector and no TypeBox", async () => {
  const out = await mkdtemp(path.join(tmpdir(), 'nk-ui-bundle-'));
  try {
    assert.equal(await buildUi(out, true), true);
    const assets = await readdir(path.join(out, 'assets'));
    const js = assets.filter((f) => f.endsWith('.js'));
    assert.equal(js.length, 1, assets.join(' '));
    const code = await readFile(path.join(out, 'assets', js[0]!), 'utf8');
    // The selector's own message: the page parses filters with the contract's parser.
    assert.match(code, /cannot combine ! with an operator/);
    // TypeBox marks every schema with Symbol.for('TypeBox.Kind'); the string survives minifying.
    assert.doesNotMatch(code, /TypeBox|sinclair/);
    // Before the page took the contract it was 49 kB; the selector adds about 1.4 kB.
    assert.ok(code.length < 60_000, `the page's script is ${code.length} bytes`);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
