/**
 * The Rollout object an operator writes (`nkctl rollout create -f rollout.yaml`):
 * schema, validation and defaults. Validation answers every problem with its path, so
 * nothing is half-applied; the result has every default filled in, so the stored spec
 * says exactly what will happen. Defaults match nkctl's flag form (cli/rollout-spec.ts).
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { AppError } from '@nodekeeper/common';
import { API_VERSION, RolloutObjectInputSchema, RolloutSpecInputSchema, type RolloutSpecInput } from '@nodekeeper/api';
import type { IntOrPercent } from '../budget/int-or-percent.ts';
import { drainSpecWithDefaults, type DrainSpec } from '../member/drain-rules.ts';
import { canonicalTimeZone } from './time-zone.ts';
import type { MaintenanceWindow } from './window.ts';

/** The API version of a Rollout (the contract's). */
export const ROLLOUT_API_VERSION = API_VERSION;

/** Defaults applied to fields the spec leaves out (docs/rollouts.md). */
export const SPEC_DEFAULTS = Object.freeze({
  canary: { count: 1 },
  soakSeconds: 300,
  batches: [10, 50, 100],
  maxUnavailable: 1,
  maxFailures: 1,
  onFailure: 'Pause',
  allowDowngrade: false,
} as const);

// The schemas are the contract's (@nodekeeper/api): the server validates with them, nkctl and the host CRDs read them.
export { RolloutObjectInputSchema, RolloutSpecInputSchema, StrategySchema, type RolloutSpecInput } from '@nodekeeper/api';

/** The drain before a reboot, defaults applied. */
export interface RebootDrain {
  readonly force: boolean;
  readonly deleteEmptyDirData: boolean;
  readonly timeoutSeconds: number;
  readonly gracePeriodSeconds: number | null;
}

/** A reboot rollout's own part, defaults applied. */
export interface RebootSpec {
  readonly onlyRequired: boolean;
  readonly blockingPods: string | null;
  readonly prometheus: { readonly url: string; readonly alertFilter: string | null } | null;
  readonly drain: RebootDrain;
  readonly timeoutSeconds: number;
}

/** Defaults of `spec.reboot` (docs/kubernetes.md). */
export const REBOOT_DEFAULTS = Object.freeze({ drainTimeoutSeconds: 600, timeoutSeconds: 900 } as const);

/** The spec with every default applied: what the planner reads and the store keeps. */
export interface RolloutSpec {
  /** Empty for a reboot rollout. */
  readonly packages: readonly { readonly package: string; readonly version: string }[];
  /** Present on a reboot rollout (absent on every install rollout, and on rollouts stored before reboots existed). */
  readonly reboot?: RebootSpec;
  readonly selector: { readonly matchLabels: Readonly<Record<string, string>>; readonly names?: readonly string[] };
  readonly strategy: {
    readonly canary: { readonly count: number } | { readonly percent: number };
    readonly soakSeconds: number;
    /** Exactly one of `batches` (cumulative percents ending at 100) and `batchSize`. */
    readonly batches?: readonly number[];
    readonly batchSize?: number;
    readonly maxUnavailable: IntOrPercent;
    readonly maxFailures: IntOrPercent;
    readonly onFailure: 'Pause' | 'Rollback';
    readonly maxPerZone?: number;
    readonly window?: MaintenanceWindow;
  };
  readonly allowDowngrade: boolean;
  /** force and deleteEmptyDirData always set; timeoutSeconds and gracePeriodSeconds only when given. */
  readonly drain: DrainSpec;
  /** Present only when true (as a Deployment's): absent and false mean the same, so specs stored before it compare equal. */
  readonly paused?: true;
}

export interface SpecError {
  /** JSON pointer into the object, e.g. `/spec/strategy/batches/1`. */
  readonly path: string;
  readonly message: string;
  /** A more specific error code than NK_ROLLOUT_INVALID, when there is one. */
  readonly code?: string;
}

/** The error code of a window time zone the tz database does not know. */
export const UNKNOWN_TIME_ZONE = 'NK_WINDOW_UNKNOWN_TIME_ZONE';

