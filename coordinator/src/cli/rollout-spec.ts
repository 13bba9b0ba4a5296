/**
 * `nkctl rollout create NAME --package kubelet=1.31.3 ...`: flags to a Rollout object.
 * Pure, so every flag's parsing and error can be tested without a server. Unset
 * strategy fields get the defaults documented in docs/nkctl.md, so the object nkctl
 * sends (and `--dry-run` prints) says exactly what will happen.
 */
import { PackageName, PackageVersion } from '@nodekeeper/protocol';
import { API_VERSION, type DrainSpecInput as RolloutDrain, type IntOrPercent, type RolloutObjectInput, type RolloutStrategyInput as RolloutStrategy } from '@nodekeeper/api';
import { CliErrorCode, usageError } from './cli-errors.ts';
import { parseDuration } from './duration.ts';
import { parseSelector } from './selector.ts';

export interface RolloutFlags {
  readonly package: readonly string[];
  readonly selector?: string;
  readonly names?: string;
  readonly canary?: string;
  readonly soak?: string;
  readonly batches?: string;
  readonly batchSize?: string;
  readonly maxUnavailable?: string;
  readonly maxFailures?: string;
  readonly onFailure?: string;
  readonly maxPerZone?: string;
  readonly allowDowngrade?: boolean;
  /** spec.drain: kubectl drain's --force, --delete-emptydir-data, --grace-period, --timeout. */
  readonly drainForce?: boolean;
  readonly drainDeleteEmptydirData?: boolean;
  readonly drainGracePeriod?: string;
  readonly drainTimeout?: string;
  /** `Mon-Fri 02:00-05:00`, `Sat,Sun 22:00-04:00`, `02:00-05:00` (every day). */
  readonly window?: string;
  /** IANA zone of --window (default UTC); the coordinator checks it. */
  readonly timeZone?: string;
}

const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const;
type Day = (typeof DAYS)[number];

/**
 * `--window 'Mon-Fri 02:00-05:00' --time-zone Europe/Berlin` -> the spec's window. Days
 * are a range (`Mon-Fri`, `Fri-Mon` wraps) or a list (`Sat,Sun`); the time zone is passed
 * as written: the coordinator knows its tz database and refuses an unknown zone
 * (NK_WINDOW_UNKNOWN_TIME_ZONE), so nkctl and the server never disagree.
 */
export function parseWindow(value: string, timeZone: string | undefined): NonNullable<RolloutStrategy['window']> {
  const m = /^\s*(?:([A-Za-z,-]+)\s+)?(\d{2}:\d{2})-(\d{2}:\d{2})\s*$/.exec(value);
  const bad = (why: string) => usage(`invalid --window "${value}": ${why}; e.g. 'Mon-Fri 02:00-05:00' or 'Sat,Sun 22:00-04:00'`);
  if (m === null) throw bad('expected [DAYS ]HH:MM-HH:MM');
  const [, daysText, start, end] = m as unknown as [string, string | undefined, string, string];
  const hhmm = /^([01][0-9]|2[0-3]):[0-5][0-9]$/;
  if (!hhmm.test(start) || !hhmm.test(end)) throw bad('times are HH:MM, 00:00 to 23:59');
  if (start === end) throw bad('start and end are equal');
  let days: Day[] | undefined;
  if (daysText !== undefined) {
    const index = (d: string) => {
      const i = DAYS.findIndex((x) => x.toLowerCase() === d.toLowerCase());
      if (i < 0) throw bad(`"${d}" is not a day (Mon..Sun)`);
      return i;
    };
    const range = /^([A-Za-z]+)-([A-Za-z]+)$/.exec(daysText);
    if (range !== null) {
      const from = index(range[1]!);
      const to = index(range[2]!);
      days = [];
      for (let i = from; ; i = (i + 1) % 7) {
        days.push(DAYS[i]!);
        if (i === to) break;
      }
    } else {
      days = [...new Set(daysText.split(',').map((d) => DAYS[index(d.trim())]!))];
    }
  }
  if (timeZone !== undefined && timeZone.trim() === '') throw usage('--time-zone needs an IANA name such as Europe/Berlin');
  return { ...(days === undefined ? {} : { days }), start, end, ...(timeZone === undefined ? {} : { timeZone }) };
}

