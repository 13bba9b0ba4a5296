/**
 * Boot and kernel facts of the host, for reboots done safely (issue 12):
 *   - the boot id, so the coordinator can tell a node that really rebooted from one that
 *     merely reconnected (or came back on the old boot);
 *   - the running kernel and the newest one installed, so a reboot that boots the old
 *     kernel again is caught rather than retried blindly;
 *   - whether a reboot is required: the Debian/Ubuntu sentinel (/var/run/reboot-required,
 *     with the packages in reboot-required.pkgs), an operator's check command (RHEL's
 *     `needs-restarting -r`: exit 1 means required), or a newer kernel installed than runs;
 *   - which watched data dirs sit on a read-only mount (node-problem-detector's
 *     ReadonlyFilesystem).
 * Every path is under the host root, so a test node (or an agent in a container with the
 * host at /host) has its own; where the host root lacks a /proc file, the agent's own is read.
 * Never throws: an unreadable fact is null or left out, and the probe runs on.
 */
import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { HostStatus } from '@nodekeeper/protocol';
import { resolveHostPath } from './config.ts';
import type { ProbeContext } from './context.ts';
import { MINIMAL_PATH } from './run-command.ts';

type BootFacts = Required<Pick<HostStatus, 'bootId' | 'reboot' | 'newestKernel' | 'readOnlyMounts'>> & { readonly kernel: string };

/** How long a check command's answer is reused: `needs-restarting -r` reads the whole rpm database. */
export const REBOOT_CHECK_CACHE_MS = 10 * 60_000;
const CHECK_TIMEOUT_MS = 30_000;
/** Bounds of what is reported (the protocol's limits). */
const MAX_REASONS = 8;
const MAX_REASON = 256;

/**
 * Punctuation in the order of Unicode's root collation (CLDR), which the numeric
 * Intl.Collator this replaces used; other non-alphanumeric characters come after these.
 */
const PUNCTUATION_ORDER = "_-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$";
const punctuationRank = (c: string): number => {
  const i = PUNCTUATION_ORDER.indexOf(c);
  return i >= 0 ? i : PUNCTUATION_ORDER.length + c.charCodeAt(0);
};
const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isLetter = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
/** Punctuation before digits before letters, as the root collation sorts them. */
const charClass = (c: string): number => (isDigit(c) ? 1 : isLetter(c) ? 2 : 0);

/**
 * Kernel releases in version order ("6.1.0-9" before "6.1.0-25"), as `sort -V` orders
 * them: runs of digits compare as numbers, letters without case, punctuation by the root
 * collation. The order of `new Intl.Collator('en', { numeric: true, sensitivity: 'base' })`
 * on release strings (boot.test.ts checks the two agree), without it: creating that
 * collator maps about 2 MB of ICU's collation data into the agent for good (bench/README.md,
 * "Agent footprint"). Pure.
 */
export function compareReleases(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ca = a[i]!;
    const cb = b[j]!;
    if (isDigit(ca) && isDigit(cb)) {
      let ei = i;
      let ej = j;
      while (ei < a.length && isDigit(a[ei]!)) ei++;
      while (ej < b.length && isDigit(b[ej]!)) ej++;
      const na = a.slice(i, ei).replace(/^0+/, '');
      const nb = b.slice(j, ej).replace(/^0+/, '');
      if (na.length !== nb.length) return na.length - nb.length;
      if (na !== nb) return na < nb ? -1 : 1;
      i = ei;
      j = ej;
      continue;
    }
    const ka = charClass(ca);
    const kb = charClass(cb);
    if (ka !== kb) return ka - kb;
    const ra = ka === 2 ? ca.toLowerCase().charCodeAt(0) : punctuationRank(ca);
    const rb = kb === 2 ? cb.toLowerCase().charCodeAt(0) : punctuationRank(cb);
    if (ra !== rb) return ra - rb;
    i++;
    j++;
  }
  return (a.length - i) - (b.length - j) > 0 ? 1 : (a.length - i) - (b.length - j) < 0 ? -1 : 0;
}

/** The newest of `releases`, or null for none. Pure. */
export function newestRelease(releases: readonly string[]): string | null {
  return [...releases].sort(compareReleases).at(-1) ?? null;
}

/** Kernel releases installed under the host root: /boot/vmlinuz-<release>, else /lib/modules/<release>. */
export async function installedKernels(hostRoot: string): Promise<string[]> {
  const list = async (dir: string) => readdir(resolveHostPath(hostRoot, dir)).catch(() => [] as string[]);
  const boot = (await list('/boot')).filter((n) => n.startsWith('vmlinuz-') && n.length > 8).map((n) => n.slice(8));
  // /boot holds what can boot; /lib/modules alone may keep dirs of removed kernels, so it is the fallback.
  return boot.length > 0 ? boot : (await list('/lib/modules')).filter((n) => /^\d/.test(n));
}

/** A /proc file of the host: the host root's when it has one, else this process's own. */
async function readProc(hostRoot: string, file: string): Promise<string | null> {
  for (const candidate of new Set([resolveHostPath(hostRoot, file), file])) {
    try {
      const text = (await readFile(candidate, 'utf8')).trim();
      if (text !== '') return text;
    } catch {
      // Try the next one.
    }
  }
  return null;
}

/** The running boot's id, or null. */
export async function readBootId(hostRoot: string): Promise<string | null> {
  const id = await readProc(hostRoot, '/proc/sys/kernel/random/boot_id');
  return id !== null && /^[0-9a-f-]{8,64}$/i.test(id) ? id.toLowerCase() : null;
}

