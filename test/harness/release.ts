/**
 * The release the tests install from: `scripts/release --arch x64`, built once per
 * content of its inputs and cached under ~/.cache/nodekeeper/release/<key>/, so a
 * `scripts/test` run builds at most once however many test files ask (concurrent ones
 * wait for the first builder's lock). The key hashes every file scripts/release reads
 * (the workspace's sources, lockfile, scripts) and the HEAD commit's time, which is the
 * tarballs' timestamp.
 *
 * Installing: `installAgentRelease(args)` runs the install-agent of the unpacked agent
 * tarball, as an operator does after `tar xzf`; `coordinatorRelease()` is the same build's
 * coordinator tarball, unpacked beside it on first use (its install-coordinator inside).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import { homedir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { normaliseTree, packTarball, sha256File, sha256sums } from '../../scripts/lib/release-archive.ts';
import { REPO } from './processes.ts';

const execFileP = promisify(execFile);

/** What scripts/release reads: a change in any of them means a new build. */
const INPUTS = ['agent', 'coordinator', 'packages', 'scripts', 'package.json', 'pnpm-lock.yaml', 'pnpm-workspace.yaml'];
const BUILD_TIMEOUT_MS = 10 * 60_000;
/** Cached builds of other contents older than this are removed (each is ~210 MB). */
const PRUNE_AFTER_MS = 6 * 3600_000;

export interface AgentRelease {
  /** The dist dir: the tarballs and SHA256SUMS. */
  readonly dist: string;
  readonly version: string;
  readonly arch: 'x64';
  /** dist/nodekeeper-agent-<version>-linux-x64.tar.gz */
  readonly agentTarball: string;
  /** dist/nodekeeper-coordinator-<version>-linux-x64.tar.gz */
  readonly coordinatorTarball: string;
  /** The agent tarball unpacked (VERSION, bin/, lib/, node/, systemd/, install-agent). */
  readonly agentDir: string;
  /** <agentDir>/install-agent */
  readonly installer: string;
}

/** The coordinator tarball unpacked (VERSION, bin/, lib/, node/, systemd/, install-coordinator). */
export interface CoordinatorRelease {
  readonly version: string;
  readonly tarball: string;
  /** The dist dir's SHA256SUMS, which lists the tarball. */
  readonly sums: string;
  readonly dir: string;
  /** <dir>/install-coordinator */
  readonly installer: string;
}

export { runCommand, showResult, type Result } from './command.ts';
import { runCommand, showResult, type Result } from './command.ts';

/** The cache key: every input file's path and content, and the commit time the tarballs carry. */
async function inputKey(): Promise<string> {
  const h = createHash('sha256');
  const { stdout } = await execFileP('git', ['-C', REPO, 'ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', ...INPUTS], { maxBuffer: 64 * 1024 * 1024 });
  for (const rel of stdout.split('\0').filter((f) => f !== '').sort()) {
    const file = path.join(REPO, rel);
    if (!existsSync(file) || !(await stat(file)).isFile()) continue; // deleted in the work tree
    h.update(`${rel}\0`).update(await readFile(file)).update('\0');
  }
  h.update((await execFileP('git', ['-C', REPO, 'log', '-1', '--format=%ct'])).stdout.trim());
  return h.digest('hex').slice(0, 24);
}

const cacheRoot = () => path.join(process.env['XDG_CACHE_HOME'] ?? path.join(homedir(), '.cache'), 'nodekeeper', 'release');

/** True while the process that took a lock still runs. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Runs scripts/release (x64) into `out` and unpacks the agent tarball beside it. */
export async function buildRelease(out: string, extraArgs: readonly string[] = []): Promise<Result> {
  return runCommand(path.join(REPO, 'scripts/release'), ['--arch', 'x64', '--out', out, ...extraArgs], { timeoutMs: BUILD_TIMEOUT_MS });
}

let cached: Promise<AgentRelease> | undefined;

/** The x64 release of this checkout's content, built on first use (in this or another test process). */
export function agentRelease(): Promise<AgentRelease> {
  cached ??= findOrBuild();
  return cached;
}

async function findOrBuild(): Promise<AgentRelease> {
  const key = await inputKey();
  const root = cacheRoot();
  const dir = path.join(root, key);
  const lock = `${dir}.lock`;
  await mkdir(root, { recursive: true });
  const deadline = Date.now() + BUILD_TIMEOUT_MS;
  while (!existsSync(dir)) {
    try {
      await mkdir(lock);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Another test process builds it; take over only when that process is gone.
      const owner = Number(await readFile(path.join(lock, 'pid'), 'utf8').catch(() => '0'));
      if (owner > 0 && !alive(owner)) await rm(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`timed out waiting for the release build holding ${lock}`);
      await sleep(500);
      continue;
    }
    try {
      await writeFile(path.join(lock, 'pid'), String(process.pid));
      const tmp = path.join(lock, 'build');
      const r = await buildRelease(path.join(tmp, 'dist'));
      if (r.code !== 0) throw new Error(`scripts/release failed:\n${showResult(r)}`);
      await unpackAgent(tmp);
      await rename(tmp, dir);
      // Builds of other contents go once they are old: not at once, since another
      // checkout's test run (a clone, another worktree) may be using its own right now.
      for (const name of await readdir(root)) {
        const other = path.join(root, name);
        if (name === key || name.endsWith('.lock')) continue;
        const st = await stat(other).catch(() => null);
        if (st !== null && Date.now() - st.mtimeMs > PRUNE_AFTER_MS) await rm(other, { recursive: true, force: true });
      }
    } finally {
      await rm(lock, { recursive: true, force: true });
    }
  }
  return describe(dir);
}

