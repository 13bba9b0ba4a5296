/**
 * Whether a planned rollout state differs from the one it was planned from, without
 * serialising either: a rollout's state over 20,000 machines is megabytes of JSON, and
 * the controller asks on every tick. The planner keeps the object of every machine a
 * step did not touch, so a quiet step compares mostly pointers.
 */

/**
 * True when `a` and `b` are the same JSON value: what `JSON.stringify(a) ===
 * JSON.stringify(b)` says for plain JSON data, except that key order does not matter
 * (the store keeps the value, not its spelling). Properties whose value is `undefined`
 * count as absent, as JSON.stringify drops them. Shared subtrees are not walked.
 */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let keys = 0;
  for (const k of Object.keys(x)) {
    const v = x[k];
    if (v === undefined) continue;
    keys++;
    if (!Object.hasOwn(y, k) || !sameJson(v, y[k])) return false;
  }
  for (const k of Object.keys(y)) if (y[k] !== undefined) keys--;
  return keys === 0;
}
