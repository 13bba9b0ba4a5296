/**
 * `package.rollback`: return a package to the version its `previous` link names
 * (previous-version.ts; the coordinator cannot name an adopted directory itself), as a
 * journaled state machine, an install without download, verify and stage:
 *
 *   switch -> restart -> health -> commit
 *
 * The journal (same file, format and durability as an install's, `kind: 'rollback'`) is
 * written before each step acts. When a step fails, the rollback is undone: `current`
 * is switched forward again to the version that was active, restarted and checked
 * (journal steps rollback-switch, rollback-restart, rollback-health), and the result is
 * NK_INSTALL_ROLLBACK_FAILED with the version really active.
 *
 * Recovery after a kill -9 carries the rollback through rather than refusing it: every
 * forward step is idempotent (the switch is a rename to the same target, restart and
 * health are repeated, the commit rewrites the same state), and a rollback is a repair
 * the coordinator wants finished. Killed while undoing, the undo is run again.
 */
import { AppError, toSemver } from '@nodekeeper/common';
import { canonicalJson, type InstallResult, type InstallStep, type RollbackParams } from '@nodekeeper/protocol';
import { InstallErrorCode } from './codes.ts';
import { checkManifest, DEFAULT_INSTALL_POLICY } from './confine.ts';
import { activate, revert, stepLog } from './activate.ts';
import { errorOf, type InstallerDeps, type InstallOutcome, type Progress } from './install-deps.ts';
import type { JournalStep, RollbackJournalRecord, StepFailure } from './journal.ts';
import { packageLayout, readCurrent, readVersionMeta, treeHash, versionDigest, versionDir, type PackageLayout } from './layout.ts';
import { commitPrevious, readPrevious } from './previous-version.ts';

type Base = Omit<RollbackJournalRecord, 'history' | 'step'>;

export class PackageRollback {
  private readonly d: InstallerDeps;

  constructor(deps: InstallerDeps) {
    this.d = deps;
  }

  private layout(pkg: string): PackageLayout {
    return packageLayout(this.d.hostRoot, this.d.packagesDir, pkg);
  }

  private async enter(rec: RollbackJournalRecord | null, base: Base, step: JournalStep, progress: Progress, message: string): Promise<RollbackJournalRecord> {
    const next = await this.d.journal.enterRollback(base, rec, step);
    await this.d.hooks?.beforeStep?.(step);
    progress(step, message);
    return next;
  }

  /** Runs the rollback of `params.package` for command `commandId`. Never throws for node faults. */
  async run(commandId: string, params: RollbackParams, progress: Progress = () => {}): Promise<InstallOutcome> {
    const l = this.layout(params.package);
    const log = this.d.log.child({ command: commandId, pkg: params.package });
    try {
      // A rollback's manifest is held to the same allow-list as an install's.
      checkManifest(params.manifest, this.d.policy ?? DEFAULT_INSTALL_POLICY);
    } catch (err) {
      return refused(params.package, await readCurrent(l).catch(() => null), 'switch', errorOf(err, InstallErrorCode.badParams));
    }
    let from: string | null;
    let to: string | null;
    try {
      from = await readCurrent(l);
      to = await readPrevious(l);
    } catch (err) {
      return refused(params.package, null, 'switch', { code: InstallErrorCode.stateFailed, message: `cannot read ${l.current} or ${l.previous}: ${(err as Error).message}` });
    }
    if (to === null) {
      return refused(params.package, from, 'switch', { code: InstallErrorCode.noPrevious, message: `${params.package} has no version to return to: no committed install replaced an earlier one` });
    }
    if ((await versionDigest(l, to).catch(() => null)) === null) {
      return refused(params.package, from, 'switch', { code: InstallErrorCode.noPrevious, message: `${params.package}'s previous version ${to} is gone from ${l.versionsDir}` });
    }
    // The way back is reused as it lies on disk: only if it is still what was staged (installer.ts `intact`).
    const meta = await readVersionMeta(l, to);
    if (meta?.tree !== undefined && (await treeHash(versionDir(l, to)).catch(() => null)) !== meta.tree) {
      log.warn({ to }, 'the previous version changed since it was staged; refusing to roll back to it');
      return refused(params.package, from, 'switch', { code: InstallErrorCode.versionTampered, message: `${params.package}'s previous version ${to} changed on disk since it was staged; reinstall it with package.install instead` });
    }
    const unsigned = await this.unsignedManifest(l, params, from, to);
    if (unsigned !== null) return refused(params.package, from, 'switch', { code: InstallErrorCode.signatureInvalid, message: unsigned });
    const mismatch = expectationMismatch(params.expectedVersion, to);
    if (mismatch !== null) log.warn({ expected: params.expectedVersion, previous: to }, mismatch);

    if (to === from) {
      progress('health', `${to} is already active; checking its health`);
      const verdict = await this.d.health(params.manifest.healthProbe, to);
      if (verdict.healthy) {
        return { result: { package: params.package, activeVersion: to, previousVersion: from, outcome: 'already-installed', message: `${params.package} is already at ${to}, the version to roll back to, and healthy` }, error: null };
      }
      // Active but unhealthy: restart and check, as an install of the active version would.
    }
    const base: Base = { kind: 'rollback', commandId, params, fromVersion: from, toVersion: to };
    let rec: RollbackJournalRecord;
    try {
      rec = await this.enter(null, base, 'switch', progress, `switching ${params.package} back from ${from ?? 'nothing'} to ${to}`);
    } catch (err) {
      return refused(params.package, from, 'switch', errorOf(err, InstallErrorCode.stateFailed));
    }
    log.info({ from, to }, 'rolling back');
    return this.forward(rec, base, progress, false);
  }

