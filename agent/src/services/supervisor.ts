/**
 * A small process supervisor for machines without systemd (tests, the demo, minimal
 * containers), behind the same interface as systemd. A unit is described by
 * `<hostRoot>/etc/nodekeeper/supervise/<unit>.json`: `{"argv": [...], "env": {...}}`,
 * argv[0] a host path resolved under the host root. The running process is recorded in
 * `<hostRoot>/run/nodekeeper/<unit>.pid` with its kernel start time, so a recycled pid
 * is never signalled; output goes to `<hostRoot>/var/log/nodekeeper/<unit>.log`.
 * Processes are started detached (their own session), so they outlive the agent, as
 * services outlive systemctl. Every start is counted in
 * `<hostRoot>/var/lib/nodekeeper/supervise/<unit>.starts.json` (durable, survives agent
 * restarts, like systemd's NRestarts survives daemon reloads), and so is every restart of
 * a unit whose process had died on its own: state() reports that as `restarts`, which
 * feeds FrequentKubeletRestart. As with systemd's NRestarts, a planned restart (an
 * install switching versions, a restart of a running unit, a start after a stop) is not
 * one: counting those made a canary install plus a repair look like a crash loop.
 */
import { spawn } from 'node:child_process';
import { access, mkdir, open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppError, writeFileDurable } from '@nodekeeper/common';
import type { ServiceState } from '@nodekeeper/protocol';
import { resolveHostPath } from '../probes/config.ts';
import { MINIMAL_PATH } from '../probes/run-command.ts';
import type { ServiceManager } from './service-manager.ts';

export const SUPERVISE_DIR = '/etc/nodekeeper/supervise';
const RUN_DIR = '/run/nodekeeper';
/** Under /var/lib, not /run: the count must outlive a reboot of the agent (not of the node). */
const COUNT_DIR = '/var/lib/nodekeeper/supervise';
const LOG_DIR = '/var/log/nodekeeper';
const STOP_GRACE_MS = 10_000;
/** Where a reboot request of a supervised host is written (requestReboot). */
export const REBOOT_REQUEST = '/run/nodekeeper/reboot-requested';
const UNIT_NAME = /^[A-Za-z0-9@._-]{1,128}$/;

export interface SupervisedUnit {
  readonly argv: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
}

/** What `<unit>.starts.json` keeps. */
interface StartCounts {
  readonly starts: number;
  /** Starts of a unit whose previous process had died on its own (systemd's NRestarts). */
  readonly restarts: number;
  /** The last process was stopped on purpose, so the next start is not a restart. */
  readonly stopped: boolean;
}

interface PidRecord {
  readonly pid: number;
  /** Field 22 of /proc/<pid>/stat: identifies this process among pid reuses. */
  readonly startTime: string;
}

/** The start time of a live (non-zombie) process, or null when it is gone. */
async function processStart(pid: number): Promise<string | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may hold spaces and parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return null;
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

export class SupervisorServiceManager implements ServiceManager {
  readonly kind = 'supervisor' as const;
  private readonly hostRoot: string;

  constructor(hostRoot: string) {
    this.hostRoot = hostRoot;
  }

  private file(dir: string, unit: string, ext: string): string {
    if (!UNIT_NAME.test(unit)) throw new TypeError(`not a unit name: ${JSON.stringify(unit)}`);
    return resolveHostPath(this.hostRoot, path.posix.join(dir, `${unit}${ext}`));
  }

  /** Writes a unit description (tests, the demo, scripts/install-agent on systemd-less hosts). */
  async define(unit: string, desc: SupervisedUnit): Promise<void> {
    const file = this.file(SUPERVISE_DIR, unit, '.json');
    await mkdir(path.dirname(file), { recursive: true });
    await writeFileDurable(file, `${JSON.stringify(desc, null, 2)}\n`);
  }

  async restart(unit: string): Promise<void> {
    const desc = await this.readUnit(unit);
    await this.stop(unit);
    await this.start(unit, desc);
  }

  async stop(unit: string): Promise<void> {
    const rec = await this.running(unit);
    // Stopped on purpose: the next start is planned, not a restart after a crash.
    if (rec !== null) await this.writeCount(unit, { ...(await this.counts(unit)), stopped: true });
    if (rec !== null) {
      try {
        process.kill(rec.pid, 'SIGTERM');
      } catch {
        // Gone between the check and the signal: stopped, which is what we want.
      }
      if (!(await this.exitsWithin(rec, STOP_GRACE_MS))) {
        try {
          process.kill(rec.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
        await this.exitsWithin(rec, STOP_GRACE_MS);
      }
    }
    await rm(this.file(RUN_DIR, unit, '.pid'), { force: true });
  }

  async state(unit: string): Promise<ServiceState> {
    const [rec, counts] = await Promise.all([this.running(unit), this.readCounts(unit)]);
    // manager stays 'none' on the wire (the protocol knows systemd or none); the states are the supervisor's.
    return { unit, manager: 'none', activeState: rec === null ? 'inactive' : 'active', subState: rec === null ? 'dead' : 'running', restarts: counts === null ? null : counts.restarts };
  }

  /**
   * `systemctl reboot` for a host without systemd: there is no init to reboot the host,
   * so the request is written to `<hostRoot>/run/nodekeeper/reboot-requested` (durably,
   * as JSON with the time and reason) for whoever runs the supervisor to act on: the test
   * harness's reboot adapter kills every process of the node, gives it a new boot id and
   * starts it again, honouring systemctl reboot's contract (this call returns; the agent
   * is killed soon after and starts on a new boot). Nothing else acts on it.
   */
  async requestReboot(reason: string): Promise<void> {
    const file = resolveHostPath(this.hostRoot, REBOOT_REQUEST);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFileDurable(file, `${JSON.stringify({ at: new Date().toISOString(), reason })}\n`);
  }

  /** True when `unit` has a description here (the service probe asks before reporting our state). */
  async defines(unit: string): Promise<boolean> {
    try {
      await access(this.file(SUPERVISE_DIR, unit, '.json'));
      return true;
    } catch {
      return false;
    }
  }

  /** How many times the supervisor started `unit` (0 when never); null when the count is unreadable. */
  async starts(unit: string): Promise<number | null> {
    return (await this.readCounts(unit))?.starts ?? null;
  }

  /** The unit's counts (zero when never started); null when the file is unreadable. */
  private async readCounts(unit: string): Promise<StartCounts | null> {
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(this.file(COUNT_DIR, unit, '.starts.json'), 'utf8'));
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ENOENT' ? { starts: 0, restarts: 0, stopped: false } : null;
    }
    const r = raw as { starts?: unknown; restarts?: unknown; stopped?: unknown } | null;
    const count = (n: unknown) => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
    if (!count(r?.starts)) return null;
    const starts = r!.starts as number;
    // A file from before restarts were kept apart counted every start after the first.
    const restarts = count(r!.restarts) ? (r!.restarts as number) : Math.max(0, starts - 1);
    return { starts, restarts, stopped: r!.stopped === true };
  }

