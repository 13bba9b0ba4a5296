/**
 * One package install as a journaled state machine:
 *
 *   download -> verify -> stage -> switch -> restart -> health -> commit
 *
 * The journal is written before each step acts. A failure before the switch changes
 * nothing the node runs (`refused`); a failure after it switches back, restarts and
 * waits for health (`rolled-back`). On start, recover() finishes or undoes whatever a
 * killed agent left, so the package is wholly at the old version or wholly at the new
 * one (architecture invariant 3), and the outcome says which.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { AppError, isLowerVersion } from '@nodekeeper/common';
import type { InstallParams, InstallResult, InstallStep, RollbackParams } from '@nodekeeper/protocol';
import { InstallErrorCode } from './codes.ts';
import { downloadArtifact } from './download.ts';
import { activate, revert, stepLog } from './activate.ts';
import { errorOf, type InstallerDeps, type InstallOutcome, type Progress } from './install-deps.ts';
import type { AnyJournalRecord, JournalRecord, JournalStep, StepFailure } from './journal.ts';
import { checkManifest, DEFAULT_INSTALL_POLICY, type InstallPolicy } from './confine.ts';
import { adoptExisting, packageLayout, readCurrent, readVersionMeta, stagingDir, switchCurrent, treeHash, versionDigest, versionDir, type PackageLayout } from './layout.ts';
import { PackageRollback } from './package-rollback.ts';
import { commitPrevious } from './previous-version.ts';
import { stageVersion } from './stage.ts';
import { verifyArtifact, verifyStatement } from './verify.ts';
import { versionDamage } from '../repair/integrity.ts';
import { SelfUpgradeErrorCode } from '../self-upgrade/codes.ts';
import { SELF_PACKAGE } from '../self-upgrade/decide.ts';

export type { InstallerDeps, InstallHooks, InstallOutcome, Progress } from './install-deps.ts';

export class Installer {
  private readonly d: InstallerDeps;
  private readonly rollbacks: PackageRollback;
  private readonly policy: InstallPolicy;

  constructor(deps: InstallerDeps) {
    this.d = deps;
    this.policy = deps.policy ?? DEFAULT_INSTALL_POLICY;
    this.rollbacks = new PackageRollback(deps);
  }

  /** Runs `package.rollback` (package-rollback.ts) for command `commandId`. Never throws for node faults. */
  rollbackPackage(commandId: string, params: RollbackParams, progress: Progress = () => {}): Promise<InstallOutcome> {
    if (params.package === SELF_PACKAGE) {
      // Restarting itself mid-command would kill the rollback; the agent goes back by its guard, or by an install of the older version.
      const message = `${SELF_PACKAGE} cannot be rolled back with package.rollback: install the earlier version (package.install, with --allow-downgrade on the agent); a new version that does not confirm is switched back by the node itself`;
      return Promise.resolve({ result: { package: SELF_PACKAGE, activeVersion: null, previousVersion: null, outcome: 'refused', failedStep: 'switch', message }, error: { code: SelfUpgradeErrorCode.manifestInvalid, message } });
    }
    return this.rollbacks.run(commandId, params, progress);
  }

  private layout(pkg: string): PackageLayout {
    return packageLayout(this.d.hostRoot, this.d.packagesDir, pkg);
  }

  private async enter(rec: JournalRecord | null, base: Omit<JournalRecord, 'history' | 'step'>, step: JournalStep, progress: Progress, message: string): Promise<JournalRecord> {
    const next = await this.d.journal.enter(base, rec, step);
    await this.d.hooks?.beforeStep?.(step);
    progress(step, message);
    return next;
  }

  private async after(step: JournalStep): Promise<void> {
    await this.d.hooks?.afterStep?.(step);
  }

  /** Runs the install of `params` for command `commandId`. Never throws for node faults. */
  async install(commandId: string, params: InstallParams, progress: Progress = () => {}, opts: { downloadTimeoutMs?: number } = {}): Promise<InstallOutcome> {
    const l = this.layout(params.package);
    const { manifest, version } = params;
    const log = this.d.log.child({ command: commandId, pkg: params.package, version });
    let previous = await readCurrent(l);

    // Before anything is fetched: the manifest stays inside the allow-list, a trusted key
    // signed this very statement (the manifest included), and the version does not go down.
    try {
      // Includes the agent package's own rules (protocol agentManifestProblem).
      checkManifest(manifest, this.policy);
      verifyStatement(params, this.d.trustedKeys);
      this.checkDowngrade(params, previous);
    } catch (err) {
      const e = errorOf(err, InstallErrorCode.badParams);
      log.warn({ err }, 'install refused before anything was fetched');
      return this.refused(params, previous, 'verify', e);
    }

    // The version already active is re-verified first: deleted files are re-staged from the
    // artifact, broken links re-made, and only a whole version can be `already-installed`.
    let restage = false;
    if (previous === version) {
      const digest = await versionDigest(l, version);
      const damage = digest === null || digest === params.artifact.sha256 || digest === 'unknown' ? await versionDamage(l, manifest, version).catch((err: unknown) => ({ kind: 'content' as const, message: (err as Error).message })) : null;
      if (damage === null) return this.alreadyCurrent(commandId, l, params, progress);
      log.warn({ damage: damage.kind }, `the active version is damaged (${damage.message}); repairing it`);
      if (damage.kind === 'links') {
        progress('switch', `repairing links: ${damage.message}`);
        const rec = await this.d.journal.enter({ commandId, params, previousVersion: version }, null, 'switch');
        return this.afterSwitch(rec, progress, true);
      }
      restage = true;
    }

    const base = { commandId, params, previousVersion: previous };
    let rec: JournalRecord | null = null;
    let step: InstallStep = 'download';
    const partial = path.join(l.incoming, `${params.artifact.sha256}.partial`);
    try {
      // A version unpacked earlier from this very artifact (a rollback target) is reused, once its
      // content is checked against the hash recorded when it was staged (its statement was verified above).
      const reusable = !restage && (await this.intact(l, version, params.artifact.sha256, log));
      rec = await this.enter(rec, base, 'download', progress, reusable ? `version ${version} already unpacked` : `fetching ${params.artifact.size} bytes`);
      if (!reusable) {
        await rm(l.incoming, { recursive: true, force: true });
        await mkdir(l.incoming, { recursive: true });
        const timeoutMs = Math.min(this.d.download.timeoutMs, opts.downloadTimeoutMs ?? Number.POSITIVE_INFINITY);
        const got = await downloadArtifact(params.artifact, partial, { ...this.d.download, timeoutMs });
        await this.after('download');
        step = 'verify';
        rec = await this.enter(rec, base, 'verify', progress, 'checking sha256 and signature');
        const { signedBy } = verifyArtifact(params, got.sha256, this.d.trustedKeys);
        log.info({ signedBy }, 'artifact verified');
        await this.after('verify');
      }
      step = 'stage';
      rec = await this.enter(rec, base, 'stage', progress, `unpacking into versions/${version}`);
      if (!reusable) await stageVersion(l, params, partial, this.policy.archive, restage);
      // Adopting what apt put at the link paths changes no content that runs, only where it lives.
      const adopted = await adoptExisting(l, manifest, this.policy).catch((err: unknown) => {
        if (err instanceof AppError) throw err;
        throw new AppError(InstallErrorCode.stageFailed, `adopting the files at ${manifest.links.map((k) => k.path).join(', ')} failed: ${(err as Error).message}`, { cause: err });
      });
      if (adopted !== null) {
        previous = adopted;
        log.info({ adopted }, 'adopted the files installed before nodekeeper');
      }
      await this.after('stage');
    } catch (err) {
      await this.cleanup(l, version);
      const e = errorOf(err, InstallErrorCode.stageFailed);
      log.warn({ err, step }, 'install refused before the switch');
      return this.refused(params, previous, step, e);
    }

    const switched = { commandId, params, previousVersion: previous };
    if (params.package === SELF_PACKAGE && this.d.selfUpgrade !== undefined) {
      // Restarting itself ends this process: the self-upgrade records, switches and exits,
      // and the new version (or the old one, switched back) answers from this journal record.
      rec = await this.enter(rec, switched, 'switch', progress, `switching the agent from ${previous ?? 'nothing'} to ${version} and restarting into it`);
      const refused = await this.d.selfUpgrade.switchTo(commandId, params, previous);
      await this.cleanup(l, version);
      return refused;
    }
    try {
      rec = await this.enter(rec, switched, 'switch', progress, `switching ${params.package} from ${previous ?? 'nothing'} to ${version}`);
      await switchCurrent(l, version);
    } catch (err) {
      await this.cleanup(l, version);
      return this.refused(params, previous, 'switch', { code: InstallErrorCode.switchFailed, message: `switching to ${version} failed: ${(err as Error).message}` });
    }
    return this.afterSwitch(rec, progress, false);
  }

  /**
   * From a switched state: links, restart, health, commit (activate.ts); on failure, roll back.
   * `recovering`: the agent restarted mid-install; the service is restarted regardless.
   */
  private async afterSwitch(rec: JournalRecord, progress: Progress, recovering: boolean): Promise<InstallOutcome> {
    const { params, previousVersion: previous } = rec;
    const l = this.layout(params.package);
    const { manifest, version } = params;
    const steps = stepLog(rec, (prior, step) => this.d.journal.enter(rec, prior, step), this.d.hooks, progress);
    const done = await activate(this.d, steps, {
      layout: l,
      manifest,
      version,
      reportSwitch: !recovering,
      commitMessage: `recording ${version} as installed`,
      commit: async () => {
        // Last act of the commit, so a failure before it leaves `previous` as it was (what the
        // rollback below returns to). Re-running it after a kill writes the same link.
        await commitPrevious(l, { kind: 'install', from: previous, to: version }).catch((err: unknown) => {
          throw new AppError(InstallErrorCode.commitFailed, `recording ${previous ?? 'nothing'} as the version to roll back to failed: ${(err as Error).message}`, { cause: err });
        });
        await rm(l.incoming, { recursive: true, force: true });
      },
    });
    if (done.ok) {
      return {
        result: { package: params.package, activeVersion: version, previousVersion: previous, outcome: 'installed', message: `${params.package} ${version} installed and healthy (was ${previous ?? 'not installed'})` },
        error: null,
      };
    }
    this.d.log.warn({ err: done.err, step: done.step, command: rec.commandId }, 'install failed after the switch; rolling back');
    return this.rollback(steps.rec, { step: done.step, ...errorOf(done.err, InstallErrorCode.restartFailed) }, progress);
  }

  /** Switches back to the previous version, restarts it and waits for its health (activate.ts revert). Idempotent. */
  private async rollback(rec: JournalRecord, failure: StepFailure, progress: Progress): Promise<InstallOutcome> {
    const { params, previousVersion: previous } = rec;
    const l = this.layout(params.package);
    const base = { commandId: rec.commandId, params, previousVersion: previous, failure };
    const rolledBack = (message: string): InstallResult => ({
      package: params.package,
      activeVersion: previous,
      previousVersion: previous,
      outcome: 'rolled-back',
      failedStep: failure.step,
      message,
    });
    try {
      const steps = stepLog(rec, (prior, step) => this.d.journal.enter(base, prior, step), this.d.hooks, progress);
      const verdict = await revert(this.d, steps, { layout: l, manifest: params.manifest, version: previous, switchMessage: `switching back to ${previous ?? 'nothing'}` });
      if (!verdict.healthy) {
        return {
          result: rolledBack(`${failure.step} failed (${failure.message}); switched back to ${previous}, which is not healthy either: ${verdict.message}`),
          error: { code: InstallErrorCode.rollbackFailed, message: `rolled back to ${previous}, but it is not healthy: ${verdict.message}; the install had failed at ${failure.step}: ${failure.message}` },
        };
      }
      return { result: rolledBack(`${failure.step} failed: ${failure.message}; rolled back to ${previous ?? 'nothing'}`), error: { code: failure.code, message: failure.message } };
    } catch (err) {
      const e = errorOf(err, InstallErrorCode.rollbackFailed);
      const active = await readCurrent(l).catch(() => null);
      return {
        result: { ...rolledBack(`${failure.step} failed (${failure.message}); rolling back failed: ${e.message}`), activeVersion: active, outcome: active === previous ? 'rolled-back' : 'refused' },
        error: { code: InstallErrorCode.rollbackFailed, message: `rolling back to ${previous ?? 'nothing'} failed: ${e.message}` },
      };
    }
  }

  private async alreadyCurrent(commandId: string, l: PackageLayout, params: InstallParams, progress: Progress): Promise<InstallOutcome> {
    const { manifest, version } = params;
    const digest = await versionDigest(l, version);
    if (digest !== params.artifact.sha256 && digest !== 'unknown') {
      return this.refused(params, version, 'stage', { code: InstallErrorCode.versionConflict, message: `${version} is active with artifact ${digest}, not ${params.artifact.sha256}` });
    }
    progress('health', `${version} is already active; checking its health`);
    const verdict = await this.d.health(manifest.healthProbe, version);
    if (verdict.healthy) {
      return { result: { package: params.package, activeVersion: version, previousVersion: version, outcome: 'already-installed', message: `${params.package} ${version} is already active and healthy` }, error: null };
    }
    // Active but unhealthy: restarting is the one repair an install can offer.
    const rec = await this.d.journal.enter({ commandId, params, previousVersion: version }, null, 'switch');
    return this.afterSwitch(rec, progress, true);
  }

  /**
   * True when `versions/<version>` holds exactly what was staged from artifact `sha256`:
   * the recorded digest matches and the content hash recomputed now equals the recorded
   * one. Anything else is staged afresh from a new download (never trusted as it is).
   */
  private async intact(l: PackageLayout, version: string, sha256: string, log: InstallerDeps['log']): Promise<boolean> {
    if ((await versionDigest(l, version)) !== sha256) return false;
    const meta = await readVersionMeta(l, version);
    const now = await treeHash(versionDir(l, version)).catch(() => null);
    if (meta?.tree !== undefined && meta.tree === now) return true;
    log.warn({ recorded: meta?.tree ?? null, now }, `the unpacked ${version} does not match what was staged; fetching it again`);
    return false;
  }

  /** Throws NK_INSTALL_DOWNGRADE_REFUSED for a lower version than the active one, unless allowed. */
  private checkDowngrade(params: InstallParams, active: string | null): void {
    if (active === null || active.startsWith('adopted-') || this.policy.allowDowngrade) return;
    if (!isLowerVersion(params.version, active)) return;
    throw new AppError(
      InstallErrorCode.downgradeRefused,
      `${params.package} ${params.version} is lower than the active ${active}; a downgrade needs package.rollback, or --allow-downgrade on this agent`,
    );
  }

  private refused(params: InstallParams, active: string | null, step: InstallStep, e: { code: string; message: string }): InstallOutcome {
    return {
      result: { package: params.package, activeVersion: active, previousVersion: active, outcome: 'refused', failedStep: step, message: `${step} failed: ${e.message}; nothing was changed` },
      error: e,
    };
  }

  /** Removes what a refused install left (downloads, staging); never a complete version. */
  private async cleanup(l: PackageLayout, version: string): Promise<void> {
    await rm(l.incoming, { recursive: true, force: true }).catch(() => {});
    await rm(stagingDir(l, version), { recursive: true, force: true }).catch(() => {});
  }

  /**
   * Finishes or undoes an install a killed agent left in `rec`: before the switch,
   * clean up and refuse; after it, restart and decide by health; mid-rollback, roll back.
   * A `package.rollback` record goes to PackageRollback.recover.
   */
  async recover(rec: AnyJournalRecord, progress: Progress = () => {}): Promise<InstallOutcome> {
    if (rec.kind === 'rollback') return this.rollbacks.recover(rec, progress);
    if (rec.params.package === SELF_PACKAGE && this.d.selfUpgrade !== undefined && rec.step !== 'download' && rec.step !== 'verify' && rec.step !== 'stage') {
      // The agent's own upgrade: settled by the version that runs now (self-upgrade.ts).
      return this.d.selfUpgrade.recover(rec);
    }
    const l = this.layout(rec.params.package);
    const { version } = rec.params;
    if (rec.failure !== undefined) return this.rollback(rec, rec.failure, progress);
    const interrupted = (step: InstallStep): InstallOutcome =>
      this.refused(rec.params, rec.previousVersion, step, { code: InstallErrorCode.interrupted, message: `the agent stopped during ${step}` });
    switch (rec.step) {
      case 'download':
      case 'verify':
      case 'stage':
        await this.cleanup(l, version);
        return interrupted(rec.step);
      case 'switch':
        // rename(2) is atomic: either current points at the target or it does not.
        if ((await readCurrent(l)) !== version) {
          await this.cleanup(l, version);
          return interrupted('switch');
        }
        return this.afterSwitch(rec, progress, true);
      default:
        return this.afterSwitch(rec, progress, true);
    }
  }
}
