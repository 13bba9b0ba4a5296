/**
 * Which machines a rollout changes, and in what order. The order is a hash of the
 * rollout and machine names, fixed at creation: a restart or a race can never reorder
 * machines, so concurrency limits cannot be exceeded by two planners disagreeing
 * (system-upgrade-controller orders candidate nodes the same way).
 */
import { createHash } from 'node:crypto';
import type { RolloutSpec } from './spec.ts';

/** The sort key of a machine within a rollout: sha256(rolloutName + '/' + machineName), hex. */
export function orderKey(rolloutName: string, machineName: string): string {
  return createHash('sha256').update(`${rolloutName}/${machineName}`).digest('hex');
}

/** True when the machine matches the selector: every matchLabel, and `names` when given. An empty selector selects all. */
export function matchesSelector(selector: RolloutSpec['selector'], machine: { name: string; labels: Readonly<Record<string, string>> }): boolean {
  if (selector.names !== undefined && !selector.names.includes(machine.name)) return false;
  for (const [k, v] of Object.entries(selector.matchLabels)) {
    if (machine.labels[k] !== v) return false;
  }
  return true;
}

/** Names of the selected machines in the rollout's deterministic order. */
export function selectCandidates(rolloutName: string, selector: RolloutSpec['selector'], machines: Iterable<{ name: string; labels: Readonly<Record<string, string>> }>): string[] {
  const keyed: { name: string; key: string }[] = [];
  const seen = new Set<string>();
  for (const m of machines) {
    if (seen.has(m.name) || !matchesSelector(selector, m)) continue;
    seen.add(m.name);
    keyed.push({ name: m.name, key: orderKey(rolloutName, m.name) });
  }
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return keyed.map((k) => k.name);
}

/** How many canaries: `count` (capped at the total), or `percent` rounded up (at least 1 when above 0). */
export function canaryCount(canary: RolloutSpec['strategy']['canary'], total: number): number {
  if ('count' in canary) return Math.min(canary.count, total);
  if (canary.percent === 0) return 0;
  return Math.min(total, Math.max(1, Math.ceil((canary.percent * total) / 100)));
}

/**
 * The cumulative end index of each wave over `total` ordered candidates. Wave 0 is the
 * canaries when there are any; then the batches, by cumulative percents (rounded up) or
 * by batch size, each with at least one machine; the last ends at `total`.
 */
export function waveEnds(strategy: Pick<RolloutSpec['strategy'], 'batches' | 'batchSize'>, canaries: number, total: number): number[] {
  if (!Number.isInteger(total) || total < 0) throw new RangeError(`total must be a whole number, got ${total}`);
  if (!Number.isInteger(canaries) || canaries < 0 || canaries > total) throw new RangeError(`canaries must be 0..${total}, got ${canaries}`);
  const ends: number[] = canaries > 0 ? [canaries] : [];
  let last = canaries;
  if (strategy.batchSize !== undefined) {
    if (strategy.batchSize < 1) throw new RangeError('batchSize must be at least 1');
    while (last < total) {
      last = Math.min(total, last + strategy.batchSize);
      ends.push(last);
    }
    return ends;
  }
  for (const pct of strategy.batches ?? [100]) {
    if (last >= total) break;
    const end = Math.min(total, Math.max(last + 1, Math.ceil((pct * total) / 100)));
    ends.push(end);
    last = end;
  }
  // A spec's batches end at 100, but never leave machines out even if one did not.
  if (last < total) ends.push(total);
  return ends;
}
