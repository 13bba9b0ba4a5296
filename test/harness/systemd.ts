/**
 * A real systemd (the image's /lib/systemd/systemd) booted as PID 1 in namespaces of its
 * own, for tests that must run units exactly as a node does (issue 11, item 1).
 *
 * What it shares and what it does not:
 * - Its own PID, mount, UTS, IPC and cgroup namespaces. The host's network namespace is
 *   shared, so an agent inside reaches a coordinator the test started on 127.0.0.1 (the
 *   only thing systemd does to the network is bring loopback up, which it already is).
 * - Its root is an overlayfs over the host's `/` with a per-test upper dir (`upper`):
 *   every unit the test writes under /etc/systemd/system and everything an agent installs
 *   under /usr/bin, /opt/cni/bin or /etc/cni/net.d lands there, never on the host. Files
 *   put in `upper` BEFORE boot (scripts/install-agent --root UPPER) appear in the root view.
 * - Private tmpfs on /tmp, /run and /var/tmp, mounted before systemd starts: its tmpfiles
 *   setup empties /tmp, and on a shared /tmp it once wiped every other process's files.
 * - A fresh sysfs mounted read-only (systemd then knows it is in a container and skips
 *   udev), its own cgroup2 tree (a per-test cgroup made the namespace's root), /dev bound
 *   from the host but with /dev/console and /dev/kmsg replaced, so nothing it logs reaches
 *   the host's console or kernel log.
 * - It boots `nk-test.target` (`--unit=`), not the image's default target, and every unit
 *   sysinit.target would pull in is masked except journald: no sysctl, binfmt, module,
 *   /dev node or tmpfiles setup touches the (shared) kernel or /dev.
 *
 * Teardown SIGKILLs the namespace's PID 1 (the kernel then kills everything in it and
 * drops its mounts with the mount namespace), removes the cgroups and the dir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCommand, type Result } from './command.ts';

const SYSTEMD = '/lib/systemd/systemd';
const CGROUP2 = '/sys/fs/cgroup/unified';
const TARGET = 'nk-test.target';
/** The sysinit.target wants of the image that are NOT masked: journald keeps unit logs readable. */
const KEEP = new Set(['systemd-journald.service']);
/** Pulled in by local-fs.target, network targets or sockets without a .wants entry; all touch shared state. */
const ALSO_MASK = ['systemd-remount-fs.service', 'systemd-udevd.service', 'systemd-udev-trigger.service', 'systemd-udev-settle.service', 'systemd-networkd-wait-online.service', 'systemd-networkd.service', 'systemd-resolved.service', 'systemd-hostnamed.service', 'systemd-timesyncd.service', 'systemd-pstore.service', 'systemd-tmpfiles-setup.service', 'systemd-tmpfiles-clean.timer'];

export type { Result } from './command.ts';