/** The selector of --selector and --names (equality only, as a Deployment's matchLabels). */
export function selectorFromFlags(flags: { selector?: string; names?: string }): { matchLabels?: Record<string, string>; names?: string[] } {
  const selector: { matchLabels?: Record<string, string>; names?: string[] } = {};
  const requirements = parseSelector(flags.selector ?? '');
  if (requirements.length > 0) {
    const matchLabels: Record<string, string> = {};
    for (const r of requirements) {
      if (r.op !== 'eq') throw usageError(CliErrorCode.badSelector, `invalid --selector "${flags.selector ?? ''}": only key=value requirements select machines for a rollout`);
      matchLabels[r.key] = r.value;
    }
    selector.matchLabels = matchLabels;
  }
  if (flags.names !== undefined) {
    const names = flags.names.split(',').map((n) => n.trim()).filter((n) => n !== '');
    if (names.length === 0) throw usage('--names needs at least one machine name');
    selector.names = names;
  }
  return selector;
}

/** The flag form's defaults: one canary, 5 minutes' soak, 10% then 50% then all, one at a time, pause on the first failure. */
export const ROLLOUT_DEFAULTS = {
  canary: '1',
  soak: '5m',
  batches: '10,50,100',
  maxUnavailable: '1',
  maxFailures: '1',
  onFailure: 'pause',
} as const;

const PACKAGE_RE = new RegExp(PackageName.pattern ?? '^[a-z][a-z0-9-]*$');
const VERSION_RE = new RegExp(PackageVersion.pattern ?? '^v?[0-9]+\\.[0-9]+\\.[0-9]+');
const NAME_RE = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

const usage = (message: string) => usageError(CliErrorCode.usage, message);

/** `kubelet=1.31.3` -> { package, version }. */
export function parsePackagePin(value: string): { package: string; version: string } {
  const at = value.indexOf('=');
  const pkg = at < 0 ? value : value.slice(0, at);
  const version = at < 0 ? '' : value.slice(at + 1);
  if (at < 0 || version === '') throw usage(`invalid --package "${value}": expected NAME=VERSION, e.g. kubelet=1.31.3`);
  if (!PACKAGE_RE.test(pkg)) throw usage(`invalid --package "${value}": "${pkg}" is not a package name (lower case, e.g. kubelet, containerd, cni-plugins)`);
  if (!VERSION_RE.test(version)) throw usage(`invalid --package "${value}": "${version}" is not a version such as 1.31.3`);
  return { package: pkg, version };
}

/** A whole number of at least `min`. */
export function parseCount(value: string, flag: string, min: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) throw usage(`invalid ${flag} "${value}": must be a whole number of at least ${min}`);
  return n;
}

/** `3` -> 3; `10%` -> "10%" (1..100). */
export function parseIntOrPercent(value: string, flag: string, min: number): IntOrPercent {
  if (value.endsWith('%')) {
    const p = value.slice(0, -1);
    const n = Number(p);
    if (!/^\d+$/.test(p) || n < 1 || n > 100) throw usage(`invalid ${flag} "${value}": a percent must be 1% to 100%`);
    return `${n}%`;
  }
  if (!/^\d+$/.test(value)) throw usage(`invalid ${flag} "${value}": expected a number or a percent, e.g. 1 or 10%`);
  return parseCount(value, flag, min);
}

/** `10,50,100`: cumulative percents, strictly increasing, ending at 100. */
export function parseBatches(value: string): number[] {
  const parts = value.split(',').map((p) => p.trim().replace(/%$/, ''));
  const out: number[] = [];
  for (const p of parts) {
    const n = Number(p);
    if (!/^\d+$/.test(p) || n < 1 || n > 100) throw usage(`invalid --batches "${value}": "${p}" is not a percent from 1 to 100`);
    if (out.length > 0 && n <= (out.at(-1) ?? 0)) throw usage(`invalid --batches "${value}": percents are cumulative and must increase`);
    out.push(n);
  }
  if (out.at(-1) !== 100) throw usage(`invalid --batches "${value}": the last batch must be 100 (every selected machine)`);
  return out;
}

