/**
 * The host: OS, kernel, CPUs, memory, uptime, disk use of the data dirs, the three
 * pressures the kubelet also evicts on (disk, memory, PIDs), and the boot facts of
 * boot.ts (boot id, newest kernel, reboot required, read-only mounts). It runs every probe
 * interval, so it stays cheap: statfs per data dir instead of listing every mount,
 * /proc/meminfo read directly, and the OS description read once. systeminformation is
 * loaded only for the rare host without an os-release file: loading it costs the
 * resident agent several MB, and its time() ran a shell (date, ls) on every probe.
 */
import { readdir, readFile, statfs, access } from 'node:fs/promises';
import os from 'node:os';
import type { HostStatus } from '@nodekeeper/protocol';
import { probeBoot } from './boot.ts';
import { resolveHostPath } from './config.ts';
import { observedAt, type ProbeContext } from './context.ts';

type DiskUsage = HostStatus['disks'][number];

/**
 * Disk use of the filesystem holding `dir`, the way df counts it (used against
 * used + available to unprivileged users), or null when the dir is missing.
 */
export async function diskUsage(file: string, hostPath: string): Promise<DiskUsage | null> {
  try {
    const s = await statfs(file);
    const used = (s.blocks - s.bfree) * s.bsize;
    const avail = s.bavail * s.bsize;
    const usedPercent = used + avail === 0 ? 0 : Math.min(100, (used / (used + avail)) * 100);
    return { path: hostPath, totalBytes: s.blocks * s.bsize, usedBytes: used, usedPercent: Math.round(usedPercent * 10) / 10 };
  } catch {
    return null;
  }
}

/** PRETTY_NAME from an os-release file's text, or null. */
export function prettyName(osRelease: string): string | null {
  const m = /^PRETTY_NAME=(.*)$/m.exec(osRelease);
  if (m === null || m[1] === undefined) return null;
  return m[1].trim().replace(/^(["'])(.*)\1$/, '$2') || null;
}

/** The process table to count PIDs in: the host root's /proc when mounted there, else ours. */
async function procDir(hostRoot: string): Promise<string> {
  const mounted = resolveHostPath(hostRoot, '/proc');
  try {
    await access(`${mounted}/sys/kernel/pid_max`);
    return mounted;
  } catch {
    return '/proc';
  }
}

/** Processes in use and kernel.pid_max, or null when /proc cannot tell. */
export async function pidUsage(proc: string): Promise<{ count: number; max: number } | null> {
  try {
    const max = Number((await readFile(`${proc}/sys/kernel/pid_max`, 'utf8')).trim());
    const count = (await readdir(proc)).filter((n) => /^\d+$/.test(n)).length;
    return Number.isFinite(max) && max > 0 ? { count, max } : null;
  } catch {
    return null;
  }
}

let osDescription: Promise<string> | undefined;

/** The OS: the host root's os-release (the host, even from a container), else systeminformation. */
async function describeOs(hostRoot: string): Promise<string> {
  try {
    const name = prettyName(await readFile(resolveHostPath(hostRoot, '/etc/os-release'), 'utf8'));
    if (name !== null) return name;
  } catch {
    // Fall through: a test host root has no os-release of its own.
  }
  // si.osInfo runs several lookups; the answer does not change while we run.
  osDescription ??= import('systeminformation').then((si) => si.osInfo()).then((o) => `${o.distro} ${o.release}`.trim(), () => os.type());
  return osDescription;
}

/** Memory in bytes, as systeminformation's mem() reports it on Linux. */
export interface Memory {
  readonly total: number;
  readonly available: number;
}

/**
 * Total and available memory from /proc/meminfo's text (values in kB). Available is
 * MemAvailable, or on kernels without it (before 3.14) MemFree + Buffers + Cached + Slab;
 * a field that is missing or zero falls back to os.totalmem() / os.freemem().
 */
export function parseMeminfo(text: string): Memory {
  const kb = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([^:\s]+):\s*(\d+)/.exec(line);
    if (m !== null && m[1] !== undefined && !kb.has(m[1].toLowerCase())) kb.set(m[1].toLowerCase(), Number(m[2]) * 1024);
  }
  const field = (name: string) => kb.get(name) || 0;
  const total = field('memtotal') || os.totalmem();
  const free = field('memfree') || os.freemem();
  const available = field('memavailable') || free + field('buffers') + field('cached') + field('slab');
  return { total, available };
}

/** This machine's memory (the kernel's, so the host's even from a container). */
async function readMemory(): Promise<Memory> {
  try {
    return parseMeminfo(await readFile('/proc/meminfo', 'utf8'));
  } catch {
    return { total: os.totalmem(), available: os.freemem() };
  }
}

/** Probes the host. Never throws: a missing data dir is left out and named in the message. */
export async function probeHost(ctx: ProbeContext): Promise<HostStatus> {
  const { hostRoot, host } = ctx.config;
  const [osName, mem, disks, pids, boot] = await Promise.all([
    describeOs(hostRoot),
    readMemory(),
    Promise.all(host.dataDirs.map((d) => diskUsage(resolveHostPath(hostRoot, d), d))),
    procDir(hostRoot).then(pidUsage),
    probeBoot(ctx),
  ]);
  const present = disks.filter((d): d is DiskUsage => d !== null);
  const missing = host.dataDirs.filter((_, i) => disks[i] === null);

  const memAvailPercent = mem.total > 0 ? (mem.available / mem.total) * 100 : 100;
  const pressure = {
    disk: present.some((d) => d.usedPercent >= host.diskPressurePercent),
    memory: memAvailPercent < host.memoryPressureAvailablePercent,
    pid: pids !== null && (pids.count / pids.max) * 100 >= host.pidPressurePercent,
  };
  const notes: string[] = [];
  for (const d of present) if (d.usedPercent >= host.diskPressurePercent) notes.push(`${d.path} is ${d.usedPercent}% full`);
  if (pressure.memory) notes.push(`only ${memAvailPercent.toFixed(1)}% of memory available`);
  if (pressure.pid && pids !== null) notes.push(`${pids.count} of ${pids.max} PIDs in use`);
  const missingNote = missing.length > 0 ? `; data dirs not present: ${missing.join(', ')}` : '';

  const reason = pressure.disk ? 'DiskPressure' : pressure.memory ? 'MemoryPressure' : pressure.pid ? 'PIDPressure' : 'NoPressure';
  return {
    health: reason === 'NoPressure' ? 'healthy' : 'unhealthy',
    reason,
    message: (reason === 'NoPressure' ? 'no disk, memory or PID pressure' : notes.join('; ')) + missingNote,
    version: null,
    observedAt: observedAt(ctx),
    os: osName.slice(0, 256),
    // The kernel and CPUs are the host's even inside a container.
    kernel: boot.kernel,
    arch: os.machine(),
    cpus: os.cpus().length,
    memoryTotalBytes: mem.total,
    memoryAvailableBytes: mem.available,
    uptimeSeconds: Math.max(0, Math.floor(os.uptime())),
    disks: present.slice(0, 16),
    pressure,
    bootId: boot.bootId,
    reboot: boot.reboot,
    newestKernel: boot.newestKernel,
    readOnlyMounts: boot.readOnlyMounts,
  };
}
