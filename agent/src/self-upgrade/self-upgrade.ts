/**
 * The agent upgrading itself (issue 11, item 4). The install stages and verifies the
 * release tarball into `versions/<v>` as for any package (install/installer.ts); then,
 * since restarting itself ends the process doing the install:
 *
 *   record (fsync) -> arm the rollback timer -> previous := old -> current := new -> exit
 *
 * systemd starts the unit again (Restart=always), now through the new `current`. The new
 * agent confirms once its hello was accepted and its first report sent: it installs its
 * own guard, removes the record (the commit point) and answers the install command,
 * whose journal record waited for it. If it never confirms, the guard (a sh script at a
 * place no version owns, run by ExecStartPre= and by nodekeeper-agent-rollback.timer)
 * switches `current` back; the old agent then answers the command with
 * NK_AGENT_UPGRADE_REVERTED. A kill -9 anywhere leaves one of the two versions running:
 * before the record, nothing changed; after it, the start decision (decide.ts) sorts it out.
 */
import { copyFile, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { fsyncPath, writeFileDurable, type Logger } from '@nodekeeper/common';
import type { InstallParams } from '@nodekeeper/protocol';
import { InstallErrorCode } from '../install/codes.ts';
import type { InstallOutcome, SelfUpgradeHandover } from '../install/install-deps.ts';
import type { JournalRecord } from '../install/journal.ts';
import { packageLayout, readCurrent, switchCurrent, type PackageLayout } from '../install/layout.ts';
import { writePrevious } from '../install/previous-version.ts';
import { SelfUpgradeErrorCode } from './codes.ts';
import { decideOnStart, ROLLBACK_TIMER, SELF_PACKAGE } from './decide.ts';
import { clearPending, readBoots, readPending, readReverted, upgradeFiles, writePending } from './record.ts';

/** Starts of the new version without a confirm before the guard switches back. */
export const MAX_BOOTS = 3;
/** The exit code with which the agent hands over to the new version (Restart=always starts it). */
export const HANDOVER_EXIT_CODE = 75;
/** The steps a test can kill the agent at (NK_AGENT_TEST_SELF_UPGRADE_KILL). */
export const KILL_POINTS = ['before-record', 'after-record', 'after-switch', 'new-start', 'confirm'] as const;

export interface SelfUpgradeDeps {
  readonly hostRoot: string;
  readonly packagesDir: string;
  /** The version this process runs. */
  readonly running: string;
  /** The release root this process runs from (holds `systemd/nodekeeper-agent-guard`), or null from the sources. */
  readonly installDir: string | null;
  /** `systemctl ARGS` on a systemd node; null elsewhere (no timer to arm). */
  readonly systemctl: ((args: readonly string[]) => Promise<void>) | null;
  /** Ends the process so systemd starts the new version. */
  readonly exit: (code: number) => void;
  /** Tests only: the step to kill -9 at, once (see KILL_POINTS). */
  readonly killAt: string | null;
  readonly log: Logger;
  readonly now?: () => number;
}

/** How the pending upgrade ended, as the install command's outcome. */
type Settled = InstallOutcome;

export class SelfUpgrade implements SelfUpgradeHandover {
  private readonly d: SelfUpgradeDeps;
  readonly layout: PackageLayout;
  private reported: () => void = () => {};
  private readonly reportedOnce: Promise<void>;
  /** The outcome for the command of the pending record (null: nothing was pending). */
  private settled: Promise<{ commandId: string; outcome: Settled } | null> = Promise.resolve(null);

  constructor(deps: SelfUpgradeDeps) {
    this.d = deps;
    this.layout = packageLayout(deps.hostRoot, deps.packagesDir, SELF_PACKAGE);
    this.reportedOnce = new Promise((resolve) => (this.reported = resolve));
  }

  /** Call when a hello was accepted and the first report after it sent: the new version is healthy. */
  reportedHealthy(): void {
    this.reported();
  }

  /**
   * Looks at what a previous run left (call once, at start, before the install journal is
   * recovered). A confirm waits for reportedHealthy() in the background.
   */
  async start(): Promise<void> {
    const l = this.layout;
    const [pending, current, reverted] = await Promise.all([readPending(l), readCurrent(l), readReverted(l)]);
    const decision = decideOnStart({ pending, running: this.d.running, current, reverted });
    const log = this.d.log;
    switch (decision.kind) {
      case 'none':
        // The guard belongs to the version that last confirmed; a first install has none yet.
        if (!(await exists(upgradeFiles(l).guard))) await this.installGuard().catch((err: unknown) => log.warn({ err }, 'could not install the self-upgrade guard'));
        return;
      case 'corrupt':
        log.error({ file: upgradeFiles(l).pending }, 'the pending-upgrade record is not whole; removing it, staying on the active version');
        await clearPending(l);
        return;
      case 'failed': {
        const p = decision.pending;
        log.error({ from: p.from, to: p.to, code: decision.code, boots: await readBoots(l) }, decision.message);
        if (decision.switchBack) await switchCurrent(l, p.from);
        await clearPending(l);
        await this.disarm();
        this.settled = Promise.resolve({ commandId: p.commandId, outcome: { result: { package: SELF_PACKAGE, activeVersion: p.from, previousVersion: p.from, outcome: 'rolled-back', failedStep: 'health', message: decision.message }, error: { code: decision.code, message: decision.message } } });
        return;
      }
      case 'confirm': {
        const p = decision.pending;
        log.info({ from: p.from, to: p.to, boots: await readBoots(l) }, 'started as the new version; confirming once connected and reported');
        await this.maybeKill('new-start');
        this.settled = this.reportedOnce.then(async () => {
          await this.maybeKill('confirm');
          await this.installGuard().catch((err: unknown) => log.warn({ err }, 'could not install the new guard; the old one stays'));
          await clearPending(l);
          await this.disarm();
          log.info({ from: p.from, to: p.to }, 'self-upgrade confirmed');
          return { commandId: p.commandId, outcome: { result: { package: SELF_PACKAGE, activeVersion: p.to, previousVersion: p.from, outcome: 'installed', message: `nodekeeper-agent ${p.to} reconnected and reported (was ${p.from})` }, error: null } };
        });
        return;
      }
    }
  }

  /**
   * The outcome of an install of the agent that a restart interrupted after its switch
   * (its journal record): the pending record's, once it is settled; without one, what
   * the version running now says.
   */
  async recover(rec: JournalRecord): Promise<InstallOutcome> {
    const s = await this.settled;
    if (s !== null && s.commandId === rec.commandId) return s.outcome;
    const { version } = rec.params;
    const from = rec.previousVersion;
    if (this.d.running === version) {
      return { result: { package: SELF_PACKAGE, activeVersion: version, previousVersion: from, outcome: 'installed', message: `nodekeeper-agent ${version} is running (was ${from ?? 'not installed'})` }, error: null };
    }
    const message = `the agent stopped during its upgrade to ${version}; it runs ${this.d.running}`;
    return { result: { package: SELF_PACKAGE, activeVersion: this.d.running, previousVersion: this.d.running, outcome: 'refused', failedStep: rec.step, message }, error: { code: InstallErrorCode.interrupted, message } };
  }

  /**
   * The switch: record, arm, previous, current, exit. Resolves only when it was refused
   * before anything changed (the agent is not in the layout, or a write failed); on
   * success the process exits and the new version answers the command.
   */
  async switchTo(commandId: string, params: InstallParams, from: string | null): Promise<InstallOutcome> {
    const l = this.layout;
    const to = params.version;
    const refuse = (code: string, message: string): InstallOutcome => ({
      result: { package: SELF_PACKAGE, activeVersion: from, previousVersion: from, outcome: 'refused', failedStep: 'switch', message: `switch failed: ${message}; nothing was changed` },
      error: { code, message },
    });
    if (this.d.systemctl === null) {
      return refuse(SelfUpgradeErrorCode.needsSystemd, `this agent does not run under systemd (service manager: supervisor), so nothing would start ${to} after it exits and no guard would switch back a bad one`);
    }
    if (from === null || from !== this.d.running) {
      return refuse(SelfUpgradeErrorCode.notInLayout, `this agent runs ${this.d.running}, but ${l.current} names ${from ?? 'nothing'}: it was not installed into the package layout (docs/install-agent.md), so a restart would not run ${to}`);
    }
    await this.maybeKill('before-record');
    const now = Math.floor((this.d.now ?? Date.now)() / 1000);
    try {
      await writePending(l, { commandId, from, to, deadline: now + Math.ceil(params.manifest.healthTimeoutMs / 1000), maxBoots: MAX_BOOTS });
    } catch (err) {
      return refuse(InstallErrorCode.stateFailed, `cannot write the pending-upgrade record: ${(err as Error).message}`);
    }
    await this.maybeKill('after-record');
    try {
      // Armed before the switch: killed after it, the timer is already there to catch a new version that never connects.
      await this.d.systemctl(['start', '--no-block', ROLLBACK_TIMER]);
      await writePrevious(l, from);
      await switchCurrent(l, to);
    } catch (err) {
      await switchCurrent(l, from).catch(() => {});
      await clearPending(l).catch(() => {});
      await this.disarm();
      return refuse(InstallErrorCode.switchFailed, `switching to ${to} failed: ${(err as Error).message}`);
    }
    await this.maybeKill('after-switch');
    this.d.log.warn({ from, to, command: commandId }, `switched to nodekeeper-agent ${to}; exiting so systemd starts it`);
    this.d.exit(HANDOVER_EXIT_CODE);
    return new Promise<InstallOutcome>(() => {});
  }

  /** Copies this version's guard to the fixed place (temp + rename): the guard of the version that last confirmed. */
  private async installGuard(): Promise<void> {
    if (this.d.installDir === null) return;
    const src = path.join(this.d.installDir, 'systemd', 'nodekeeper-agent-guard');
    if (!(await exists(src))) return;
    const dest = upgradeFiles(this.layout).guard;
    await copyFile(src, `${dest}.tmp`);
    await fsyncPath(`${dest}.tmp`);
    await rename(`${dest}.tmp`, dest);
    await fsyncPath(path.dirname(dest));
  }

  private async disarm(): Promise<void> {
    await this.d.systemctl?.(['stop', '--no-block', ROLLBACK_TIMER]).catch((err: unknown) => this.d.log.warn({ err }, 'could not stop the rollback timer; it stops itself'));
  }

  /** Tests only: kill -9 at `step`, once per step (a marker file keeps a restart from dying again). */
  private async maybeKill(step: (typeof KILL_POINTS)[number]): Promise<void> {
    if (this.d.killAt !== step) return;
    const marker = path.join(this.layout.pkgDir, `test-killed-${step}`);
    if (await exists(marker)) return;
    await writeFileDurable(marker, `${step}\n`);
    this.d.log.warn({ step }, 'test hook: kill -9 now');
    process.kill(process.pid, 'SIGKILL');
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
