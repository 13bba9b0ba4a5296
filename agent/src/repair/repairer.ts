/**
 * The agent's repairs, each a thin act followed by a health check on the probes that
 * feed the reports:
 *
 *   service.restart  restart through the service manager; wait for the unit's probe
 *                    (kubelet unit -> kubelet probe, runtime unit -> CRI probe, any other
 *                    unit -> its service state active)
 *   config.restore   allow-listed path, atomic durable write; wait for the given probe
 *   node.reboot      only with the agent's own --allow-reboot; `systemctl reboot`
 *
 * Package restores are `package.install` (the verified, journaled install path).
 * Never throws for node faults: every outcome is a RepairResult plus an error or null.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '@nodekeeper/common';
import type { ConfigRestoreParams, NodeRebootParams, RepairResult, ServiceRestartParams } from '@nodekeeper/protocol';
import { writeFileDurable } from '@nodekeeper/common';
import { waitHealthy, type HealthCheck, type HealthProbeKind } from '../install/health.ts';
import { readBootId } from '../probes/boot.ts';
import { errorOf } from '../install/install-deps.ts';
import { describeFailure, type CommandRunner } from '../probes/run-command.ts';
import type { ServiceManager } from '../services/service-manager.ts';
import { RepairErrorCode } from './codes.ts';
import { prepareConfigPath } from './config-path.ts';
import type { RepairLog } from './repair-log.ts';

export interface RepairOutcome {
  readonly result: RepairResult;
  readonly error: { readonly code: string; readonly message: string } | null;
}

export interface RepairerDeps {
  readonly hostRoot: string;
  readonly stateDir: string;
  readonly services: ServiceManager;
  readonly health: HealthCheck;
  /** Which units the kubelet and runtime probes watch (ProbeConfig's kubelet.unit, runtime.unit). */
  readonly units: { readonly kubelet: string; readonly runtime: string };
  /** Host dirs config.restore may write under (default: the CNI conf dir). */
  readonly configDirs: readonly string[];
  /** The agent's own --allow-reboot; the coordinator cannot turn it on. */
  readonly allowReboot: boolean;
  /** Runs systemctl reboot (tests inject a recorder: never reboot the test machine). */
  readonly run: CommandRunner;
  readonly record: RepairLog;
  readonly log: Logger;
  readonly healthIntervalMs?: number;
  /** The kernel's boot id, so a re-delivered reboot after the reboot is not done twice (default: the host root's, probes/boot.ts). */
  readonly bootId?: () => Promise<string>;
  /**
   * Reboots the host instead of `systemctl reboot` (the supervisor service manager's
   * requestReboot on hosts without systemd); throws when the reboot could not be asked for.
   */
  readonly rebootNode?: (reason: string) => Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const SYSTEMCTL = '/usr/bin/systemctl';


export class Repairer {
  private readonly d: RepairerDeps;

  constructor(deps: RepairerDeps) {
    this.d = deps;
  }

  /** The probe that decides a unit is healthy after a restart. */
  probeOf(unit: string): HealthProbeKind | 'service' {
    if (unit === this.d.units.kubelet) return 'kubelet';
    if (unit === this.d.units.runtime) return 'runtime';
    return 'service';
  }

  /** `service.restart`: restart, then wait for the unit's probe. */
  async restartService(p: ServiceRestartParams, meta: { commandId?: string; source?: 'command' | 'local' } = {}): Promise<RepairOutcome> {
    const probe = this.probeOf(p.unit);
    const timeoutMs = p.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let outcome: RepairOutcome;
    try {
      await this.d.services.restart(p.unit);
      const verdict = await this.waitFor(probe, p.unit, timeoutMs);
      outcome = verdict.healthy
        ? { result: { outcome: 'healthy', target: p.unit, probe, message: verdict.message }, error: null }
        : { result: { outcome: 'unhealthy', target: p.unit, probe, message: verdict.message }, error: { code: RepairErrorCode.unhealthy, message: `${p.unit} restarted but not healthy within ${timeoutMs} ms: ${verdict.message}` } };
    } catch (err) {
      const e = errorOf(err, RepairErrorCode.restartFailed);
      this.d.log.warn({ err, unit: p.unit }, 'restart failed');
      outcome = { result: { outcome: 'unhealthy', target: p.unit, probe, message: e.message }, error: { code: RepairErrorCode.restartFailed, message: `restarting ${p.unit} failed: ${e.message}` } };
    }
    await this.remember('service.restart', outcome, meta);
    return outcome;
  }