  private async counts(unit: string): Promise<StartCounts> {
    return (await this.readCounts(unit)) ?? { starts: 0, restarts: 0, stopped: false };
  }

  private async writeCount(unit: string, c: StartCounts): Promise<void> {
    const file = this.file(COUNT_DIR, unit, '.starts.json');
    try {
      await mkdir(path.dirname(file), { recursive: true });
      await writeFileDurable(file, `${JSON.stringify(c)}\n`);
    } catch (err) {
      throw new AppError('NK_SERVICE_START_FAILED', `cannot record the start of ${unit} in ${file}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Counts a start before it happens, so a start that crashes the agent midway still
   * counts: a restart too when an earlier process ended without being stopped (it died).
   */
  private async countStart(unit: string): Promise<void> {
    const c = await this.counts(unit);
    const afterCrash = c.starts > 0 && !c.stopped;
    await this.writeCount(unit, { starts: c.starts + 1, restarts: c.restarts + (afterCrash ? 1 : 0), stopped: false });
  }

  /** The recorded process when it is still the one we started, else null. */
  async running(unit: string): Promise<PidRecord | null> {
    let rec: PidRecord;
    try {
      rec = JSON.parse(await readFile(this.file(RUN_DIR, unit, '.pid'), 'utf8')) as PidRecord;
    } catch {
      return null;
    }
    if (!Number.isInteger(rec.pid) || rec.pid <= 1) return null;
    return (await processStart(rec.pid)) === rec.startTime ? rec : null;
  }

  private async exitsWithin(rec: PidRecord, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if ((await processStart(rec.pid)) !== rec.startTime) return true;
      await sleep(25);
    }
    return false;
  }

  private async readUnit(unit: string): Promise<SupervisedUnit> {
    const file = this.file(SUPERVISE_DIR, unit, '.json');
    let desc: unknown;
    try {
      desc = JSON.parse(await readFile(file, 'utf8'));
    } catch (err) {
      throw new AppError('NK_SERVICE_UNIT_INVALID', `cannot read supervised unit ${file}: ${(err as Error).message}`, { cause: err });
    }
    const d = desc as Partial<SupervisedUnit> | null;
    const argvOk = Array.isArray(d?.argv) && d.argv.length > 0 && d.argv.every((a) => typeof a === 'string') && d.argv[0]?.startsWith('/') === true;
    const envOk = d?.env === undefined || (typeof d.env === 'object' && d.env !== null && Object.values(d.env).every((v) => typeof v === 'string'));
    if (!argvOk || !envOk) throw new AppError('NK_SERVICE_UNIT_INVALID', `${file} must be {"argv": ["/absolute/host/path", ...], "env"?: {...}}`);
    return d as SupervisedUnit;
  }

  private async start(unit: string, desc: SupervisedUnit): Promise<void> {
    const [bin, ...args] = desc.argv;
    const exe = resolveHostPath(this.hostRoot, bin ?? '/');
    const logFile = this.file(LOG_DIR, unit, '.log');
    const pidFile = this.file(RUN_DIR, unit, '.pid');
    await mkdir(path.dirname(logFile), { recursive: true });
    await mkdir(path.dirname(pidFile), { recursive: true });
    await this.countStart(unit);
    const log = await open(logFile, 'a');
    let pid: number;
    try {
      const child = spawn(exe, args, { detached: true, stdio: ['ignore', log.fd, log.fd], env: { PATH: MINIMAL_PATH, ...desc.env } });
      pid = await new Promise<number>((resolve, reject) => {
        child.once('spawn', () => resolve(child.pid ?? -1));
        child.once('error', reject);
      });
      child.unref();
    } catch (err) {
      throw new AppError('NK_SERVICE_START_FAILED', `cannot start ${unit} (${exe}): ${(err as Error).message}`, { cause: err });
    } finally {
      await log.close();
    }
    const startTime = await processStart(pid);
    if (startTime === null) throw new AppError('NK_SERVICE_START_FAILED', `${unit} (${exe}) exited at once; see ${logFile}`);
    await writeFileDurable(pidFile, `${JSON.stringify({ pid, startTime } satisfies PidRecord)}\n`);
  }
}