/** The running kernel's release (the host root's /proc first, so a test node can have its own). */
async function runningKernel(hostRoot: string): Promise<string> {
  return (await readProc(hostRoot, '/proc/sys/kernel/osrelease')) ?? os.release();
}

/**
 * The mount holding each of `dirs` (longest mount-point prefix of its path) from
 * mountinfo's text, and those mounted read-only (per-mount or superblock option `ro`).
 * Pure. Mount points are octal-escaped in mountinfo ("\040" for a space).
 */
export function readOnlyDirs(mountinfo: string, dirs: ReadonlyArray<{ readonly shown: string; readonly real: string }>): string[] {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const mounts: Array<{ point: string; ro: boolean }> = [];
  for (const line of mountinfo.split('\n')) {
    // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
    const [left, right] = line.split(' - ');
    const f = left?.split(' ') ?? [];
    if (f.length < 6 || right === undefined) continue;
    const superOptions = right.split(' ')[2] ?? '';
    mounts.push({ point: unescape(f[4]!), ro: f[5]!.split(',').includes('ro') || superOptions.split(',').includes('ro') });
  }
  const within = (p: string, point: string) => point === '/' || p === point || p.startsWith(`${point}/`);
  return dirs.flatMap(({ shown, real }) => {
    // The last of equally long matches wins: a later mount over the same point hides the earlier.
    let best: { point: string; ro: boolean } | undefined;
    for (const m of mounts) if (within(real, m.point) && (best === undefined || m.point.length >= best.point.length)) best = m;
    return best?.ro === true ? [shown] : [];
  });
}

/**
 * The mount table as the host sees it: init's (PID 1's) view, so the agent's own
 * sandbox (ProtectSystem=strict makes nearly everything read-only for the agent alone)
 * does not count; this process's view where init's cannot be read.
 */
async function hostMountinfo(): Promise<string | null> {
  for (const file of ['/proc/1/mountinfo', '/proc/self/mountinfo']) {
    try {
      return await readFile(file, 'utf8');
    } catch {
      // Try the next one.
    }
  }
  return null;
}

let checkCache: { at: number; key: string; reason: string | null } | null = null;

/** The operator's check command: a reason when it says a reboot is required (exit 1), else null. */
async function checkCommand(ctx: ProbeContext, argv: readonly string[]): Promise<string | null> {
  const key = argv.join('\0');
  const now = Date.now();
  if (checkCache !== null && checkCache.key === key && now - checkCache.at < REBOOT_CHECK_CACHE_MS) return checkCache.reason;
  const [file, ...args] = argv;
  const r = await ctx.run(file!, args, { timeoutMs: CHECK_TIMEOUT_MS, env: { PATH: MINIMAL_PATH, LC_ALL: 'C' } });
  const shown = argv.join(' ');
  const reason = r.spawnError !== null ? null : r.code === 1 ? `${shown}: exit 1 (a reboot is required)` : null;
  // Anything but 0 and 1 (not found, a timeout, a crash) says nothing either way; it is logged by no one
  // here, so it is told in the reasons only when a reboot is otherwise not known to be required.
  checkCache = { at: now, key, reason };
  return reason;
}

/** The boot, kernel and read-only facts of the host. */
export async function probeBoot(ctx: ProbeContext): Promise<BootFacts> {
  const { hostRoot, host } = ctx.config;
  const [bootId, kernel, installed, mountinfo] = await Promise.all([readBootId(hostRoot), runningKernel(hostRoot), installedKernels(hostRoot), hostMountinfo()]);
  const newestKernel = newestRelease(installed);
  const reasons: string[] = [];

  const sentinel = resolveHostPath(hostRoot, host.rebootSentinel);
  const sentinelText = await readFile(sentinel, 'utf8').then((t) => t, () => null);
  if (sentinelText !== null) {
    // Debian's update-notifier hooks list the packages that asked, one per line, beside it.
    const pkgs = await readFile(`${sentinel}.pkgs`, 'utf8').then((t) => [...new Set(t.split('\n').map((l) => l.trim()).filter(Boolean))], () => []);
    reasons.push(`${host.rebootSentinel} exists${pkgs.length > 0 ? ` (packages: ${pkgs.slice(0, 5).join(', ')}${pkgs.length > 5 ? `, +${pkgs.length - 5} more` : ''})` : ''}`);
  }
  if (host.rebootCheckCommand !== null) {
    const reason = await checkCommand(ctx, host.rebootCheckCommand);
    if (reason !== null) reasons.push(reason);
  }
  if (newestKernel !== null && compareReleases(newestKernel, kernel) > 0) reasons.push(`running kernel ${kernel}, newest installed ${newestKernel}`);

  const watched = [...new Set(['/', ...host.dataDirs])].map((d) => ({ shown: d, real: path.resolve(resolveHostPath(hostRoot, d)) }));
  return {
    bootId,
    kernel,
    newestKernel,
    reboot: { required: reasons.length > 0, reasons: reasons.slice(0, MAX_REASONS).map((r) => r.slice(0, MAX_REASON)) },
    readOnlyMounts: mountinfo === null ? [] : readOnlyDirs(mountinfo, watched),
  };
}

/** Forgets the cached check command answer (tests). */
export function resetRebootCheckCache(): void {
  checkCache = null;
}
