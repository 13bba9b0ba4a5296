/**
 * fast-check arbitraries that break valid JSON values the way a fuzzer would: a value
 * at a random path replaced by one of the wrong type, a hostile string or number, deep
 * nesting or random JSON; a key removed or an unknown one added. Starting from valid
 * bodies and frames, one mutation reaches the checks behind the schema's first gate.
 */
import fc from 'fast-check';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Strings that have broken parsers, paths and logs before. */
export const HOSTILE_STRINGS: readonly string[] = [
  '', ' ', '../../../../etc/passwd', '..%2f..%2fetc%2fpasswd', '/etc/shadow', 'C:\\Windows', '\u0000', 'a\u0000b', '\r\nX-Injected: 1',
  '%s%s%s%n', '${jndi:ldap://x}', '<script>alert(1)</script>', "'; DROP TABLE machines; --", '__proto__', 'constructor',
  '\uD800', '\uFFFF', '😀'.repeat(50), 'ǅ', 'NaN', '-0', '1e309', 'true', 'null', '[]', '{}', 'a'.repeat(300), 'A'.repeat(5000),
  'sha256:', 'nkm.x', 'nka.x.y', 'abcdef.0123456789abcdef', 'node-1', 'kubelet', '1.31.3', 'v1.31.3', '*', '.', '-', 'poweroff.target',
];
export const HOSTILE_NUMBERS: readonly number[] = [0, -0, -1, 1, 0.5, -1.5, 2 ** 31, 2 ** 53, 2 ** 53 + 2, -(2 ** 63), 1e308, -1e308, 5e-324, 999999999999];

/** A random JSON value (no undefined, no -0 surprises in JSON.stringify). */
export const anyJson = (): fc.Arbitrary<Json> => fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>;

/** Nested arrays/objects `depth` deep: parsers and schema walkers that recurse meet it. */
export function deepNest(depth: number, kind: 'array' | 'object'): string {
  return kind === 'array' ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

/** Every path (list of keys) inside `v`, the root included. */
export function pathsOf(v: Json, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [prefix];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...pathsOf(x, [...prefix, i])));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...pathsOf(x, [...prefix, k]));
  return out;
}

function setAt(v: Json, p: ReadonlyArray<string | number>, f: (old: Json | undefined) => Json | undefined): Json {
  if (p.length === 0) return f(v) ?? null;
  const [k, ...rest] = p;
  if (Array.isArray(v)) {
    const copy = [...v];
    const next = setAt(copy[k as number] ?? null, rest, f);
    if (rest.length === 0 && f(copy[k as number]) === undefined) copy.splice(k as number, 1);
    else copy[k as number] = next;
    return copy;
  }
  if (v !== null && typeof v === 'object') {
    const copy: { [k: string]: Json } = { ...v };
    if (rest.length === 0) {
      const nv = f(copy[k as string]);
      if (nv === undefined) delete copy[k as string];
      else copy[k as string] = nv;
    } else copy[k as string] = setAt(copy[k as string] ?? null, rest, f);
    return copy;
  }
  return v;
}

/** What one mutation does at its path. Values are drawn once, applied by `applyMutation`. */
export type Mutation =
  | { readonly op: 'replace'; readonly at: number; readonly value: Json }
  | { readonly op: 'delete'; readonly at: number }
  | { readonly op: 'add-key'; readonly at: number; readonly key: string; readonly value: Json }
  | { readonly op: 'retype'; readonly at: number }
  | { readonly op: 'huge-string'; readonly at: number; readonly length: number }
  | { readonly op: 'deep'; readonly at: number; readonly depth: number };

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('replace' as const), at: fc.nat(), value: fc.oneof(fc.constantFrom(...HOSTILE_STRINGS), fc.constantFrom(...HOSTILE_NUMBERS), anyJson()) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), at: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('add-key' as const), at: fc.nat(), key: fc.oneof(fc.constantFrom('__proto__', 'constructor', 'extra', 'status', 'type', ''), fc.string({ maxLength: 10 })), value: anyJson() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('retype' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('huge-string' as const), at: fc.nat(), length: fc.constantFrom(257, 4097, 20_000, 70_000, 300_000) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('deep' as const), at: fc.nat(), depth: fc.constantFrom(50, 1000, 10_000) }) },
);

/** Marker for a deep-nesting splice, replaced in the serialised text (JSON.stringify would recurse). */
const DEEP = (depth: number, kind: 'a' | 'o') => `\u0001DEEP${kind}${depth}\u0001`;

function retype(old: Json | undefined): Json {
  if (typeof old === 'string') return old.length > 0 && /^\d+$/.test(old) ? Number(old) : 42;
  if (typeof old === 'number') return String(old);
  if (typeof old === 'boolean') return old ? 'true' : 0;
  if (old === null || old === undefined) return {};
  if (Array.isArray(old)) return { 0: old[0] ?? null };
  return [old];
}

/** Applies mutations in order; returns the serialised text (deep nesting spliced in). */
export function applyMutations(base: Json, ms: readonly Mutation[]): string {
  let v = base;
  for (const m of ms) {
    const paths = pathsOf(v);
    const p = paths[m.at % paths.length]!;
    switch (m.op) {
      case 'replace': v = setAt(v, p, () => m.value); break;
      case 'delete': v = p.length === 0 ? v : setAt(v, p, () => undefined); break;
      case 'retype': v = setAt(v, p, retype); break;
      case 'huge-string': v = setAt(v, p, () => 'x'.repeat(m.length)); break;
      case 'deep': v = setAt(v, p, () => DEEP(m.depth, m.at % 2 === 0 ? 'a' : 'o')); break;
      case 'add-key': v = setAt(v, p, (old) => (old !== null && typeof old === 'object' && !Array.isArray(old) ? { ...old, [m.key]: m.value } : { [m.key]: m.value })); break;
    }
  }
  return JSON.stringify(v).replace(/"\\u0001DEEP([ao])(\d+)\\u0001"/g, (_s, k: string, d: string) => deepNest(Number(d), k === 'a' ? 'array' : 'object'));
}

/** A valid value, or it mutated 1-3 times (serialised). */
export const mutated = (base: Json): fc.Arbitrary<string> =>
  fc.oneof({ weight: 1, arbitrary: fc.constant(JSON.stringify(base)) }, { weight: 5, arbitrary: fc.array(mutationArb, { minLength: 1, maxLength: 3 }).map((ms) => applyMutations(base, ms)) });

export type { Json };