/** Runs a command to completion; `env` is added to this process's environment. */
export function run(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Result> {
  return runCommand(cmd, args, { env: { ...process.env, ...opts.env }, timeoutMs: opts.timeoutMs ?? 60_000 });
}

/** Why this machine cannot boot systemd in namespaces (or null when it can). */
export async function systemdUnavailable(): Promise<string | null> {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'needs root (unshare, overlayfs, cgroups)';
  if (!existsSync(SYSTEMD)) return `${SYSTEMD} is not installed`;
  for (const tool of ['/usr/bin/unshare', '/usr/bin/nsenter']) if (!existsSync(tool)) return `${tool} is not installed`;
  if (!existsSync(`${CGROUP2}/cgroup.procs`) && !existsSync('/sys/fs/cgroup/cgroup.procs')) return 'no writable cgroup2 hierarchy';
  const probe = await mkdtemp(path.join(tmpdir(), 'nk-sd-probe-'));
  try {
    for (const d of ['upper', 'work', 'root']) await mkdir(path.join(probe, d));
    const r = await run('/usr/bin/unshare', ['--mount', '--propagation', 'private', '/bin/mount', '-t', 'overlay', 'overlay', '-o', `lowerdir=/,upperdir=${probe}/upper,workdir=${probe}/work`, `${probe}/root`]);
    if (r.code !== 0) return `cannot mount an overlay over / in a new mount namespace: ${r.stderr.trim()}`;
    return null;
  } finally {
    await rm(probe, { recursive: true, force: true });
  }
}

/** The cgroup2 mount this host has (hybrid hosts mount it at /sys/fs/cgroup/unified). */
const cgroup2Root = () => (existsSync(`${CGROUP2}/cgroup.procs`) ? CGROUP2 : '/sys/fs/cgroup');

/** The boot script run as PID 1 of the new namespaces, before it becomes systemd. */
function bootScript(dir: string): string {
  const r = `${dir}/root`;
  return [
    'set -eu',
    `mount -t overlay overlay -o lowerdir=/,upperdir=${dir}/upper,workdir=${dir}/work ${r}`,
    // Private tmpfs FIRST: nothing systemd does may empty a directory it shares.
    `mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs ${r}/tmp`,
    `mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs ${r}/run`,
    `mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs ${r}/var/tmp`,
    `mount -t proc -o nosuid,nodev,noexec proc ${r}/proc`,
    `mount -t sysfs -o ro,nosuid,nodev,noexec sysfs ${r}/sys`,
    `mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 ${r}/sys/fs/cgroup`,
    `mount --rbind /dev ${r}/dev`,
    `mount --bind ${dir}/console ${r}/dev/console`,
    `mount --bind /dev/null ${r}/dev/kmsg`,
    `mkdir -p ${r}/.nk-oldroot`,
    `cd ${r}`,
    'pivot_root . .nk-oldroot',
    'umount -l /.nk-oldroot',
    'rmdir /.nk-oldroot',
    `exec ${SYSTEMD} --unit=${TARGET} --log-target=console --show-status=no`,
  ].join('\n');
}

export interface BootOptions {
  /** Prepares the root view before boot (install-agent --root UPPER, unit files). */
  readonly prepare?: (upper: string) => Promise<void>;
  /** How long to wait for `is-system-running` (default 60 s). */
  readonly bootTimeoutMs?: number;
}

/** A booted systemd; `close()` tears everything down (call it in `after`, also on failure). */
export class BootedSystemd {
  private closed = false;

  /** The per-test dir: upper/ (writable layer), work/, root/, console (systemd's own log). */
  readonly dir: string;
  /** The host PID of the namespace's PID 1 (systemd). */
  readonly pid: number;
  private readonly unshare: ChildProcess;
  private readonly cgroup: string;

  private constructor(dir: string, pid: number, unshare: ChildProcess, cgroup: string) {
    this.dir = dir;
    this.pid = pid;
    this.unshare = unshare;
    this.cgroup = cgroup;
  }

  /** The overlay's upper dir: what was written inside the root view, as seen from the host. */
  get upper(): string {
    return path.join(this.dir, 'upper');
  }

  /** Boots systemd; throws (after cleaning up) when it does not reach running/degraded. */
  static async boot(opts: BootOptions = {}): Promise<BootedSystemd> {
    const dir = await mkdtemp(path.join(tmpdir(), 'nk-sd-'));
    const cgroup = path.join(cgroup2Root(), path.basename(dir));
    for (const d of ['upper', 'work', 'root']) await mkdir(path.join(dir, d));
    await writeFile(path.join(dir, 'console'), '');
    await writeMinimalBoot(path.join(dir, 'upper'));
    await opts.prepare?.(path.join(dir, 'upper'));
    await mkdir(cgroup);
    // The wrapper joins the per-test cgroup, then unshares: the cgroup namespace's root is
    // that cgroup, so systemd's init.scope and system.slice are made below it, not the host's.
    const wrapper = `echo $$ > ${cgroup}/cgroup.procs && exec unshare --pid --mount --uts --ipc --cgroup --fork --propagation private sh -c "$0"`;
    const unshare = spawn('/bin/sh', ['-c', wrapper, bootScript(dir)], { stdio: ['ignore', 'ignore', 'pipe'], detached: false });
    let stderr = '';
    unshare.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    let pid = 0;
    try {
      for (let i = 0; i < 100 && pid === 0; i++) {
        await sleep(50);
        if (unshare.exitCode !== null) break;
        const children = (await readFile(`/proc/${unshare.pid}/task/${unshare.pid}/children`, 'utf8').catch(() => '')).trim();
        if (children !== '') pid = Number(children.split(/\s+/)[0]);
      }
      if (pid === 0) throw new Error(`systemd did not start: ${stderr}`);
      const sd = new BootedSystemd(dir, pid, unshare, cgroup);
      try {
        await sd.waitRunning(opts.bootTimeoutMs ?? 60_000, () => stderr);
      } catch (err) {
        await sd.close();
        throw err;
      }
      return sd;
    } catch (err) {
      if (pid === 0) {
        unshare.kill('SIGKILL');
        await rmdir(cgroup).catch(() => {});
        await rm(dir, { recursive: true, force: true });
      }
      throw err;
    }
  }

  private async waitRunning(timeoutMs: number, stderr: () => string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: Result | undefined;
    while (Date.now() < deadline) {
      if (this.unshare.exitCode !== null) break;
      last = await this.exec(['systemctl', 'is-system-running'], { timeoutMs: 10_000 }).catch(() => undefined);
      const state = last?.stdout.trim();
      if (state === 'running' || state === 'degraded') return;
      await sleep(200);
    }
    throw new Error(`systemd did not reach running: ${last?.stdout.trim()} ${last?.stderr.trim()}\n${stderr()}\nconsole:\n${await this.console()}`);
  }

  /** Runs a command inside every namespace of the booted system (root view, PIDs, UTS). */
  exec(argv: readonly string[], opts: { timeoutMs?: number } = {}): Promise<Result> {
    return run('/usr/bin/nsenter', ['-t', String(this.pid), '-m', '-p', '-u', '-i', '-C', '-r', '-w', '--', ...argv], opts);
  }

  /** `systemctl ARGS` inside; throws with its output on a non-zero exit. */
  async systemctl(...args: string[]): Promise<string> {
    const r = await this.exec(['systemctl', '--no-pager', ...args]);
    if (r.code !== 0) throw new Error(`systemctl ${args.join(' ')}: exit ${r.code}\n${r.stdout}${r.stderr}`);
    return r.stdout;
  }

  /** A unit's properties (`systemctl show -p`), as a map. */
  async show(unit: string, ...props: string[]): Promise<Record<string, string>> {
    const r = await this.exec(['systemctl', 'show', unit, ...props.map((p) => `--property=${p}`)]);
    const out: Record<string, string> = {};
    for (const line of r.stdout.split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
    }
    return out;
  }

  /** The unit's journal (for failure messages). */
  async journal(unit: string): Promise<string> {
    const r = await this.exec(['journalctl', '--no-pager', '-o', 'cat', '-u', unit]);
    return r.stdout + r.stderr;
  }

  /** What systemd itself logged (its console is a file, never the host's). */
  console(): Promise<string> {
    return readFile(path.join(this.dir, 'console'), 'utf8').catch(() => '');
  }

  /** A path of the root view, as the host can reach it (through PID 1's root). */
  hostPath(p: string): string {
    return path.join(`/proc/${this.pid}/root`, p);
  }

  /** Kills the namespace's PID 1 (and so everything in it), removes the cgroups and the dir. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    if (this.unshare.exitCode === null && this.unshare.signalCode === null) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 10_000);
        this.unshare.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    await removeCgroupTree(this.cgroup);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** rmdir a cgroup and its children, deepest first, once their processes are gone. */
async function removeCgroupTree(cg: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      await rmTree(cg);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      await sleep(100);
    }
  }
}

