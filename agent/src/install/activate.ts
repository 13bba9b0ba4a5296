/**
 * The one routine that makes a version the one that runs, shared by `package.install`
 * (installer.ts) and `package.rollback` (package-rollback.ts):
 *
 *   activate: switch -> restart -> health -> commit
 *   revert:   rollback-switch -> rollback-restart -> rollback-health   (after a failure)
 *
 * Every step is recorded in the journal (StepLog.enter) BEFORE it acts, and the hooks run
 * after it acted, so after a kill -9 recovery knows the last step that may have begun.
 * Every step is idempotent (the switch is a rename to the same target, a restart and a
 * health wait are repeated, the commit rewrites the same state), which is what lets
 * recovery run a routine again from the step its record names.
 *
 * The callers keep what differs: when the switch is recorded (an install's switch failure
 * is a refusal, before this routine), what else the commit writes, how a failure is
 * undone, and the outcome they answer.
 */
import { AppError } from '@nodekeeper/common';
import type { InstallStep, PackageManifest } from '@nodekeeper/protocol';
import { InstallErrorCode } from './codes.ts';
import { waitHealthy, type HealthVerdict } from './health.ts';
import type { InstallerDeps, InstallHooks, Progress } from './install-deps.ts';
import type { AnyJournalRecord, JournalStep } from './journal.ts';
import { ensureLinks, switchCurrent, type PackageLayout } from './layout.ts';
import { recordVersion } from './recorded-versions.ts';

/** The journal as a routine sees it. */
export interface StepLog {
  /** Records `step` durably (then the beforeStep hook and progress); throws NK_INSTALL_STATE_FAILED. */
  enter(step: JournalStep, message: string): Promise<void>;
  /** After `step` acted: the afterStep hook (the kill tests' second point). */
  after(step: JournalStep): Promise<void>;
}

/**
 * A StepLog over one command's journal record: `write` appends a step to the record
 * (Journal.enter or enterRollback); `rec` is always the latest record written.
 */
export function stepLog<R extends AnyJournalRecord>(rec: R, write: (prior: R, step: JournalStep) => Promise<R>, hooks: InstallHooks | undefined, progress: Progress): StepLog & { readonly rec: R } {
  let latest = rec;
  return {
    get rec() {
      return latest;
    },
    async enter(step, message) {
      latest = await write(latest, step);
      await hooks?.beforeStep?.(step);
      progress(step, message);
    },
    async after(step) {
      await hooks?.afterStep?.(step);
    },
  };
}

export type ActivateDeps = Pick<InstallerDeps, 'hostRoot' | 'recordedVersionsFile' | 'services' | 'health' | 'healthIntervalMs'>;

export interface Activation {
  readonly layout: PackageLayout;
  readonly manifest: PackageManifest;
  /** The version to bring up. */
  readonly version: string;
  /**
   * Whether this routine switches `current` to `version`, and records the 'switch' step
   * first (with this message) or finds it recorded by the caller (null). Absent: the
   * caller has switched already (an install, or its recovery).
   */
  readonly switch?: { readonly record: string | null };
  /** Whether the afterStep hook sees 'switch' (an install's recovery re-enters past it). */
  readonly reportSwitch: boolean;
  /** The commit step's progress message. */
  readonly commitMessage: string;
  /** The rest of the commit, after the active version is recorded; last act: `previous` (previous-version.ts). */
  commit(): Promise<void>;
}

/** Where activate() stopped: nothing (committed), or the step that failed and why. */
export type Activated = { readonly ok: true } | { readonly ok: false; readonly step: InstallStep; readonly err: unknown };

/** An adopted directory's name is not a version; the probes' recorded file gets none. */
export const recordable = (v: string | null): string | null => (v === null || v.startsWith('adopted-') ? null : v);