  /**
   * With trusted keys, a rollback's manifest (which no key signs) must be the one recorded
   * with the version it returns to, else with the active one (an adopted `to` has none):
   * the manifest that was verified when that version was installed. Why not, or null.
   * Versions staged before manifests were recorded carry none and are not held to one.
   */
  private async unsignedManifest(l: PackageLayout, params: RollbackParams, from: string | null, to: string): Promise<string | null> {
    if (this.d.trustedKeys.length === 0) return null;
    const recorded = (await readVersionMeta(l, to))?.manifest ?? (from === null ? undefined : (await readVersionMeta(l, from))?.manifest);
    if (recorded === undefined || canonicalJson(recorded) === canonicalJson(params.manifest)) return null;
    return `the rollback's manifest is not the one verified when ${params.package} was installed (trusted keys are configured, and a rollback carries no signature of its own)`;
  }

  /** Finishes a rollback a killed agent left in `rec` (see the module comment). */
  recover(rec: RollbackJournalRecord, progress: Progress = () => {}): Promise<InstallOutcome> {
    const { history: _h, step: _s, failure, ...base } = rec;
    if (failure !== undefined) return this.undo(rec, base, failure, progress);
    return this.forward(rec, base, progress, true);
  }

  /** switch -> restart -> health -> commit (activate.ts); any failure is undone by undo(). */
  private async forward(rec: RollbackJournalRecord, base: Base, progress: Progress, recovering: boolean): Promise<InstallOutcome> {
    const { params, fromVersion: from, toVersion: to } = base;
    const l = this.layout(params.package);
    const steps = stepLog(rec, (prior, step) => this.d.journal.enterRollback(base, prior, step), this.d.hooks, progress);
    const done = await activate(this.d, steps, {
      layout: l,
      manifest: params.manifest,
      version: to,
      // The first 'switch' record was written by run(); a recovery writes its own.
      switch: { record: recovering ? `switching ${params.package} back to ${to}` : null },
      reportSwitch: true,
      commitMessage: `recording ${to} as active`,
      commit: async () => {
        // previous := to, so a second rollback finds it active (previous-version.ts says why).
        await commitPrevious(l, { kind: 'rollback', from, to }).catch((err: unknown) => {
          throw new AppError(InstallErrorCode.commitFailed, `updating ${l.previous} failed: ${(err as Error).message}`, { cause: err });
        });
      },
    });
    if (done.ok) {
      const note = expectationMismatch(params.expectedVersion, to);
      return {
        result: {
          package: params.package,
          activeVersion: to,
          previousVersion: from,
          outcome: from === to ? 'already-installed' : 'rolled-back',
          message: `${params.package} rolled back from ${from ?? 'nothing'} to ${to}, healthy${note === null ? '' : ` (${note})`}`,
        },
        error: null,
      };
    }
    const failure: StepFailure = { step: done.step, ...errorOf(done.err, InstallErrorCode.rollbackFailed) };
    this.d.log.warn({ err: done.err, step: done.step, command: base.commandId }, 'rollback failed; switching forward again');
    return this.undo(steps.rec, base, failure, progress);
  }

  /** Switches forward again to `fromVersion`, restarts it and waits for its health (activate.ts revert). Idempotent. */
  private async undo(rec: RollbackJournalRecord, base: Base, failure: StepFailure, progress: Progress): Promise<InstallOutcome> {
    const { params, fromVersion: from, toVersion: to } = base;
    const l = this.layout(params.package);
    const why = `rolling back to ${to} failed at ${failure.step}: ${failure.message}`;
    const failed = (active: string | null, message: string): InstallOutcome => ({
      result: { package: params.package, activeVersion: active, previousVersion: from, outcome: active === to && to !== from ? 'rolled-back' : 'refused', failedStep: failure.step, message },
      error: { code: InstallErrorCode.rollbackFailed, message },
    });
    // Repairing the version already active: there is nothing else to switch to.
    if (from === to) return failed(to, why);
    const b: Base = { ...base, failure };
    try {
      const steps = stepLog(rec, (prior, step) => this.d.journal.enterRollback(b, prior, step), this.d.hooks, progress);
      const verdict = await revert(this.d, steps, { layout: l, manifest: params.manifest, version: from, switchMessage: `switching forward again to ${from ?? 'nothing'}` });
      const state = verdict.healthy ? 'healthy' : `not healthy either: ${verdict.message}`;
      return failed(from, `${why}; switched forward again to ${from ?? 'nothing'}, ${state}`);
    } catch (err) {
      const e = errorOf(err, InstallErrorCode.rollbackFailed);
      const active = await readCurrent(l).catch(() => null);
      return failed(active, `${why}; switching forward again to ${from ?? 'nothing'} failed too: ${e.message}; ${active ?? 'nothing'} is active`);
    }
  }
}

function refused(pkg: string, active: string | null, step: InstallStep, e: { code: string; message: string }): InstallOutcome {
  const result: InstallResult = { package: pkg, activeVersion: active, previousVersion: active, outcome: 'refused', failedStep: step, message: `${e.message}; nothing was changed` };
  return { result, error: e };
}

/**
 * The coordinator's expectedVersion is informational (a raw reported string such as
 * `Kubernetes v1.31.2`): a clear disagreement with the agent's own record is logged and
 * told in the result, never acted on. Adopted directories carry no version to compare.
 */
export function expectationMismatch(expected: string | null, previous: string): string | null {
  if (expected === null || previous.startsWith('adopted-')) return null;
  const want = toSemver(expected);
  const have = toSemver(previous);
  return want !== null && have !== null && want !== have ? `the coordinator expected ${expected}; this node's previous version is ${previous}` : null;
}
