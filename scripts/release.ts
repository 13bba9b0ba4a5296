/**
 * scripts/release: builds the release tarballs (run it through scripts/release, which
 * provisions the toolchain and the target Nodes first). Layout and verification are
 * described in docs/install-agent.md ("Releases"); in short, per arch:
 *
 *   nodekeeper-agent-<version>-linux-<arch>.tar.gz        VERSION, bin/nodekeeper-agent,
 *       node/bin/node, node/LICENSE, lib/nodekeeper-agent.mjs, lib/chunks/*.mjs (code
 *       loaded only when used: installs, a host without os-release), systemd/*, install-agent
 *   nodekeeper-coordinator-<version>-linux-<arch>.tar.gz  VERSION, bin/nodekeeper-coordinator,
 *       bin/nkctl, node/, lib/{nodekeeper-coordinator,nkctl}.mjs, lib/better-sqlite3-linux-<arch>.node,
 *       lib/crds.yaml, lib/ui/ (the fleet page), systemd/nodekeeper-coordinator.service, install-coordinator
 *   SHA256SUMS (+ SHA256SUMS.sig and nodekeeper-release.pub with --signing-key)
 *
 * Reproducible: same commit, same bytes (scripts/lib/release-archive.ts).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, cp, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { build, type Plugin } from 'esbuild';
import { AGENT_NODE_FLAGS, COORDINATOR_NODE_FLAGS } from './lib/node-flags.ts';
import { buildUi } from './lib/ui.ts';
import { checkElfArch, loadSigningKey, normaliseTree, packTarball, ReleaseError, sha256File, sha256sums, signSums } from './lib/release-archive.ts';

const REPO = path.resolve(import.meta.dirname, '..');
const ARCHES = ['x64', 'arm64'] as const;
type Arch = (typeof ARCHES)[number];

const USAGE = `Usage: scripts/release [--arch x64|arm64|all] [--signing-key FILE] [--out DIR]

Builds the agent and coordinator release tarballs for linux, reproducibly.
  --arch ARCH          x64, arm64 or all (default all)
  --signing-key FILE   ed25519 private key (PKCS#8 PEM): also writes SHA256SUMS.sig
                       (base64) and nodekeeper-release.pub (the public key, SPKI PEM)
  --out DIR            output directory (default dist/ in the checkout)
  -h, --help           this text
Set SOURCE_DATE_EPOCH to pin the timestamps; the default is the HEAD commit's time.
`;

const say = (msg: string) => process.stderr.write(`==> ${msg}\n`);

/** The bundles' shared prelude: CommonJS dependencies inside an ESM file need require and __dirname. */
const BANNER = [
  "import { createRequire as __nkCreateRequire } from 'node:module';",
  "import { fileURLToPath as __nkFileURLToPath } from 'node:url';",
  "import { dirname as __nkDirname } from 'node:path';",
  'const require = __nkCreateRequire(import.meta.url);',
  'const __filename = __nkFileURLToPath(import.meta.url);',
  'const __dirname = __nkDirname(__filename);',
].join('\n');

/** A POSIX sh launcher that runs `bundle` with the release's own Node. */
function launcher(what: string, bundle: string, nodeFlags: string, exportInstallDir: string | null): string {
  return [
    '#!/bin/sh',
    `# ${what} launcher: the Node shipped in this release running the bundled ${what}.`,
    '# readlink -f: the real directory, also when started through a `current` symlink.',
    'here="$(dirname "$(readlink -f "$0")")"',
    ...(exportInstallDir !== null ? [`# The agent reports the version in $${exportInstallDir}/VERSION (docs/install-agent.md).`, `${exportInstallDir}="$(dirname "$here")"`, `export ${exportInstallDir}`] : []),
    `exec "$here/../node/bin/node" ${nodeFlags}"$here/../lib/${bundle}" "$@"`,
    '',
  ].join('\n');
}

interface Options {
  readonly arches: readonly Arch[];
  readonly signingKey: string | null;
  readonly out: string;
}

