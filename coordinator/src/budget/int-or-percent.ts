/**
 * Kubernetes' IntOrString for counts of machines: an absolute number, or a percent of a
 * total written "10%". Parsed once at the edge (config flags, rollout specs) into this
 * one typed value; every user resolves it against its total with resolveIntOrPercent().
 *
 * Rounding follows Kubernetes: a maxUnavailable percent rounds DOWN (the Deployment
 * controller calls intstr.GetScaledValueFromIntOrPercent(maxUnavailable, replicas, false),
 * https://github.com/kubernetes/kubernetes/blob/master/pkg/controller/deployment/util/deployment_util.go
 * ResolveFenceposts), a failure count rounds UP. Kubernetes lets maxUnavailable resolve
 * to 0 only when maxSurge is not 0 too; nodekeeper has no surge, so the floor is 1: a
 * rollout or repair can always make progress (and 10% of 5 machines is 1, not 0).
 */

/** An absolute number, or a percent written "10%". */
export type IntOrPercent = number | `${number}%`;

/**
 * Parses the text form (a flag, an env var, a config value): "3" or "25%". Returns null
 * when it is neither, so the caller words the error for its own edge. Range checks
 * (0, over 100%) are the caller's: a spec and the config allow different floors.
 */
export function parseIntOrPercent(text: string): IntOrPercent | null {
  const t = text.trim();
  if (/^\d{1,6}$/.test(t)) return Number(t);
  if (/^\d{1,3}%$/.test(t)) return `${Number(t.slice(0, -1))}%`;
  return null;
}

/**
 * Resolves an absolute-or-percent against `total`. Percents round down for budgets
 * (`roundUp` false) as Kubernetes does for maxUnavailable, up for failure counts; the
 * result is never below 1, so a rollout can always make progress and stop.
 */
export function resolveIntOrPercent(value: IntOrPercent, total: number, roundUp: boolean): number {
  if (typeof value === 'number') return Math.max(1, value);
  const pct = Number(value.slice(0, -1));
  const raw = (pct * total) / 100;
  return Math.max(1, roundUp ? Math.ceil(raw) : Math.floor(raw));
}