async function rmTree(cg: string): Promise<void> {
  for (const e of await readdir(cg, { withFileTypes: true })) if (e.isDirectory()) await rmTree(path.join(cg, e.name));
  await rmdir(cg);
}

/**
 * The boot the tests need and nothing else, written into the upper dir: nk-test.target
 * (empty; tests start their units with systemctl) and a mask for every unit the image's
 * sysinit.target would pull in, journald aside.
 */
async function writeMinimalBoot(upper: string): Promise<void> {
  const etc = path.join(upper, 'etc/systemd/system');
  await mkdir(etc, { recursive: true });
  await writeFile(path.join(etc, TARGET), '[Unit]\nDescription=nodekeeper test boot\nDefaultDependencies=no\nAllowIsolate=yes\n');
  const masked = new Set(ALSO_MASK);
  for (const d of ['/lib/systemd/system/sysinit.target.wants', '/etc/systemd/system/sysinit.target.wants', '/lib/systemd/system/local-fs.target.wants', '/etc/systemd/system/network-online.target.wants']) {
    for (const name of await readdir(d).catch(() => [] as string[])) if (!KEEP.has(name)) masked.add(name);
  }
  for (const name of masked) await symlink('/dev/null', path.join(etc, name));
  // The overlay keeps the host's machine-id if it has one; a fresh one is made otherwise.
}
