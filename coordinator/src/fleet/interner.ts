/**
 * One copy of what thousands of machines say alike. Reports arrive as JSON text, and
 * JSON.parse gives every machine its own copy of every string and object: 19,000
 * machines running the same kubelet hold 19,000 `{ raw: 'Kubernetes v1.35.2', ... }`.
 * The interner hands back one shared, frozen copy instead.
 *
 * - `string(s)`: one copy of an equal string. A Map, bounded in entries and characters:
 *   when full it starts over (copies already handed out stay shared; only later ones start
 *   a new generation), so agents that send ever-new text (a message with a pid in it)
 *   cannot grow it for good; a long string (over 256 characters) is never kept.
 * - `value(v)`: one copy of an equal JSON value (object or array, compared by its JSON
 *   text; key order counts). The copy is made from that text (so it never aliases the
 *   caller's object) and deep-frozen (so no reader can change what others share). It
 *   is held weakly: a value no machine holds any more is collected, and its entry with it.
 *
 * Only values many machines share should go through `value()`: a unique one costs its
 * JSON text and an entry on top of itself (fleet/pack-report.ts picks which).
 */
export class Interner {
  readonly #strings = new Map<string, string>();
  readonly #values = new Map<string, WeakRef<object>>();
  readonly #gone = new FinalizationRegistry<string>((key) => {
    // The key may hold a newer copy by now: only forget a dead one.
    if (this.#values.get(key)?.deref() === undefined) this.#values.delete(key);
  });
  readonly #maxStrings: number;
  readonly #maxChars: number;
  #chars = 0;

  constructor(opts: { maxStrings?: number; maxChars?: number } = {}) {
    this.#maxStrings = opts.maxStrings ?? 65_536;
    this.#maxChars = opts.maxChars ?? 4 * 1024 * 1024;
    if (!Number.isInteger(this.#maxStrings) || this.#maxStrings < 1) throw new RangeError(`maxStrings must be a whole number >= 1, got ${this.#maxStrings}`);
    if (!Number.isInteger(this.#maxChars) || this.#maxChars < 1) throw new RangeError(`maxChars must be a whole number >= 1, got ${this.#maxChars}`);
  }

  /** The shared copy of `s` (a long one as it is). */
  string(s: string): string {
    if (s.length > MAX_INTERNED_LENGTH) return s;
    const hit = this.#strings.get(s);
    if (hit !== undefined) return hit;
    if (this.#strings.size >= this.#maxStrings || this.#chars + s.length > this.#maxChars) {
      this.#strings.clear();
      this.#chars = 0;
    }
    this.#strings.set(s, s);
    this.#chars += s.length;
    return s;
  }

  /** The shared, frozen copy of a JSON value equal to `v` (null stays null). */
  value<T extends object | null>(v: T): T {
    if (v === null) return v;
    const key = JSON.stringify(v);
    const hit = this.#values.get(key)?.deref();
    if (hit !== undefined) return hit as T;
    const copy = deepFreeze(JSON.parse(key, (_k, x: unknown) => (typeof x === 'string' ? this.string(x) : x)) as object);
    this.#values.set(key, new WeakRef(copy));
    this.#gone.register(copy, key);
    return copy as T;
  }

  /** Entries held now (strings, values): for tests and the bench. */
  get size(): { strings: number; chars: number; values: number } {
    return { strings: this.#strings.size, chars: this.#chars, values: this.#values.size };
  }
}

/** Longer strings are rarely shared (an error's text); keeping them would only fill the table. */
const MAX_INTERNED_LENGTH = 256;

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}