/** switch -> restart -> health -> commit for `a.version`. Never throws: a failure is returned for the caller to undo. */
export async function activate(d: ActivateDeps, steps: StepLog, a: Activation): Promise<Activated> {
  const { layout: l, manifest, version } = a;
  let step: InstallStep = 'switch';
  try {
    if (a.switch !== undefined) {
      if (a.switch.record !== null) await steps.enter('switch', a.switch.record);
      await switchCurrent(l, version).catch((err: unknown) => {
        throw new AppError(InstallErrorCode.switchFailed, `switching to ${version} failed: ${(err as Error).message}`, { cause: err });
      });
    }
    await ensureLinks(l, manifest).catch((err: unknown) => {
      if (err instanceof AppError) throw err;
      throw new AppError(InstallErrorCode.linkConflict, `cannot link ${manifest.links.map((k) => k.path).join(', ')}: ${(err as Error).message}`, { cause: err });
    });
    if (a.reportSwitch) await steps.after('switch');
    step = 'restart';
    await steps.enter('restart', manifest.service === null ? 'no service to restart' : `restarting ${manifest.service}`);
    if (manifest.service !== null) {
      await d.services.restart(manifest.service).catch((err: unknown) => {
        throw new AppError(InstallErrorCode.restartFailed, `restarting ${manifest.service} failed: ${(err as Error).message}`, { cause: err });
      });
    }
    await steps.after('restart');
    step = 'health';
    await steps.enter('health', `waiting up to ${manifest.healthTimeoutMs} ms for the ${manifest.healthProbe} probe`);
    const verdict = await waitHealthy(d.health, manifest.healthProbe, version, manifest.healthTimeoutMs, d.healthIntervalMs);
    if (!verdict.healthy) throw new AppError(InstallErrorCode.healthTimeout, `${version} not healthy within ${manifest.healthTimeoutMs} ms: ${verdict.message}`);
    await steps.after('health');
    step = 'commit';
    await steps.enter('commit', a.commitMessage);
    await recordVersion(d.hostRoot, d.recordedVersionsFile, l.pkg, recordable(version)).catch((err: unknown) => {
      throw new AppError(InstallErrorCode.commitFailed, `recording ${version} as the active version failed: ${(err as Error).message}`, { cause: err });
    });
    await a.commit();
    await steps.after('commit');
    return { ok: true };
  } catch (err) {
    return { ok: false, step, err };
  }
}

export interface Reversion {
  readonly layout: PackageLayout;
  readonly manifest: PackageManifest;
  /** The version to return to; null: the package had none, so its service is stopped. */
  readonly version: string | null;
  /** The rollback-switch step's progress message. */
  readonly switchMessage: string;
}

/**
 * rollback-switch -> rollback-restart -> rollback-health: back to `r.version` after a
 * failure past the switch, and what its health says. Idempotent, so recovery runs it
 * again whole. Throws when a step itself fails (the caller reads what is active then).
 */
export async function revert(d: ActivateDeps, steps: StepLog, r: Reversion): Promise<HealthVerdict> {
  const { layout: l, manifest, version } = r;
  await steps.enter('rollback-switch', r.switchMessage);
  await switchCurrent(l, version);
  await steps.after('rollback-switch');
  await steps.enter('rollback-restart', manifest.service === null ? 'no service to restart' : `restarting ${manifest.service}`);
  if (manifest.service !== null) {
    // With nothing to go back to, the service is stopped rather than left running the failed version.
    if (version === null) await d.services.stop(manifest.service);
    else await d.services.restart(manifest.service);
  }
  await steps.after('rollback-restart');
  await steps.enter('rollback-health', `waiting for ${version ?? 'nothing'} to be healthy`);
  const verdict = version === null ? { healthy: true, message: 'nothing to be healthy' } : await waitHealthy(d.health, manifest.healthProbe, version, manifest.healthTimeoutMs, d.healthIntervalMs);
  // The version `current` names now, whatever its health: the failed commit may have recorded the other one.
  await recordVersion(d.hostRoot, d.recordedVersionsFile, l.pkg, recordable(version));
  await steps.after('rollback-health');
  return verdict;
}
