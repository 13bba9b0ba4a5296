/**
 * A binary min-heap of keys ordered by a deadline, indexed by key so a key's deadline can
 * be moved or removed in O(log n): the fleet view keeps one entry per machine and moves it
 * on every heartbeat. (The npm heaps we looked at, heap-js, flatqueue,
 * @datastructures-js/priority-queue and mnemonist's Heap, have no update or remove by key
 * short of an O(n) search, and lazy deletion would let the heap grow with the heartbeat
 * rate.) Ties pop in no particular order. Pure: no I/O, no clock.
 */
export class DeadlineHeap<K> {
  private readonly keys: K[] = [];
  private readonly at: number[] = [];
  private readonly index = new Map<K, number>();

  get size(): number {
    return this.keys.length;
  }

  has(key: K): boolean {
    return this.index.has(key);
  }

  /** The deadline of `key`, or undefined when it is not queued. */
  deadlineOf(key: K): number | undefined {
    const i = this.index.get(key);
    return i === undefined ? undefined : this.at[i];
  }

  /** The earliest deadline, or Infinity when empty. */
  peekDeadline(): number {
    return this.at[0] ?? Infinity;
  }

  /** Queues `key` at `deadline`, or moves it there when it is queued already. */
  set(key: K, deadline: number): void {
    if (Number.isNaN(deadline)) throw new RangeError('deadline must not be NaN');
    const i = this.index.get(key);
    if (i === undefined) {
      this.keys.push(key);
      this.at.push(deadline);
      this.index.set(key, this.keys.length - 1);
      this.up(this.keys.length - 1);
      return;
    }
    const before = this.at[i] as number;
    this.at[i] = deadline;
    if (deadline < before) this.up(i);
    else if (deadline > before) this.down(i);
  }

  /** Removes `key`; false when it was not queued. */
  delete(key: K): boolean {
    const i = this.index.get(key);
    if (i === undefined) return false;
    this.index.delete(key);
    const lastKey = this.keys.pop() as K;
    const lastAt = this.at.pop() as number;
    if (i < this.keys.length) {
      const removedAt = this.at[i] as number;
      this.keys[i] = lastKey;
      this.at[i] = lastAt;
      this.index.set(lastKey, i);
      if (lastAt < removedAt) this.up(i);
      else this.down(i);
    }
    return true;
  }

  /** Removes and returns every key whose deadline is at or before `now` (earliest first). */
  popDue(now: number, limit = Infinity): K[] {
    const due: K[] = [];
    while (this.keys.length > 0 && (this.at[0] as number) <= now && due.length < limit) {
      const key = this.keys[0] as K;
      this.delete(key);
      due.push(key);
    }
    return due;
  }

  private up(i: number): void {
    const key = this.keys[i] as K;
    const at = this.at[i] as number;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pAt = this.at[parent] as number;
      if (pAt <= at) break;
      this.place(i, this.keys[parent] as K, pAt);
      i = parent;
    }
    this.place(i, key, at);
  }

  private down(i: number): void {
    const n = this.keys.length;
    const key = this.keys[i] as K;
    const at = this.at[i] as number;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && (this.at[r] as number) < (this.at[l] as number) ? r : l;
      const cAt = this.at[c] as number;
      if (cAt >= at) break;
      this.place(i, this.keys[c] as K, cAt);
      i = c;
    }
    this.place(i, key, at);
  }

  private place(i: number, key: K, at: number): void {
    this.keys[i] = key;
    this.at[i] = at;
    this.index.set(key, i);
  }
}
