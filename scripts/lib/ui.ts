/**
 * Builds the fleet page (coordinator/ui/src, Preact; docs/ui.md) with esbuild into
 * coordinator/ui/dist/: index.html plus content-hashed assets/ the coordinator serves at
 * /ui/ (coordinator/src/ui/static-files.ts). Skipped when the sources, the lockfile and
 * esbuild are those of the last build (the hash is kept in dist/.source-hash), like the
 * other built things. scripts/lib/env.sh runs it from scripts/setup, test and demo;
 * scripts/release.ts calls buildUi() into the coordinator tarball's lib/ui/.
 *
 *   node scripts/lib/ui.ts [--out DIR] [--force]
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { build, version as esbuildVersion } from 'esbuild';

const REPO = path.resolve(import.meta.dirname, '../..');
export const UI_SRC = path.join(REPO, 'coordinator/ui/src');
export const UI_DIST = path.join(REPO, 'coordinator/ui/dist');
/** Workspace sources the page imports: the contract (@nodekeeper/api/selector is bundled, its types are read). */
const UI_WORKSPACE_SRC = [path.join(REPO, 'packages/api/src')];

/** Every file under a directory, sorted, relative to it. */
function files(dir: string, rel = ''): string[] {
  return readdirSync(path.join(dir, rel), { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((e) => (e.isDirectory() ? files(dir, path.join(rel, e.name)) : [path.join(rel, e.name)]));
}

/** The hash of what the build depends on: sources (tests excluded), the contract's, lockfile, esbuild. */
export function sourceHash(): string {
  const h = createHash('sha256').update(`esbuild ${esbuildVersion}\n`);
  for (const dir of [UI_SRC, ...UI_WORKSPACE_SRC]) {
    for (const f of files(dir).filter((f) => !f.endsWith('.test.ts'))) h.update(`${path.relative(REPO, path.join(dir, f))}\n`).update(readFileSync(path.join(dir, f)));
  }
  h.update(readFileSync(path.join(REPO, 'pnpm-lock.yaml')));
  return h.digest('hex');
}

const page = (js: string, css: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>nodekeeper fleet</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="./${css}">
<script type="module" src="./${js}"></script>
</head>
<body><div id="app"></div></body>
</html>
`;

/** Builds into `out` (emptied first) unless its stamp says the sources are unchanged; returns whether it built. */
export async function buildUi(out: string = UI_DIST, force = false): Promise<boolean> {
  const want = sourceHash();
  const stamp = path.join(out, '.source-hash');
  if (!force && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === want && existsSync(path.join(out, 'index.html'))) return false;
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  const result = await build({
    absWorkingDir: REPO,
    entryPoints: { app: path.join(UI_SRC, 'main.tsx') },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome110', 'firefox115', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: true,
    sourcemap: false,
    legalComments: 'eof',
    entryNames: 'assets/[name]-[hash]',
    assetNames: 'assets/[name]-[hash]',
    outdir: out,
    metafile: true,
    logLevel: 'warning',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const outputs = Object.keys(result.metafile.outputs).map((o) => path.relative(out, path.resolve(REPO, o)));
  const js = outputs.find((o) => o.endsWith('.js'));
  const css = outputs.find((o) => o.endsWith('.css'));
  if (js === undefined || css === undefined) throw new Error(`the fleet page build made no ${js === undefined ? 'script' : 'stylesheet'}: ${outputs.join(', ')}`);
  await writeFile(path.join(out, 'index.html'), page(js, css));
  await writeFile(stamp, `${want}\n`);
  return true;
}

if (import.meta.filename === process.argv[1]) {
  const { values } = parseArgs({ options: { out: { type: 'string' }, force: { type: 'boolean' } } });
  const out = path.resolve(values.out ?? UI_DIST);
  const built = await buildUi(out, values.force === true);
  if (built) process.stderr.write(`==> fleet page built into ${path.relative(process.cwd(), out) || '.'}\n`);
}
