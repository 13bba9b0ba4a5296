/**
 * Keys ordered by a deadline, each key's deadline movable or removable: the fleet view
 * keeps one entry per machine and moves it on every heartbeat. Two parts:
 * - a lane: keys set at or after the lane's latest deadline, in a Map (insertion order is
 *   deadline order), so moving a key to the back is a delete and a set, O(1). A heartbeat
 *   sets its machine's deadline to its time plus the grace, later than any set before:
 *   nearly every move in a steady fleet lands here.
 * - a binary min-heap indexed by key, O(log n), for every other deadline (one earlier
 *   than the lane's latest, or Infinity). At 19,000 machines a heartbeat's move sank its
 *   key through 14 levels of the heap, a Map update at each: about 6 us a frame.
 * (The npm heaps we looked at, heap-js, flatqueue, @datastructures-js/priority-queue and
 * mnemonist's Heap, have no update or remove by key short of an O(n) search, and lazy
 * deletion would let the heap grow with the heartbeat rate.) Ties pop in no particular
 * order. Pure: no I/O, no clock.
 */
export class DeadlineHeap<K> {
  private readonly keys: K[] = [];
  private readonly at: number[] = [];
  private readonly index = new Map<K, number>();
  private readonly lane = new Map<K, number>();
  /** The latest deadline the lane took since it was last empty. */
  private laneLast = -Infinity;

  get size(): number {
    return this.keys.length + this.lane.size;
  }

  has(key: K): boolean {
    return this.lane.has(key) || this.index.has(key);
  }

  /** The deadline of `key`, or undefined when it is not queued. */
  deadlineOf(key: K): number | undefined {
    const d = this.lane.get(key);
    if (d !== undefined) return d;
    const i = this.index.get(key);
    return i === undefined ? undefined : this.at[i];
  }

  /** The earliest deadline, or Infinity when empty. */
  peekDeadline(): number {
    return Math.min(this.at[0] ?? Infinity, this.laneFirst());
  }

  /** Queues `key` at `deadline`, or moves it there when it is queued already. */
  set(key: K, deadline: number): void {
    if (Number.isNaN(deadline)) throw new RangeError('deadline must not be NaN');
    const inLane = this.lane.delete(key);
    if (deadline >= this.laneLast && deadline !== Infinity) {
      if (!inLane) this.heapDelete(key);
      this.lane.set(key, deadline);
      this.laneLast = deadline;
      return;
    }
    if (this.lane.size === 0) this.laneLast = -Infinity;
    this.heapSet(key, deadline);
  }

  /** Removes `key`; false when it was not queued. */
  delete(key: K): boolean {
    if (this.lane.delete(key)) {
      if (this.lane.size === 0) this.laneLast = -Infinity;
      return true;
    }
    return this.heapDelete(key);
  }

  /** Removes and returns every key whose deadline is at or before `now` (earliest first). */
  popDue(now: number, limit = Infinity): K[] {
    const due: K[] = [];
    while (due.length < limit) {
      const heapAt = this.at[0] ?? Infinity;
      const first = this.lane.entries().next();
      if (first.done === true && this.keys.length === 0) break;
      const laneAt = first.done === true ? Infinity : first.value[1];
      if (Math.min(heapAt, laneAt) > now) break;
      if (first.done !== true && laneAt <= heapAt) {
        this.lane.delete(first.value[0]);
        due.push(first.value[0]);
      } else {
        const key = this.keys[0] as K;
        this.heapDelete(key);
        due.push(key);
      }
    }
    if (this.lane.size === 0) this.laneLast = -Infinity;
    return due;
  }

  private laneFirst(): number {
    const first = this.lane.values().next();
    return first.done === true ? Infinity : first.value;
  }

  private heapSet(key: K, deadline: number): void {
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

  private heapDelete(key: K): boolean {
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