async function unpackAgent(dir: string): Promise<void> {
  const dist = path.join(dir, 'dist');
  const tarball = (await readdir(dist)).find((n) => /^nodekeeper-agent-.+-linux-x64\.tar\.gz$/.test(n));
  if (tarball === undefined) throw new Error(`no agent tarball in ${dist}`);
  await mkdir(path.join(dir, 'agent'));
  await execFileP('tar', ['-xzf', path.join(dist, tarball), '-C', path.join(dir, 'agent')]);
}

async function describe(dir: string): Promise<AgentRelease> {
  const dist = path.join(dir, 'dist');
  const agentDir = path.join(dir, 'agent');
  const version = (await readFile(path.join(agentDir, 'VERSION'), 'utf8')).split('\n')[0]!;
  return {
    dist,
    version,
    arch: 'x64',
    agentTarball: path.join(dist, `nodekeeper-agent-${version}-linux-x64.tar.gz`),
    coordinatorTarball: path.join(dist, `nodekeeper-coordinator-${version}-linux-x64.tar.gz`),
    agentDir,
    installer: path.join(agentDir, 'install-agent'),
  };
}

let cachedCoordinator: Promise<CoordinatorRelease> | undefined;

/**
 * The coordinator tarball of the same cached build, unpacked once beside it (on first
 * use: builds cached before this existed have no unpacked coordinator). Unpacked into a
 * private dir and renamed into place, so concurrent test processes never see half of it.
 */
export function coordinatorRelease(): Promise<CoordinatorRelease> {
  cachedCoordinator ??= (async () => {
    const rel = await agentRelease();
    const dir = path.join(path.dirname(rel.dist), 'coordinator');
    if (!existsSync(dir)) {
      const tmp = `${dir}.unpacking.${process.pid}`;
      await rm(tmp, { recursive: true, force: true });
      await mkdir(tmp);
      await execFileP('tar', ['-xzf', rel.coordinatorTarball, '-C', tmp]);
      try {
        await rename(tmp, dir);
      } catch (err) {
        // Another process got there first: its copy is the same tarball's.
        if (!['ENOTEMPTY', 'EEXIST'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
        await rm(tmp, { recursive: true, force: true });
      }
    }
    return { version: rel.version, tarball: rel.coordinatorTarball, sums: path.join(rel.dist, 'SHA256SUMS'), dir, installer: path.join(dir, 'install-coordinator') };
  })();
  return cachedCoordinator;
}

/**
 * Another "version" of the coordinator release: the real tarball with only VERSION set
 * to `version`, packed as scripts/release packs, with its own SHA256SUMS, in `outDir`.
 */
export async function repackCoordinator(version: string, outDir: string): Promise<{ tarball: string; sums: string }> {
  const rel = await coordinatorRelease();
  const tree = path.join(outDir, 'tree');
  await mkdir(outDir, { recursive: true });
  await execFileP('cp', ['-a', rel.dir, tree]);
  await writeFile(path.join(tree, 'VERSION'), `${version}\n`);
  const epoch = 1_700_000_000;
  await normaliseTree(tree, epoch);
  const name = `nodekeeper-coordinator-${version}-linux-x64.tar.gz`;
  const tarball = path.join(outDir, name);
  await packTarball(tree, tarball, epoch);
  await rm(tree, { recursive: true, force: true });
  const sums = path.join(outDir, 'SHA256SUMS');
  await writeFile(sums, sha256sums([{ name, sha256: await sha256File(tarball) }]));
  return { tarball, sums };
}

/** Runs the release's install-agent with `args` (e.g. `--root DIR --server URL ...`). */
export async function installAgentRelease(args: readonly string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  const rel = await agentRelease();
  return runCommand(rel.installer, args, opts.env !== undefined ? { env: opts.env } : {});
}

/** Where install-agent puts the agent under a root (the shipped unit's path). */
export const AGENT_PKG_REL = 'var/lib/nodekeeper/packages/nodekeeper-agent';

/** A release directory served over https on loopback, as a release mirror would serve it. */
export interface ReleaseServer {
  /** https://127.0.0.1:PORT/releases/<version>: any path's last segment names a file of the dir. */
  readonly base: string;
  /** The server's self-signed certificate (install-* --ca-file). */
  readonly caFile: string;
  /** The file names asked for, in order. */
  readonly requested: string[];
  close(): Promise<void>;
}

/**
 * Serves the files of `dir` over https with a fresh self-signed certificate for 127.0.0.1
 * (made with openssl in `tlsDir`). Null where openssl or curl (which the installers
 * download with) is missing.
 */
export async function serveReleaseOverHttps(dir: string, tlsDir: string, version: string): Promise<ReleaseServer | null> {
  if (!existsSync('/usr/bin/openssl') || !existsSync('/usr/bin/curl')) return null;
  await mkdir(tlsDir, { recursive: true });
  const key = path.join(tlsDir, 'key.pem');
  const caFile = path.join(tlsDir, 'cert.pem');
  const gen = await runCommand('/usr/bin/openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=nk-release-test', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', caFile]);
  if (gen.code !== 0) throw new Error(`openssl req failed:\n${showResult(gen)}`);
  const requested: string[] = [];
  const server = createHttpsServer({ key: await readFile(key), cert: await readFile(caFile) }, (req, res) => {
    const name = path.basename(new URL(req.url ?? '/', 'https://x').pathname);
    requested.push(name);
    const file = path.join(dir, name);
    if (!existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200);
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `https://127.0.0.1:${(server.address() as { port: number }).port}/releases/${version}`,
    caFile,
    requested,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
