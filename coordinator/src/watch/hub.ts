/**
 * The watch hub: server-side watch of machines, rollouts and remediations (and, through
 * watch/event-log.ts, of the event log), as Kubernetes does it: a client lists, reads
 * the list's `metadata.resourceVersion`, and watches from it without losing a change.
 *
 * Why it works by diffing on a short tick rather than by hooking every write:
 * - the objects the API serves are not the rows. A Machine's phase comes from the fleet
 *   view's memory before the write batcher flushes it; a Rollout shows machines' current
 *   versions from the fleet; a Remediation is the controller's state plus faults. A
 *   hook on store writes would miss all of these, and a hook in every writer would be
 *   forgotten by the next one. So each tick rebuilds the objects that may have moved
 *   (machines: the names the fleet view reported plus the rows whose store
 *   resource_version moved; rollouts, which are few: all of them, when anything moved;
 *   remediations: the machines the remediation controller said moved (onChanged: its
 *   ladder state, faults or pause) and those the fleet view reported, all of them only
 *   when the rules moved; never a scan of the fleet on an idle tick) with the same
 *   builders the list routes use, and compares them with what was last sent.
 *   Deletes are names that are gone: no tombstone table is needed.
 * - one version space: a batch of changes found on a tick gets the store-wide counter
 *   (store/object-meta.ts) as its resourceVersion. If a list may already have answered
 *   with that number (the change was only in memory, or happened before the list but
 *   after the last tick), the hub moves the counter by one first, so a later change
 *   never carries a version a client has already been told covers it. A change may
 *   then be sent twice (once in the list, once as MODIFIED); never lost.
 * - a bounded ring (the last `historySize` changes) serves `?resourceVersion=N`; an N
 *   older than the ring, or newer than anything handed out (another coordinator's, a
 *   restored backup's), is 410 Expired and the client lists again. After a restart the
 *   ring starts empty at the current counter.
 * - the coordinator never waits for a reader: lines are written to each live watcher at
 *   once while its unsent bytes are under `maxBufferBytes`. Over it, the watcher falls
 *   back to catching up (the ring, paced by its socket's 'drain'; the initial ADDED
 *   events and replays go the same way) and gets ERROR 410 if the ring moves past it
 *   meanwhile; one that stays over the bound for `stallMs` (it does not read) is dropped
 *   and its socket closed. Memory per watcher is the socket's buffer, nothing more.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '@nodekeeper/common';
import type { Store } from '../store/db.ts';
import { matchesFilter, type WatchFilter } from './query.ts';
import { WATCH_KINDS, bookmarkLine, changeKey, expiredLine, labelsOf, line, nameOf, stubOf, watchError, type ApiObject, type WatchKind, type WatchMetrics, type Watcher, type WatchSink } from './wire.ts';

export { WATCH_KINDS, bookmarkLine, expiredLine, nameOf, watchError, type ApiObject, type WatchKind, type WatchMetrics, type Watcher, type WatchSink } from './wire.ts';

/** Where the hub gets the current objects: the list routes' own builders. */
export interface WatchSources {
  /** Machine names now in the fleet. */
  machineNames(): readonly string[];
  /** One Machine object, or null when it is gone. */
  machine(name: string): ApiObject | null;
  /** Every Machine object now, built in one pass (the baseline at start); absent: machine() for each name. */
  machines?(): Iterable<ApiObject>;
  rollouts(): readonly ApiObject[];
  remediations(): readonly ApiObject[];
  /** One machine's Remediation object as remediations() lists it, or null when it lists none. */
  remediation(machine: string): ApiObject | null;
}

export interface WatchOptions {
  /** Changes kept for `resourceVersion=N` resumes. */
  readonly historySize: number;
  /**
   * Characters of object JSON the ring may hold (about bytes: the JSON is ASCII but for
   * rare text); past it the oldest versions go even under historySize. Without it, 10,000
   * changes of a Machine (4 KB each at 5 k machines) were 40 MB whatever the fleet.
   */
  readonly historyBytes?: number;
  /** Concurrent watchers, at most (the event log's count too). */
  readonly maxWatchers: number;
  /** A BOOKMARK at least this often. */
  readonly bookmarkMs: number;
  /** How often the hub looks for changes. */
  readonly tickMs: number;
  /** Unsent bytes over which nothing more is written to a watcher until it drains. */
  readonly maxBufferBytes: number;
  /** A watcher over maxBufferBytes this long is dropped. */
  readonly stallMs: number;
  /**
   * Machines one tick rebuilds and diffs, at most (default 2,000); the rest stay dirty for
   * the next ticks. 16,500 machines going Unknown together held one tick 4.7 s at 40 k.
   */
  readonly maxMachinesPerTick?: number;
}

