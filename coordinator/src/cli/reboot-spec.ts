/**
 * `nkctl reboot create NAME --selector ... [--window ... --time-zone ...]
 * [--blocking-pods SEL] [--prometheus URL --alert-filter RE] ...`: flags to a reboot
 * Rollout object (a Rollout with spec.reboot instead of spec.packages). Pure, like
 * rollout-spec.ts. Defaults differ from package rollouts: no canary, one wave, one
 * machine at a time, a 1 minute soak after each reboot.
 */
import { API_VERSION, type RolloutObjectInput } from '@nodekeeper/api';
import { CliErrorCode, usageError } from './cli-errors.ts';
import { parseDuration } from './duration.ts';
import { selectorFromFlags, strategyFromFlags, type RolloutFlags } from './rollout-spec.ts';

export interface RebootFlags extends Omit<RolloutFlags, 'package' | 'allowDowngrade'> {
  readonly onlyRequired?: boolean;
  readonly blockingPods?: string;
  readonly prometheus?: string;
  readonly alertFilter?: string;
  readonly drainTimeout?: string;
  readonly gracePeriod?: string;
  readonly force?: boolean;
  readonly deleteEmptydirData?: boolean;
  readonly rebootTimeout?: string;
}

export const REBOOT_FLAG_DEFAULTS = {
  canary: '0',
  soak: '1m',
  batches: '100',
  maxUnavailable: '1',
  maxFailures: '1',
  onFailure: 'pause',
} as const;

const NAME_RE = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const usage = (message: string) => usageError(CliErrorCode.usage, message);

function seconds(value: string, flag: string, min: number): number {
  const ms = parseDuration(value, flag);
  if (ms % 1000 !== 0 || ms < min * 1000) throw usageError(CliErrorCode.badDuration, `invalid ${flag} "${value}": whole seconds, at least ${min}s`);
  return ms / 1000;
}

/** Builds the reboot Rollout object the flags describe. */
export function rebootFromFlags(name: string, flags: RebootFlags): RolloutObjectInput {
  if (!NAME_RE.test(name)) throw usage(`invalid reboot rollout name "${name}": lower case letters, digits, "-" and ".", e.g. kernel-reboots`);
  if (flags.onFailure !== undefined && flags.onFailure.toLowerCase() !== 'pause') throw usage('a reboot cannot be rolled back: --on-failure is pause');
  if (flags.alertFilter !== undefined && flags.prometheus === undefined) throw usage('--alert-filter needs --prometheus');
  if (flags.prometheus !== undefined && !/^https?:\/\/\S+$/.test(flags.prometheus)) throw usage(`invalid --prometheus "${flags.prometheus}": an http(s) URL, e.g. http://prometheus:9090`);
  if (flags.alertFilter !== undefined) {
    try {
      new RegExp(flags.alertFilter);
    } catch (err) {
      throw usage(`invalid --alert-filter "${flags.alertFilter}": ${(err as Error).message}`);
    }
  }
  const strategy = strategyFromFlags(flags, REBOOT_FLAG_DEFAULTS);
  const drain = {
    ...(flags.force === true ? { force: true } : {}),
    ...(flags.deleteEmptydirData === true ? { deleteEmptyDirData: true } : {}),
    ...(flags.drainTimeout !== undefined ? { timeoutSeconds: seconds(flags.drainTimeout, '--drain-timeout', 1) } : {}),
    ...(flags.gracePeriod !== undefined ? { gracePeriodSeconds: seconds(flags.gracePeriod, '--grace-period', 0) } : {}),
  };
  const reboot: NonNullable<RolloutObjectInput['spec']['reboot']> = {
    ...(flags.onlyRequired === true ? { onlyRequired: true } : {}),
    ...(flags.blockingPods !== undefined ? { blockingPods: flags.blockingPods } : {}),
    ...(flags.prometheus !== undefined ? { prometheus: { url: flags.prometheus, ...(flags.alertFilter === undefined ? {} : { alertFilter: flags.alertFilter }) } } : {}),
    ...(Object.keys(drain).length > 0 ? { drain } : {}),
    ...(flags.rebootTimeout !== undefined ? { timeoutSeconds: seconds(flags.rebootTimeout, '--reboot-timeout', 10) } : {}),
  };
  return { apiVersion: API_VERSION, kind: 'Rollout', metadata: { name }, spec: { reboot, selector: selectorFromFlags(flags), strategy } };
}
