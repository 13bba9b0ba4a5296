/**
 * Error codes are listed once per package, in its `codes.ts` catalogue (packages/protocol,
 * packages/common, agent, coordinator; docs/style.md "Types and errors"), and documented
 * once, in docs/errors.md. This test reads the catalogues themselves and checks them both
 * ways against the docs, that no code has two owners, and (so a code cannot slip past a
 * catalogue) that a scan of every product source finds no NK_ code the catalogues lack.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO } from './harness/processes.ts';

const CODE = /\bNK_[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b/g;
const ONE_CODE = /^NK_[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$/;
/** Placeholders in comments, and environment variables of the agent's release launcher and tests, not codes. */
const NOT_CODES = new Set(['NK_CODE', 'NK_AGENT_INSTALL_DIR', 'NK_AGENT_TEST_SELF_UPGRADE_KILL']);
/** A package's catalogue: `<package>/src/codes.ts`. */
const CATALOGUE = /^(?:packages\/[^/]+|agent|coordinator)\/src\/codes\.ts$/;

const productFiles = (): string[] =>
  execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', 'packages', 'agent', 'coordinator'], { cwd: REPO, encoding: 'utf8' })
    .split('\n')
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));

/**
 * Each catalogue's codes, by file: the keys of an exported object keyed by codes (or
 * the values of one whose values are all codes, as the `XErrorCode` name tables are).
 */
async function catalogues(): Promise<Map<string, Map<string, string>>> {
  const found = new Map<string, Map<string, string>>();
  for (const file of productFiles().filter((f) => CATALOGUE.test(f))) {
    const mod = (await import(pathToFileURL(path.join(REPO, file)).href)) as Record<string, unknown>;
    const codes = new Map<string, string>();
    for (const value of Object.values(mod)) {
      if (typeof value !== 'object' || value === null) continue;
      const entries = Object.entries(value);
      if (entries.length > 0 && entries.every(([k]) => ONE_CODE.test(k))) for (const [k, v] of entries) codes.set(k, typeof v === 'string' ? v : JSON.stringify(v));
      else if (entries.length > 0 && entries.every(([, v]) => typeof v === 'string' && ONE_CODE.test(v))) for (const [, v] of entries) codes.set(v as string, '');
    }
    found.set(file, codes);
  }
  return found;
}

const catalogued = async (): Promise<Set<string>> => new Set([...(await catalogues()).values()].flatMap((c) => [...c.keys()]));

/** Every NK_ code written anywhere in the product sources (comments included), but in the catalogues themselves. */
function codesInSources(): Set<string> {
  const found = new Set<string>();
  for (const f of productFiles().filter((f) => !CATALOGUE.test(f))) {
    for (const m of readFileSync(path.join(REPO, f), 'utf8').matchAll(CODE)) if (!NOT_CODES.has(m[0])) found.add(m[0]);
  }
  return found;
}

const documented = () => new Set([...readFileSync(path.join(REPO, 'docs/errors.md'), 'utf8').matchAll(CODE)].map((m) => m[0]));

test('the four packages each have a catalogue, and each entry has a one-line meaning', async () => {
  const all = await catalogues();
  for (const file of ['packages/protocol/src/codes.ts', 'packages/common/src/codes.ts', 'agent/src/codes.ts', 'coordinator/src/codes.ts']) {
    assert.ok((all.get(file)?.size ?? 0) > 0, `${file} lists no code`);
    for (const [code, meaning] of all.get(file)!) assert.match(meaning, /^[^\n]{10,}$/, `${file}: ${code} needs a one-line meaning`);
  }
});

test('every catalogued code is documented in docs/errors.md', async () => {
  const docs = documented();
  const missing = [...(await catalogued())].filter((c) => !docs.has(c)).sort();
  assert.deepEqual(missing, [], `undocumented codes: ${missing.join(', ')}`);
});

test('every code docs/errors.md lists is in a catalogue', async () => {
  const listed = await catalogued();
  const stale = [...documented()].filter((c) => !listed.has(c)).sort();
  assert.deepEqual(stale, [], `documented but in no catalogue: ${stale.join(', ')}`);
});

test('no code is in two catalogues', async () => {
  const owners = new Map<string, string[]>();
  for (const [file, codes] of await catalogues()) for (const c of codes.keys()) owners.set(c, [...(owners.get(c) ?? []), file]);
  const twice = [...owners].filter(([, files]) => files.length > 1).map(([c, files]) => `${c} (${files.join(', ')})`);
  assert.deepEqual(twice, []);
});

test('a scan of the sources finds no code missing from the catalogues, and no catalogued code the sources never use', async () => {
  const listed = await catalogued();
  const used = codesInSources();
  assert.deepEqual([...used].filter((c) => !listed.has(c)).sort(), [], 'codes in the sources but in no catalogue');
  assert.deepEqual([...listed].filter((c) => !used.has(c)).sort(), [], 'catalogued codes no source uses');
});

test('the scans find codes (guards against a scan that silently matches nothing)', async () => {
  assert.ok(codesInSources().size > 150);
  assert.ok((await catalogued()).size > 150);
  assert.ok(documented().size > 150);
});

test('docs/protocol.md lists every WebSocket close code of the catalogue (wire.ts), and no other', async () => {
  const { CloseCode } = await import('../packages/protocol/src/index.ts');
  const protocolMd = readFileSync(path.join(REPO, 'docs/protocol.md'), 'utf8');
  const table = protocolMd.slice(protocolMd.indexOf('## Close codes'), protocolMd.indexOf('\n## ', protocolMd.indexOf('## Close codes') + 1));
  const documentedCodes = new Set([...table.matchAll(/^\| ([\d /]+) \|/gm)].flatMap((m) => m[1]!.split('/').map((c) => Number(c.trim()))));
  assert.deepEqual([...documentedCodes].sort(), Object.values(CloseCode).map(Number).sort());
});