const DEFAULT_MAX_MACHINES_PER_TICK = 2000;

export const DEFAULT_WATCH_OPTIONS: WatchOptions = Object.freeze({
  historySize: 10_000, historyBytes: 16 * 1024 * 1024, maxWatchers: 100, bookmarkMs: 10_000, tickMs: 250, maxBufferBytes: 1024 * 1024, stallMs: 30_000,
});

/** Lines written before a catching-up watcher waits for 'drain'. */
const PACE_BYTES = 64 * 1024;

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface Known {
  readonly hash: string;
  /** What a DELETED event carries: the object's identity as last sent. */
  readonly stub: string;
  readonly labels: Readonly<Record<string, string>> | null;
}

/** What identifies an object's state for diffing: its change key, hashed. */
function hashOf(kind: WatchKind, o: ApiObject): string {
  return createHash('sha1').update(changeKey(kind, o)).digest('base64');
}

interface Change {
  readonly kind: WatchKind;
  readonly name: string;
  readonly type: EventType;
  /** The object's JSON. */
  readonly json: string;
  readonly labels: Readonly<Record<string, string>> | null;
  readonly prevLabels: Readonly<Record<string, string>> | null;
  /** The new known state (null: forgotten). */
  readonly next: Known | null;
}

interface Entry extends Change {
  readonly rv: number;
}

export class WatchHub {
  readonly #store: Store;
  readonly #sources: WatchSources;
  readonly #opts: WatchOptions;
  readonly #log: Logger;
  readonly #metrics: WatchMetrics;
  readonly #known = new Map<WatchKind, Map<string, Known>>(WATCH_KINDS.map((k) => [k, new Map()]));
  readonly #ring: Entry[] = [];
  /** Characters of JSON the ring holds. */
  #ringBytes = 0;
  #dirty = new Set<string>();
  /** Machines whose Remediation may have moved (the controller's word); null: all of them. */
  #dirtyRemediations: Set<string> | null = new Set();
  readonly #watchers = new Set<Watcher>();
  readonly #timers: NodeJS.Timeout[] = [];
  /** The ring holds every change after this version. */
  #oldest: number;
  /** The version of the last change sent, or of the start. */
  #last: number;
  /** The largest version any list or watch has answered with. */
  #maxServed: number;
  /** The store counter as of the last tick. */
  #storeSeen: number;
  #ticking = false;
  #failing = false;
  /** Other kinds' ticks (the event log's), run after ours. */
  readonly #tickers: Array<() => void> = [];