export type SpecValidation = { readonly ok: true; readonly spec: RolloutSpec } | { readonly ok: false; readonly errors: readonly SpecError[] };

const specCheck = TypeCompiler.Compile(RolloutSpecInputSchema);
const objectCheck = TypeCompiler.Compile(RolloutObjectInputSchema);

function percentErrors(value: IntOrPercent | number | string | undefined, path: string, min: number): SpecError[] {
  if (typeof value === 'string') {
    const n = Number(value.slice(0, -1));
    if (n < Math.max(min, 1) || n > 100) return [{ path, message: `must be ${Math.max(min, 1)}% to 100%, got "${value}"` }];
  } else if (typeof value === 'number' && value < min) {
    return [{ path, message: `must be at least ${min}, got ${value}` }];
  }
  return [];
}

/** Checks the rules a schema cannot say: exclusive fields, increasing batches, unique packages. */
function semanticErrors(s: RolloutSpecInput, base: string): SpecError[] {
  const errors: SpecError[] = [];
  const seen = new Set<string>();
  if ((s.packages === undefined) === (s.reboot === undefined)) errors.push({ path: base, message: 'give packages (an install rollout) or reboot (a reboot rollout), exactly one' });
  (s.packages ?? []).forEach((p, i) => {
    if (seen.has(p.package)) errors.push({ path: `${base}/packages/${i}/package`, message: `package "${p.package}" is listed twice` });
    seen.add(p.package);
  });
  const st = s.strategy ?? {};
  if (st.canary?.count !== undefined && st.canary.percent !== undefined) errors.push({ path: `${base}/strategy/canary`, message: 'give count or percent, not both' });
  if (st.batches !== undefined && st.batchSize !== undefined) errors.push({ path: `${base}/strategy`, message: 'give batches or batchSize, not both' });
  if (st.batches !== undefined) {
    st.batches.forEach((b, i) => {
      if (i > 0 && b <= (st.batches?.[i - 1] ?? 0)) errors.push({ path: `${base}/strategy/batches/${i}`, message: 'batches are cumulative percents and must increase' });
    });
    if (st.batches.at(-1) !== 100) errors.push({ path: `${base}/strategy/batches`, message: 'the last batch must be 100 (every selected machine)' });
  }
  errors.push(...percentErrors(st.maxUnavailable, `${base}/strategy/maxUnavailable`, 1));
  errors.push(...percentErrors(st.maxFailures, `${base}/strategy/maxFailures`, 1));
  if (st.window !== undefined && st.window.start === st.window.end) errors.push({ path: `${base}/strategy/window`, message: 'start and end are equal: the window would never be open' });
  if (st.window?.timeZone !== undefined && canonicalTimeZone(st.window.timeZone) === null) {
    errors.push({ path: `${base}/strategy/window/timeZone`, message: `unknown time zone "${st.window.timeZone}": give an IANA name such as UTC or Europe/Berlin`, code: UNKNOWN_TIME_ZONE });
  }
  if (s.reboot !== undefined && st.onFailure === 'Rollback') errors.push({ path: `${base}/strategy/onFailure`, message: 'a reboot cannot be rolled back: use Pause' });
  if (s.reboot?.prometheus?.alertFilter !== undefined) {
    try {
      new RegExp(s.reboot.prometheus.alertFilter);
    } catch (err) {
      errors.push({ path: `${base}/reboot/prometheus/alertFilter`, message: `not a regular expression: ${(err as Error).message}` });
    }
  }
  return errors;
}

