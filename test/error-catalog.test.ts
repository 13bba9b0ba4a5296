/**
 * Every NK_ code the product code can produce is documented in docs/errors.md, and the
 * catalog lists nothing the code no longer uses (fastify keeps the same discipline).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from './harness/processes.ts';

const CODE = /\bNK_[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b/g;
/** Placeholders in comments, and environment variables of the agent's release launcher and tests, not codes. */
const NOT_CODES = new Set(['NK_CODE', 'NK_AGENT_INSTALL_DIR', 'NK_AGENT_TEST_SELF_UPGRADE_KILL']);

function codesInSources(): Set<string> {
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', 'packages', 'agent', 'coordinator'], { cwd: REPO, encoding: 'utf8' })
    .split('\n')
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
  const found = new Set<string>();
  for (const f of files) for (const m of readFileSync(path.join(REPO, f), 'utf8').matchAll(CODE)) if (!NOT_CODES.has(m[0])) found.add(m[0]);
  return found;
}

const documented = () => new Set([...readFileSync(path.join(REPO, 'docs/errors.md'), 'utf8').matchAll(CODE)].map((m) => m[0]));

test('every error code in the code is documented in docs/errors.md', () => {
  const missing = [...codesInSources()].filter((c) => !documented().has(c)).sort();
  assert.deepEqual(missing, [], `undocumented codes: ${missing.join(', ')}`);
});

test('docs/errors.md lists no code the code does not use', () => {
  const used = codesInSources();
  const stale = [...documented()].filter((c) => !used.has(c)).sort();
  assert.deepEqual(stale, [], `documented but unused: ${stale.join(', ')}`);
});

test('the scan finds codes (guards against a scan that silently matches nothing)', () => {
  assert.ok(codesInSources().size > 40);
});
