/**
 * nkctl's boundary: coordinator/src/cli/ takes the API's objects from the contract
 * (@nodekeeper/api) and talks to the coordinator over HTTP; it imports nothing else of
 * the coordinator's internals (coordinator/src/ outside cli/), except the few listed
 * below, each with its reason. An exception no longer needed must be removed, so the
 * list only shrinks. Static imports, re-exports and dynamic import() are all read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from './harness/processes.ts';

const SRC = path.join(REPO, 'coordinator/src');
const CLI = path.join(SRC, 'cli');

/** cli file -> the internals (paths under coordinator/src/) it may import, and why. */
const EXCEPTIONS: Readonly<Record<string, { readonly imports: readonly string[]; readonly why: string }>> = {
  'host-client.ts': {
    imports: ['host/cluster-status.ts', 'host/lease-liveness.ts', 'host/names.ts', 'host/kube-client.ts', 'host/host-admin.ts'],
    why: "nkctl's host commands act on the host cluster itself (install, member tokens, the Lease monitor) with the coordinator's own host code; this one module wraps all of it",
  },
  'backup-commands.ts': {
    imports: ['backup/manifest.ts', 'backup/verify.ts'],
    why: '`nkctl backup verify|download` checks an archive on the operator\'s disk with the very rules a restore applies',
  },
  'sign-statement.ts': { imports: ['packages/manifests.ts'], why: 'a signed install statement names the built-in manifest the coordinator will send' },
  'main.ts': { imports: ['version.ts'], why: 'nkctl ships in the coordinator package and reports its version' },
};
/**
 * Tests may hold nkctl against the server's own code: objects built by its builders (from
 * the store records of api/test-support.ts), bodies checked by its validation, manifests
 * as it has them built in.
 */
const TEST_MAY_IMPORT = ['api/objects.ts', 'api/test-support.ts', 'rollout/spec.ts', 'packages/manifests.ts'];

/** Every module specifier a file imports, re-exports or import()s. */
export function specifiers(source: string): string[] {
  return [...source.matchAll(/(?:^|[^\w.])(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]|(?:^|[^\w.])import\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s+['"]([^'"]+)['"]/gm)]
    .map((m) => m[1] ?? m[2] ?? m[3]!);
}

/** The internals (relative to coordinator/src/) a cli file imports. */
function internals(file: string): string[] {
  const from = path.join(CLI, file);
  return specifiers(readFileSync(from, 'utf8'))
    .filter((s) => s.startsWith('.'))
    .map((s) => path.relative(SRC, path.resolve(path.dirname(from), s)))
    .filter((rel) => !rel.startsWith('..') && !rel.startsWith(`cli${path.sep}`));
}

test('the import reader sees static, type-only, re-exported and dynamic imports', () => {
  const src = [
    "import { a } from '../x/a.ts';",
    "import type { B } from \"../x/b.ts\";",
    "export { c } from '../x/c.ts';",
    "export type { D } from '../x/d.ts';",
    'const e = () => import(\'../x/e.ts\');',
    "import '../x/f.ts';",
    "import {\n  g,\n  h,\n} from '../x/g.ts';",
    "// a comment mentioning from 'nowhere' is not an import",
  ].join('\n');
  assert.deepEqual(specifiers(src), ['../x/a.ts', '../x/b.ts', '../x/c.ts', '../x/d.ts', '../x/e.ts', '../x/f.ts', '../x/g.ts']);
});

test('coordinator/src/cli imports nothing from the coordinator but the contract, except the listed exceptions', () => {
  const files = readdirSync(CLI).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length > 20, `found only ${files.length} files in ${CLI}`);
  const problems: string[] = [];
  for (const f of files) {
    const allowed = new Set([...(EXCEPTIONS[f]?.imports ?? []), ...(f.endsWith('.test.ts') ? TEST_MAY_IMPORT : [])]);
    for (const rel of internals(f)) {
      if (!allowed.has(rel.split(path.sep).join('/'))) problems.push(`cli/${f} imports coordinator/src/${rel}: take the type from @nodekeeper/api, or move the pure piece into a package`);
    }
  }
  assert.deepEqual(problems, []);
});

test('every exception is still needed (the list only shrinks)', () => {
  const stale: string[] = [];
  for (const [f, e] of Object.entries(EXCEPTIONS)) {
    if (!existsSync(path.join(CLI, f))) {
      stale.push(`cli/${f} is gone: remove it from EXCEPTIONS`);
      continue;
    }
    const used = new Set(internals(f).map((r) => r.split(path.sep).join('/')));
    for (const i of e.imports) if (!used.has(i)) stale.push(`cli/${f} no longer imports ${i}: remove it from EXCEPTIONS`);
  }
  assert.deepEqual(stale, []);
});