  /** `config.restore`: allow-list, atomic durable write, then wait for `healthProbe`. */
  async restoreConfig(p: ConfigRestoreParams, meta: { commandId?: string } = {}): Promise<RepairOutcome> {
    const probe = p.healthProbe ?? 'none';
    const refused = (code: string, message: string): RepairOutcome => ({ result: { outcome: 'refused', target: p.path, probe, message }, error: { code, message } });
    // Group/other write, setuid/setgid/sticky: a config file never needs them.
    if ((p.mode & 0o7022) !== 0) return refused(RepairErrorCode.badParams, `mode ${p.mode.toString(8)} is group/other-writable or special; refusing`);
    let file: string;
    try {
      file = await prepareConfigPath(this.d.hostRoot, p.path, this.d.configDirs);
    } catch (err) {
      const e = errorOf(err, RepairErrorCode.writeFailed);
      this.d.log.warn({ err, path: p.path }, 'config restore refused');
      const outcome = refused(e.code, e.message);
      await this.remember('config.restore', outcome, meta);
      return outcome;
    }
    let outcome: RepairOutcome;
    try {
      // temp file + fsync + rename + directory fsync: the probe (and containerd) see the old file or the new.
      await writeFileDurable(file, p.content, p.mode);
    } catch (err) {
      outcome = refused(RepairErrorCode.writeFailed, `writing ${p.path} failed: ${(err as Error).message}`);
      await this.remember('config.restore', outcome, meta);
      return outcome;
    }
    const timeoutMs = p.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const verdict = await waitHealthy(this.d.health, probe, '', timeoutMs, this.d.healthIntervalMs);
    outcome = verdict.healthy
      ? { result: { outcome: 'healthy', target: p.path, probe, message: verdict.message }, error: null }
      : { result: { outcome: 'unhealthy', target: p.path, probe, message: verdict.message }, error: { code: RepairErrorCode.unhealthy, message: `${p.path} written but ${probe} not healthy within ${timeoutMs} ms: ${verdict.message}` } };
    await this.remember('config.restore', outcome, meta);
    return outcome;
  }

  /**
   * `node.reboot`: refused unless this agent was started with --allow-reboot. A marker
   * with the boot id is written before `systemctl reboot`, so the same command
   * re-delivered after the reboot answers "rebooted" instead of rebooting again.
   */
  async reboot(commandId: string, p: NodeRebootParams): Promise<RepairOutcome> {
    const target = 'node';
    if (!this.d.allowReboot) {
      const message = 'this agent does not allow reboots (start it with --allow-reboot)';
      const outcome: RepairOutcome = { result: { outcome: 'refused', target, probe: 'none', message }, error: { code: RepairErrorCode.rebootNotAllowed, message } };
      await this.remember('node.reboot', outcome, { commandId });
      return outcome;
    }
    const bootId = this.d.bootId ?? (async () => (await readBootId(this.d.hostRoot)) ?? 'unknown');
    const marker = path.join(this.d.stateDir, 'repairs', `reboot-${commandId}.json`);
    const now = await bootId();
    const earlier = await readFile(marker, 'utf8').then((t) => (JSON.parse(t) as { bootId?: string }).bootId, () => undefined);
    if (earlier !== undefined) {
      const done = earlier !== now;
      return { result: { outcome: done ? 'healthy' : 'rebooting', target, probe: 'none', message: done ? `the node rebooted (boot ${earlier} -> ${now})` : 'the reboot was already requested' }, error: null };
    }
    try {
      await mkdir(path.dirname(marker), { recursive: true, mode: 0o700 });
      await writeFileDurable(marker, `${JSON.stringify({ bootId: now, reason: p.reason })}\n`, 0o600);
    } catch (err) {
      const message = `cannot record the reboot before doing it: ${(err as Error).message}`;
      return { result: { outcome: 'refused', target, probe: 'none', message }, error: { code: RepairErrorCode.stateFailed, message } };
    }
    this.d.log.warn({ reason: p.reason, command: commandId }, 'rebooting the node');
    const failure = await this.requestReboot(p.reason);
    let outcome: RepairOutcome;
    if (failure !== null) {
      await rm(marker, { force: true });
      const message = failure;
      outcome = { result: { outcome: 'refused', target, probe: 'none', message }, error: { code: RepairErrorCode.rebootFailed, message } };
    } else {
      outcome = { result: { outcome: 'rebooting', target, probe: 'none', message: `reboot requested: ${p.reason}` }, error: null };
    }
    await this.remember('node.reboot', outcome, { commandId });
    return outcome;
  }

  /** Asks for the reboot; the reason it could not be asked for, or null. */
  private async requestReboot(reason: string): Promise<string | null> {
    if (this.d.rebootNode !== undefined) return this.d.rebootNode(reason).then(() => null, (err: unknown) => `reboot request failed: ${(err as Error).message}`);
    const r = await this.d.run(SYSTEMCTL, ['reboot'], { timeoutMs: 60_000, env: { SYSTEMD_PAGER: '', LC_ALL: 'C' } });
    return r.code !== 0 || r.spawnError !== null ? `systemctl reboot failed: ${describeFailure(SYSTEMCTL, r)}` : null;
  }

  private async waitFor(probe: HealthProbeKind | 'service', unit: string, timeoutMs: number): Promise<{ healthy: boolean; message: string }> {
    if (probe !== 'service') return waitHealthy(this.d.health, probe, '', timeoutMs, this.d.healthIntervalMs);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.d.services.state(unit);
      const v = { healthy: s.activeState === 'active', message: `${unit} ${s.activeState ?? 'unknown'}/${s.subState ?? 'unknown'}` };
      if (v.healthy || Date.now() + (this.d.healthIntervalMs ?? 500) > deadline) return v;
      await sleep(this.d.healthIntervalMs ?? 500);
    }
  }

  /** Records the repair; a failure to record is logged, never turned into the repair's failure. */
  private async remember(kind: string, o: RepairOutcome, meta: { commandId?: string; source?: 'command' | 'local' }): Promise<void> {
    try {
      await this.d.record.append({
        at: new Date().toISOString(),
        source: meta.source ?? 'command',
        kind,
        target: o.result.target,
        outcome: o.result.outcome,
        message: (o.error?.message ?? o.result.message).slice(0, 1000),
        ...(meta.commandId === undefined ? {} : { commandId: meta.commandId }),
        ...(meta.source === 'local' ? { reported: false } : {}),
      });
    } catch (err) {
      this.d.log.error({ err, kind }, 'could not record a repair');
    }
  }
}