function withDefaults(s: RolloutSpecInput): RolloutSpec {
  const st = s.strategy ?? {};
  const canary = st.canary?.percent !== undefined ? { percent: st.canary.percent } : { count: st.canary?.count ?? SPEC_DEFAULTS.canary.count };
  const window = st.window === undefined ? undefined : { ...(st.window.days === undefined ? {} : { days: [...st.window.days] }), start: st.window.start, end: st.window.end, timeZone: canonicalTimeZone(st.window.timeZone ?? 'UTC') ?? 'UTC' };
  const r = s.reboot;
  const reboot: RebootSpec | undefined = r === undefined ? undefined : {
    onlyRequired: r.onlyRequired ?? false,
    blockingPods: r.blockingPods ?? null,
    prometheus: r.prometheus === undefined ? null : { url: r.prometheus.url, alertFilter: r.prometheus.alertFilter ?? null },
    drain: {
      force: r.drain?.force ?? false,
      deleteEmptyDirData: r.drain?.deleteEmptyDirData ?? false,
      timeoutSeconds: r.drain?.timeoutSeconds ?? REBOOT_DEFAULTS.drainTimeoutSeconds,
      gracePeriodSeconds: r.drain?.gracePeriodSeconds ?? null,
    },
    timeoutSeconds: r.timeoutSeconds ?? REBOOT_DEFAULTS.timeoutSeconds,
  };
  return {
    packages: (s.packages ?? []).map((p) => ({ package: p.package, version: p.version })),
    ...(reboot === undefined ? {} : { reboot }),
    selector: { matchLabels: { ...s.selector?.matchLabels }, ...(s.selector?.names === undefined ? {} : { names: [...s.selector.names] }) },
    strategy: {
      canary,
      soakSeconds: st.soakSeconds ?? SPEC_DEFAULTS.soakSeconds,
      ...(st.batchSize !== undefined ? { batchSize: st.batchSize } : { batches: [...(st.batches ?? SPEC_DEFAULTS.batches)] }),
      maxUnavailable: (st.maxUnavailable ?? SPEC_DEFAULTS.maxUnavailable) as IntOrPercent,
      maxFailures: (st.maxFailures ?? SPEC_DEFAULTS.maxFailures) as IntOrPercent,
      onFailure: st.onFailure ?? SPEC_DEFAULTS.onFailure,
      ...(st.maxPerZone === undefined ? {} : { maxPerZone: st.maxPerZone }),
      ...(window === undefined ? {} : { window }),
    },
    allowDowngrade: s.allowDowngrade ?? SPEC_DEFAULTS.allowDowngrade,
    drain: drainSpecWithDefaults(s.drain),
    ...(s.paused === true ? { paused: true as const } : {}),
  };
}

/**
 * Validates a Rollout spec (the `spec` field) and applies the defaults. Returns every
 * problem found, each with its JSON-pointer path under `/spec`.
 */
export function validateRolloutSpec(value: unknown, base = '/spec'): SpecValidation {
  if (!specCheck.Check(value)) {
    return { ok: false, errors: [...specCheck.Errors(value)].slice(0, 20).map((e) => ({ path: `${base}${e.path}`, message: e.message })) };
  }
  const errors = semanticErrors(value, base);
  return errors.length > 0 ? { ok: false, errors } : { ok: true, spec: withDefaults(value) };
}

/** Validates a whole Rollout object (apiVersion, kind, metadata.name, spec). */
export function validateRollout(value: unknown): { readonly ok: true; readonly name: string; readonly spec: RolloutSpec } | { readonly ok: false; readonly errors: readonly SpecError[] } {
  if (!objectCheck.Check(value)) {
    return { ok: false, errors: [...objectCheck.Errors(value)].slice(0, 20).map((e) => ({ path: e.path === '' ? '/' : e.path, message: e.message })) };
  }
  const r = validateRolloutSpec(value.spec);
  return r.ok ? { ok: true, name: value.metadata.name, spec: r.spec } : r;
}

/**
 * Like validateRollout, but throws NK_ROLLOUT_INVALID listing every problem, for callers
 * that answer with an AppError (HTTP 400).
 */
export function parseRollout(value: unknown): { name: string; spec: RolloutSpec } {
  const r = validateRollout(value);
  if (r.ok) return { name: r.name, spec: r.spec };
  const list = r.errors.map((e) => `${e.path}: ${e.message}`).join('; ');
  // One specific fault (an unknown time zone) keeps its own code, so callers can tell it apart.
  const codes = new Set(r.errors.map((e) => e.code ?? 'NK_ROLLOUT_INVALID'));
  const code = codes.size === 1 ? [...codes][0]! : 'NK_ROLLOUT_INVALID';
  throw new AppError(code, `invalid Rollout: ${list}`, { context: { errors: r.errors } });
}