/** Build the Rollout object the flags describe. */
export function rolloutFromFlags(name: string, flags: RolloutFlags): RolloutObjectInput {
  if (!NAME_RE.test(name)) throw usage(`invalid rollout name "${name}": lower case letters, digits, "-" and ".", e.g. web-kubelet`);
  if (flags.package.length === 0) throw usage('at least one --package NAME=VERSION is required');
  const packages = flags.package.map(parsePackagePin);
  const seen = new Set<string>();
  for (const p of packages) {
    if (seen.has(p.package)) throw usage(`--package ${p.package} is given twice`);
    seen.add(p.package);
  }

  const selector = selectorFromFlags(flags);

  const strategy = strategyFromFlags(flags, ROLLOUT_DEFAULTS);
  const drain = drainFromFlags(flags);
  return {
    apiVersion: API_VERSION,
    kind: 'Rollout',
    metadata: { name },
    spec: { packages, selector, strategy, ...(flags.allowDowngrade === true ? { allowDowngrade: true } : {}), ...(drain === null ? {} : { drain }) },
  };
}

/** spec.drain from the --drain-* flags; null when none is given (the coordinator's defaults apply). */
export function drainFromFlags(flags: RolloutFlags): RolloutDrain | null {
  const drain: RolloutDrain = {};
  if (flags.drainForce === true) drain.force = true;
  if (flags.drainDeleteEmptydirData === true) drain.deleteEmptyDirData = true;
  if (flags.drainGracePeriod !== undefined) {
    const g = parseCount(flags.drainGracePeriod, '--drain-grace-period', 0);
    if (g > 86_400) throw usage(`invalid --drain-grace-period "${flags.drainGracePeriod}": at most 86400 seconds`);
    drain.gracePeriodSeconds = g;
  }
  if (flags.drainTimeout !== undefined) {
    const ms = parseDuration(flags.drainTimeout, '--drain-timeout');
    if (ms < 1000 || ms > 86_400_000 || ms % 1000 !== 0) throw usageError(CliErrorCode.badDuration, `invalid --drain-timeout "${flags.drainTimeout}": whole seconds, 1s to 24h`);
    drain.timeoutSeconds = ms / 1000;
  }
  return Object.keys(drain).length === 0 ? null : drain;
}

/** The strategy of the flags, with `defaults` for the ones not given (rollouts and reboots differ). */
export function strategyFromFlags(flags: RolloutFlags | Omit<RolloutFlags, 'package'>, defaults: { canary: string; soak: string; batches: string; maxUnavailable: string; maxFailures: string; onFailure: string }): RolloutStrategy {
  if (flags.batches !== undefined && flags.batchSize !== undefined) throw usage('--batches and --batch-size cannot be combined');
  const canary = parseIntOrPercent(flags.canary ?? defaults.canary, '--canary', 0);
  const soakMs = parseDuration(flags.soak ?? defaults.soak, '--soak');
  if (soakMs < 0 || soakMs % 1000 !== 0) throw usageError(CliErrorCode.badDuration, `invalid --soak "${flags.soak ?? ''}": must be whole seconds, 0 or more`);
  const onFailure = (flags.onFailure ?? defaults.onFailure).toLowerCase();
  if (onFailure !== 'pause' && onFailure !== 'rollback') throw usage(`invalid --on-failure "${flags.onFailure ?? ''}": pause or rollback`);

  const strategy: RolloutStrategy = {
    canary: typeof canary === 'number' ? { count: canary } : { percent: Number(canary.slice(0, -1)) },
    soakSeconds: soakMs / 1000,
    ...(flags.batchSize !== undefined
      ? { batchSize: parseCount(flags.batchSize, '--batch-size', 1) }
      : { batches: parseBatches(flags.batches ?? defaults.batches) }),
    maxUnavailable: parseIntOrPercent(flags.maxUnavailable ?? defaults.maxUnavailable, '--max-unavailable', 1),
    maxFailures: parseIntOrPercent(flags.maxFailures ?? defaults.maxFailures, '--max-failures', 1),
    onFailure: onFailure === 'pause' ? 'Pause' : 'Rollback',
    ...(flags.maxPerZone !== undefined ? { maxPerZone: parseCount(flags.maxPerZone, '--max-per-zone', 1) } : {}),
    ...(flags.window !== undefined ? { window: parseWindow(flags.window, flags.timeZone) } : {}),
  };
  if (flags.timeZone !== undefined && flags.window === undefined) throw usage('--time-zone needs a --window');
  return strategy;
}