function parseOptions(argv: readonly string[]): Options | 'help' {
  let values;
  try {
    ({ values } = parseArgs({ args: [...argv], strict: true, allowPositionals: false, options: { arch: { type: 'string', default: 'all' }, 'signing-key': { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help';
  const arch = values.arch;
  if (arch !== 'all' && !(ARCHES as readonly string[]).includes(arch)) throw new UsageError(`--arch must be x64, arm64 or all, got '${arch}'`);
  return {
    arches: arch === 'all' ? ARCHES : [arch as Arch],
    signingKey: values['signing-key'] ?? null,
    out: path.resolve(values.out ?? path.join(REPO, 'dist')),
  };
}

class UsageError extends Error {}

/** SOURCE_DATE_EPOCH, else the HEAD commit's time: the one timestamp every entry gets. */
function sourceDateEpoch(): number {
  const env = process.env['SOURCE_DATE_EPOCH'];
  if (env !== undefined && env !== '') {
    if (!/^\d{1,12}$/.test(env)) throw new ReleaseError(`SOURCE_DATE_EPOCH must be seconds since 1970, got '${env}'`);
    return Number(env);
  }
  try {
    return Number(execFileSync('git', ['-C', REPO, 'log', '-1', '--format=%ct'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    throw new ReleaseError('not a git checkout: set SOURCE_DATE_EPOCH to pin the release timestamps');
  }
}

/** Where scripts/release put node-linux-<arch> (the npm package's content). */
function nodeDir(arch: Arch): string {
  const cache = process.env['NK_RELEASE_NODE_CACHE'];
  const version = process.env['NK_NODE_VERSION'];
  if (cache === undefined || version === undefined) throw new ReleaseError('run scripts/release (it fetches Node for each arch), not scripts/release.ts');
  return path.join(cache, `v${version}-linux-${arch}`);
}

/** Resolves the bare `better-sqlite3` import to its entry for one arch, which requires that arch's prebuilt addon. */
function sqliteForArch(arch: Arch): Plugin {
  return {
    name: 'better-sqlite3-arch',
    setup(b) {
      b.onResolve({ filter: /^better-sqlite3$/ }, (args) => b.resolve(`better-sqlite3/linux-${arch}`, { kind: args.kind, resolveDir: args.resolveDir }));
    },
  };
}

/** nkctl's entry: coordinator/bin/nkctl minus its old-Node fallback (the release ships Node 24). */
const nkctlEntry: Plugin = {
  name: 'nkctl-entry',
  setup(b) {
    b.onResolve({ filter: /^nk-entry:nkctl$/ }, () => ({ path: 'nkctl', namespace: 'nk-entry' }));
    b.onLoad({ filter: /.*/, namespace: 'nk-entry' }, () => ({ contents: "import { run } from './coordinator/src/cli/main.ts';\nawait run();\n", resolveDir: REPO, loader: 'ts' }));
  },
};

const common = { bundle: true, platform: 'node', format: 'esm', target: 'node24', banner: { js: BANNER }, legalComments: 'eof', logLevel: 'warning', absWorkingDir: REPO } as const;

/**
 * The agent's bundle, built for a small resident footprint (bench/README.md, "Agent
 * footprint"): V8 keeps the source of every script it loads, so what is dynamically
 * imported (tar for installs, systeminformation for a host without os-release) is split
 * into lib/chunks/ and read only when used; whitespace and syntax are minified (names
 * kept, so stack traces and logged error types still read), which also shrinks the
 * line-ends table V8 builds for stack traces.
 */
async function bundleAgent(outDir: string): Promise<void> {
  await build({
    ...common,
    entryPoints: { 'nodekeeper-agent': 'agent/src/main.ts' },
    outdir: outDir,
    outExtension: { '.js': '.mjs' },
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    minifyWhitespace: true,
    minifySyntax: true,
    keepNames: true,
  });
  // What loads at start: the entry and the chunks it imports statically.
  const entry = path.join(outDir, 'nodekeeper-agent.mjs');
  const atStart = [entry, ...[...(await readFile(entry, 'utf8')).matchAll(/\bfrom\s*"(\.\/chunks\/[^"]+)"/g)].map((m) => path.join(outDir, m[1]!))];
  for (const f of atStart) await assertAscii(f);
}

/**
 * Node decodes a script with any non-ASCII byte into a two-byte string: one such
 * character (esbuild leaves them in regular expressions) doubles the memory the whole
 * source takes for as long as the agent runs.
 */
async function assertAscii(file: string): Promise<void> {
  const bytes = await readFile(file);
  const at = bytes.findIndex((b) => b > 0x7f);
  if (at >= 0) {
    const line = bytes.subarray(0, at).toString('latin1').split('\n').length;
    throw new ReleaseError(`${path.relative(REPO, file)} has a non-ASCII byte at line ${line}: escape it in the source (\\uXXXX), or V8 keeps the whole bundle as a two-byte string`);
  }
}

async function bundleCoordinator(outDir: string, arch: Arch): Promise<void> {
  await build({
    ...common,
    entryPoints: { 'nodekeeper-coordinator': 'coordinator/src/main.ts', nkctl: 'nk-entry:nkctl' },
    outdir: outDir,
    outExtension: { '.js': '.mjs' },
    plugins: [sqliteForArch(arch), nkctlEntry],
    loader: { '.node': 'copy' },
    assetNames: 'better-sqlite3-[name]',
  });
  await checkElfArch(path.join(outDir, `better-sqlite3-linux-${arch}.node`), arch);
  // `nkctl host install` applies these CRDs (coordinator/src/host/host-admin.ts finds them here).
  await copyFile(path.join(REPO, 'coordinator/deploy/host/crds.yaml'), path.join(outDir, 'crds.yaml'));
  // The fleet page, served at /ui/ (coordinator/src/ui/static-files.ts looks in lib/ui/).
  // Built afresh into the stage (no stamp file there): the tarball never depends on a stale dist/.
  await buildUi(path.join(outDir, 'ui'), true);
  await rm(path.join(outDir, 'ui/.source-hash'));
}

async function copyNode(dest: string, arch: Arch): Promise<void> {
  const src = nodeDir(arch);
  await mkdir(path.join(dest, 'node/bin'), { recursive: true });
  await copyFile(path.join(src, 'bin/node'), path.join(dest, 'node/bin/node'));
  await checkElfArch(path.join(dest, 'node/bin/node'), arch);
  await copyFile(path.join(src, 'LICENSE'), path.join(dest, 'node/LICENSE'));
}

async function stageAgent(dest: string, arch: Arch, version: string, agentLib: string): Promise<void> {
  await writeFile(path.join(dest, 'VERSION'), `${version}\n`);
  await copyNode(dest, arch);
  await cp(agentLib, path.join(dest, 'lib'), { recursive: true });
  await mkdir(path.join(dest, 'bin'));
  await writeFile(path.join(dest, 'bin/nodekeeper-agent'), launcher('nodekeeper-agent', 'nodekeeper-agent.mjs', `${AGENT_NODE_FLAGS} `, 'NK_AGENT_INSTALL_DIR'), { mode: 0o755 });
  await cp(path.join(REPO, 'agent/systemd'), path.join(dest, 'systemd'), { recursive: true });
  await copyFile(path.join(REPO, 'scripts/install-agent'), path.join(dest, 'install-agent'));
}

/** What of the coordinator's install kit exists in this checkout (helper "backup" adds it). */
const COORDINATOR_KIT = [
  { from: 'coordinator/systemd/nodekeeper-coordinator.service', to: 'systemd/nodekeeper-coordinator.service' },
  { from: 'scripts/install-coordinator', to: 'install-coordinator' },
] as const;

async function stageCoordinator(dest: string, arch: Arch, version: string): Promise<string[]> {
  const notes: string[] = [];
  await writeFile(path.join(dest, 'VERSION'), `${version}\n`);
  await copyNode(dest, arch);
  await bundleCoordinator(path.join(dest, 'lib'), arch);
  await mkdir(path.join(dest, 'bin'));
  await writeFile(path.join(dest, 'bin/nodekeeper-coordinator'), launcher('nodekeeper-coordinator', 'nodekeeper-coordinator.mjs', `${COORDINATOR_NODE_FLAGS} `, null), { mode: 0o755 });
  await writeFile(path.join(dest, 'bin/nkctl'), launcher('nkctl', 'nkctl.mjs', '', null), { mode: 0o755 });
  for (const k of COORDINATOR_KIT) {
    if (!existsSync(path.join(REPO, k.from))) {
      notes.push(`${k.from} does not exist in this checkout: not shipped`);
      continue;
    }
    await mkdir(path.dirname(path.join(dest, k.to)), { recursive: true });
    await copyFile(path.join(REPO, k.from), path.join(dest, k.to));
  }
  return notes;
}

async function main(): Promise<number> {
  let opts;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`release: ${err.message}\n${USAGE}`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const version = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version?: unknown }).version;
  if (typeof version !== 'string' || !/^[0-9A-Za-z][0-9A-Za-z.+~_-]{0,63}$/.test(version)) throw new ReleaseError(`package.json has no usable "version" (got ${JSON.stringify(version)})`);
  const epoch = sourceDateEpoch();
  const key = opts.signingKey === null ? null : await loadSigningKey(opts.signingKey);
  const work = await mkdtemp(path.join(tmpdir(), 'nk-release-'));
  const built: Array<{ name: string; file: string; sha256: string; size: number }> = [];
  const notes: string[] = [];
  try {
    say(`release ${version} for linux ${opts.arches.join(', ')} (timestamps ${new Date(epoch * 1000).toISOString()})`);
    say('bundling the agent (esbuild)');
    const agentLib = path.join(work, 'agent-lib');
    await bundleAgent(agentLib);
    await mkdir(opts.out, { recursive: true });
    for (const arch of opts.arches) {
      for (const part of ['agent', 'coordinator'] as const) {
        const name = `nodekeeper-${part}-${version}-linux-${arch}.tar.gz`;
        const stage = path.join(work, `${part}-${arch}`);
        await mkdir(stage);
        say(`staging ${name}`);
        if (part === 'agent') await stageAgent(stage, arch, version, agentLib);
        else notes.push(...(await stageCoordinator(stage, arch, version)).map((n) => `${name}: ${n}`));
        await normaliseTree(stage, epoch);
        const partial = path.join(opts.out, `.${name}.partial`);
        say(`packing ${name}`);
        await packTarball(stage, partial, epoch);
        await rename(partial, path.join(opts.out, name));
        const file = path.join(opts.out, name);
        built.push({ name, file, sha256: await sha256File(file), size: (await stat(file)).size });
      }
    }
    const sums = sha256sums(built);
    await writeFile(path.join(opts.out, 'SHA256SUMS'), sums);
    say('wrote SHA256SUMS');
    if (key !== null) {
      const { signature, publicKeyPem } = signSums(Buffer.from(sums), key);
      await writeFile(path.join(opts.out, 'SHA256SUMS.sig'), signature);
      await writeFile(path.join(opts.out, 'nodekeeper-release.pub'), publicKeyPem);
      say('signed: SHA256SUMS.sig (ed25519, base64), public key nodekeeper-release.pub');
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  process.stdout.write(`Built in ${opts.out}:\n`);
  for (const b of built) process.stdout.write(`  ${b.name}  ${(b.size / 1024 / 1024).toFixed(1)} MiB  sha256:${b.sha256.slice(0, 16)}…\n`);
  for (const n of notes) process.stdout.write(`  note: ${n}\n`);
  return 0;
}

try {
  process.exitCode = await main();
} catch (err) {
  if (!(err instanceof ReleaseError)) throw err;
  process.stderr.write(`release: ${err.message}\n`);
  process.exitCode = 1;
}