  constructor(deps: { store: Store; sources: WatchSources; log: Logger; metrics: WatchMetrics }, opts: WatchOptions = DEFAULT_WATCH_OPTIONS) {
    if (opts.historySize < 1 || opts.maxWatchers < 0) throw new RangeError('historySize must be >= 1 and maxWatchers >= 0');
    if (opts.historyBytes !== undefined && !(opts.historyBytes >= 1)) throw new RangeError('historyBytes must be >= 1');
    this.#store = deps.store;
    this.#sources = deps.sources;
    this.#log = deps.log;
    this.#metrics = deps.metrics;
    this.#opts = opts;
    const rv = Number(this.#store.currentResourceVersion());
    this.#oldest = this.#last = this.#maxServed = this.#storeSeen = rv;
    // What is there now is the baseline: changes are what differs from it. Only what a
    // later diff compares is kept (no object's JSON: 40,000 Machines' were 120 MB to drop).
    const known = this.#known.get('machines');
    const machines: Iterable<ApiObject | null> = this.#sources.machines?.() ?? this.#sources.machineNames().map((n) => this.#sources.machine(n));
    for (const o of machines) if (o !== null) known?.set(nameOf('machines', o), this.#entryOf('machines', o));
    const pending: Change[] = [];
    this.#fullDiff(pending, ['rollouts', 'remediations']);
    for (const c of pending) this.#remember(c);
  }

  /** Unsent bytes past which a catching-up watcher waits for 'drain'. */
  get #pace(): number {
    return Math.min(PACE_BYTES, this.#opts.maxBufferBytes);
  }

  get options(): WatchOptions {
    return this.#opts;
  }

  /** Starts the tick and bookmark timers. */
  start(): void {
    const tick = setInterval(() => this.tick(), this.#opts.tickMs);
    const bookmarks = setInterval(() => this.bookmarks(), this.#opts.bookmarkMs);
    tick.unref();
    bookmarks.unref();
    this.#timers.push(tick, bookmarks);
  }

  /** Ends every watch and stops the timers (coordinator shutdown). */
  close(): void {
    for (const t of this.#timers) clearInterval(t);
    for (const w of [...this.#watchers]) w.sink.end();
  }

  /** A machine whose served object may have changed in memory (the fleet view's hook). */
  machineChanged(name: string): void {
    this.#dirty.add(name);
  }

  /**
   * A machine whose Remediation object may have changed (the remediation controller's
   * hook), or null for all of them (the rules moved). A machine the fleet view reports
   * is looked at too (it may have been deleted, revoked or enrolled again).
   */
  remediationChanged(machine: string | null): void {
    if (machine === null) this.#dirtyRemediations = null;
    else this.#dirtyRemediations?.add(machine);
  }

  /** Runs another kind's tick after ours (the event log's). */
  addTicker(fn: () => void): void {
    this.#tickers.push(fn);
  }

  /**
   * The resourceVersion a list answers with, now: every change before this call is in
   * the list, every later one reaches a watch from it with a larger version.
   */
  listVersion(): string {
    // Look first: what the list is about to show must be what the hub knows, or an object
    // made and removed before the next tick would be listed and never DELETED. All of it:
    // a machine left dirty by the per-tick cap would be listed in a state the hub never
    // recorded, and a change back to the recorded one would never reach the watch (the
    // list is a pass over the fleet anyway).
    this.tick(true);
    const rv = Math.max(Number(this.#store.currentResourceVersion()), this.#last);
    this.#maxServed = Math.max(this.#maxServed, rv);
    return String(rv);
  }

  /** Refuses a watch over the cap: 429 NK_WATCH_TOO_MANY, before anything is written. */
  admit(): void {
    if (this.#watchers.size >= this.#opts.maxWatchers) {
      throw watchError('NK_WATCH_TOO_MANY', `this coordinator serves at most ${this.#opts.maxWatchers} watches at once (api.maxWatchers); try again later`);
    }
  }

  /** Refuses a resume the ring cannot serve: 410 NK_WATCH_EXPIRED, before anything is written. */
  checkResume(rv: number): void {
    if (rv < this.#oldest || rv > Math.max(this.#maxServed, Number(this.#store.currentResourceVersion()))) {
      throw watchError('NK_WATCH_EXPIRED', `resourceVersion ${rv} is too old or unknown here (this coordinator can resume from ${this.#oldest} on): list again and watch from the list's resourceVersion`);
    }
  }

  /** Registers a watcher (after admit); it is forgotten when its sink closes. */
  register(w: Watcher): void {
    this.#watchers.add(w);
    this.#count(w.kind);
    w.sink.onClose(() => {
      if (this.#watchers.delete(w)) this.#count(w.kind);
    });
  }

  watchers(): ReadonlySet<Watcher> {
    return this.#watchers;
  }

  /**
   * Whether more may be written to a watcher now: not while its unsent bytes are over
   * maxBufferBytes; and one over it for stallMs does not read, and is dropped (its
   * socket closed now: nothing waits for it).
   */
  mayWrite(w: Watcher, now = Date.now()): boolean {
    if (w.sink.closed) return false;
    if (w.sink.buffered <= this.#opts.maxBufferBytes) {
      w.stalledSince = null;
      return true;
    }
    w.stalledSince ??= now;
    if (now - w.stalledSince >= this.#opts.stallMs) {
      this.#log.warn({ kind: w.kind, buffered: w.sink.buffered }, 'watch reader does not keep up; dropped');
      this.#metrics.dropped('slow');
      w.sink.destroy();
      if (this.#watchers.delete(w)) this.#count(w.kind);
    }
    return false;
  }

  /**
   * Serves a watch of an object kind: the initial ADDED events when `from` is null (then
   * from the version of that moment), else the ring's changes after `from`; then live.
   */
  async watch(kind: WatchKind, from: number | null, filter: WatchFilter, sink: WatchSink): Promise<void> {
    const w: Watcher = { kind, filter, sink, cursor: from ?? 0, live: false, stalledSince: null };
    this.register(w);
    if (from === null) {
      w.cursor = Number(this.listVersion());
      const names = kind === 'machines' ? this.#sources.machineNames() : null;
      const objects = kind === 'machines' ? null : kind === 'rollouts' ? this.#sources.rollouts() : this.#sources.remediations();
      const count = names?.length ?? objects?.length ?? 0;
      for (let i = 0; i < count; i++) {
        const o = names === null ? objects?.[i] ?? null : this.#sources.machine(names[i] ?? '');
        if (o === null || !matchesFilter(filter, nameOf(kind, o), labelsOf(kind, o))) continue;
        sink.write(line('ADDED', JSON.stringify(o)));
        if (sink.buffered > this.#pace) await sink.drained();
        if (sink.closed) return;
      }
    }
    await this.#catchUp(w);
  }

  /** Sends the ring's changes after the watcher's cursor, paced, until it is current; then it is live. */
  async #catchUp(w: Watcher): Promise<void> {
    for (;;) {
      if (w.sink.closed) return;
      if (w.cursor < this.#oldest) {
        // The ring moved past it while it was being paced: the client lists again.
        w.sink.write(expiredLine(`resourceVersion ${w.cursor} expired while this watch caught up (the last ${this.#opts.historySize} changes, at most ${this.#opts.historyBytes ?? Infinity} bytes of them, are kept): list again`));
        w.sink.end();
        return;
      }
      if (w.cursor >= this.#last) {
        w.cursor = this.#last;
        w.live = true;
        w.sink.write(bookmarkLine(w.cursor));
        return;
      }
      // The next version's changes, all of them (a version is never split), then pace.
      let i = this.#firstAfter(w.cursor);
      const rv = this.#ring[i]?.rv ?? this.#last;
      for (; this.#ring[i]?.rv === rv; i++) {
        const text = this.#lineFor(w, this.#ring[i]!);
        if (text !== null) w.sink.write(text);
      }
      w.cursor = rv;
      if (w.sink.buffered > this.#pace) await w.sink.drained();
    }
  }

  /**
   * Looks for changes, records them, and sends them to live watchers. Never throws.
   * `all`: every dirty machine now, past maxMachinesPerTick (for a list).
   */
  tick(all = false): void {
    if (this.#ticking) return;
    this.#ticking = true;
    try {
      this.#sweep();
      this.#tickObjects(all);
      this.#failing = false;
    } catch (err) {
      // A store that cannot be read or bumped now: the next tick tries again with the same
      // dirty set. Said once per outage, not four times a second.
      if (!this.#failing) this.#log.warn({ err }, 'watch tick failed; retrying on every tick');
      this.#failing = true;
    } finally {
      this.#ticking = false;
    }
    for (const t of this.#tickers) {
      try {
        t();
      } catch (err) {
        this.#log.warn({ err }, 'watch tick failed; retrying on the next');
      }
    }
  }

  #tickObjects(all: boolean): void {
    const counter = Number(this.#store.currentResourceVersion());
    const storeMoved = counter > this.#storeSeen;
    const names = new Set(this.#dirty);
    if (storeMoved) for (const n of this.#store.changedSince('machine', this.#storeSeen)) names.add(n);
    // Past the cap the rest wait, dirty, for the next ticks: a mass change (a partition,
    // a restart's grace running out) is spread over ticks instead of stalling the loop.
    const later: string[] = [];
    const cap = all ? Infinity : (this.#opts.maxMachinesPerTick ?? DEFAULT_MAX_MACHINES_PER_TICK);
    if (names.size > cap) {
      let taken = 0;
      for (const name of names) if (taken++ >= cap) later.push(name);
      for (const name of later) names.delete(name);
    }
    const pending: Change[] = [];
    for (const name of names) this.#diff('machines', name, this.#sources.machine(name), pending);
    // A Rollout is its row and the fleet's versions: rebuilt when either moved, or a row
    // went (a delete stamps no version).
    const moved = storeMoved || names.size > 0 || this.#store.objectMetas('rollout').size !== this.#known.get('rollouts')?.size;
    if (moved) this.#fullDiff(pending, ['rollouts']);
    // A Remediation is the controller's memory and its machine: rebuilt for the machines
    // either said moved, never for the whole fleet (unless the rules moved).
    const remediations = this.#dirtyRemediations;
    if (remediations === null) this.#fullDiff(pending, ['remediations']);
    else {
      for (const name of names) remediations.add(name);
      for (const name of remediations) this.#diff('remediations', name, this.#sources.remediation(name), pending);
    }
    if (pending.length === 0) {
      this.#settle(later);
      this.#storeSeen = counter;
      return;
    }
    // A version nobody has been answered with yet (see the header).
    const rv = counter > this.#maxServed ? counter : this.#store.bumpResourceVersion();
    this.#settle(later);
    this.#storeSeen = rv;
    for (const c of pending) {
      this.#remember(c);
      this.#ring.push({ ...c, rv });
      this.#ringBytes += c.json.length;
    }
    this.#last = this.#maxServed = rv;
    this.#trim();
    for (const w of [...this.#watchers]) {
      if (!w.live || w.kind === 'events') continue;
      if (!this.mayWrite(w)) {
        // It has not taken what it was sent: it catches up from the ring when it drains.
        w.live = false;
        void this.#catchUp(w).catch(() => w.sink.destroy());
        continue;
      }
      let wrote = false;
      for (let i = this.#ring.length - pending.length; i < this.#ring.length; i++) {
        const e = this.#ring[i];
        const text = e === undefined ? null : this.#lineFor(w, e);
        if (text !== null) {
          w.sink.write(text);
          wrote = true;
        }
      }
      w.cursor = rv;
      // Object versions are the rows'; the batch's version is told by a bookmark, to resume from.
      if (wrote) w.sink.write(bookmarkLine(rv));
    }
  }

  /** What a tick took is no longer dirty; what it left for later still is. */
  #settle(later: readonly string[]): void {
    this.#dirty = new Set(later);
    this.#dirtyRemediations = new Set();
  }

  /** A BOOKMARK to every live watcher (at least every bookmarkMs). */
  bookmarks(): void {
    for (const w of [...this.#watchers]) {
      if (w.live && this.mayWrite(w)) w.sink.write(bookmarkLine(w.cursor));
    }
  }

  /** Drops the watchers that have not read for stallMs, wherever they are. */
  #sweep(): void {
    for (const w of [...this.#watchers]) this.mayWrite(w);
  }

  #fullDiff(pending: Change[], kinds: ReadonlyArray<'rollouts' | 'remediations'> = ['rollouts', 'remediations']): void {
    for (const kind of kinds) {
      const current = kind === 'rollouts' ? this.#sources.rollouts() : this.#sources.remediations();
      const seen = new Set<string>();
      for (const o of current) {
        const name = nameOf(kind, o);
        seen.add(name);
        this.#diff(kind, name, o, pending);
      }
      for (const name of this.#known.get(kind)?.keys() ?? []) if (!seen.has(name)) this.#diff(kind, name, null, pending);
    }
  }

  #diff(kind: WatchKind, name: string, o: ApiObject | null, out: Change[]): void {
    const prev = this.#known.get(kind)?.get(name);
    if (o === null) {
      if (prev !== undefined) out.push({ kind, name, type: 'DELETED', json: prev.stub, labels: null, prevLabels: prev.labels, next: null });
      return;
    }
    const hash = hashOf(kind, o);
    if (prev?.hash === hash) return;
    const next = this.#entryOf(kind, o, hash);
    out.push({ kind, name, type: prev === undefined ? 'ADDED' : 'MODIFIED', json: JSON.stringify(o), labels: next.labels, prevLabels: prev?.labels ?? null, next });
  }

  /** What the hub keeps of an object to diff it later: its hash, DELETED stub and labels. */
  #entryOf(kind: WatchKind, o: ApiObject, hash = hashOf(kind, o)): Known {
    return { hash, stub: JSON.stringify(stubOf(kind, o)), labels: labelsOf(kind, o) };
  }

  #remember(c: Change): void {
    const known = this.#known.get(c.kind);
    if (c.next === null) known?.delete(c.name);
    else known?.set(c.name, c.next);
  }

  /** The index of the first ring entry with a version above `rv` (the ring is in version order). */
  #firstAfter(rv: number): number {
    let lo = 0;
    let hi = this.#ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.#ring[mid]?.rv ?? 0) <= rv) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Drops the oldest versions past historySize or historyBytes, a whole version at a time;
   * the newest version always stays, whatever its size.
   */
  #trim(): void {
    const maxBytes = this.#opts.historyBytes ?? Infinity;
    while (this.#ring.length > this.#opts.historySize || (this.#ringBytes > maxBytes && this.#ring[0]?.rv !== this.#last)) {
      const rv = this.#ring[0]?.rv ?? 0;
      while (this.#ring[0]?.rv === rv) this.#ringBytes -= this.#ring.shift()!.json.length;
      this.#oldest = rv;
    }
  }

  /** The line a change makes for one watcher, or null when its filter leaves it out. */
  #lineFor(w: Watcher, e: Entry): string | null {
    if (w.kind !== e.kind) return null;
    // An object that starts or stops matching a label selector is ADDED or DELETED for
    // this watcher, as Kubernetes does it.
    const now = e.type !== 'DELETED' && matchesFilter(w.filter, e.name, e.labels);
    const before = e.type !== 'ADDED' && matchesFilter(w.filter, e.name, e.prevLabels);
    if (now && before) return line(e.type, e.json);
    if (now) return line('ADDED', e.json);
    if (before) return line('DELETED', e.json);
    return null;
  }

  #count(kind: string): void {
    let n = 0;
    for (const w of this.#watchers) if (w.kind === kind) n++;
    this.#metrics.watchers(kind, n);
  }
}
