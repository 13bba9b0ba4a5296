/**
 * A durable reader of the coordinator's event log for one sink (Kubernetes Events, a
 * notification webhook). It reads events by id after the sink's persisted cursor, hands
 * them over in batches, and moves the cursor only once the sink says a batch is done.
 * Many events are recorded inside other transactions (a rollout tick, a status batch),
 * so an in-process callback could announce an event that then rolls back, or miss one
 * written by another path; polling the table by id sees exactly what committed.
 *
 * Delivery is at-least-once: a kill -9 after a delivery and before the cursor is saved
 * repeats that one batch at the next start; nothing recorded is ever skipped. A sink
 * seen for the first time starts at the newest event (it does not replay history).
 */
import { backoffDelay, jittered, type Logger } from '@nodekeeper/common';
import type { EventRecord } from '../model/records.ts';

/** What the feed needs of the store. */
export interface FeedStore {
  sinkCursor(name: string): number | null;
  saveSinkCursor(name: string, afterId: number): void;
  lastEventId(): number;
  listEvents(q: { afterId: number; limit: number }): EventRecord[];
}

export interface EventSink {
  /** Names the cursor (stable across restarts). */
  readonly name: string;
  /** Whether the sink can deliver now (e.g. its Node cache is filled); the feed waits otherwise. */
  ready?(): boolean;
  /**
   * Delivers a batch (already in id order). Resolves when every event of it is done
   * with (delivered, or dropped on purpose); throws to have the same batch handed over
   * again after a backoff. A sink that keeps partial progress must make a repeat safe;
   * `commit(id)` saves the cursor at once (a kill -9 then repeats nothing up to `id`).
   */
  deliver(batch: readonly EventRecord[], commit: (id: number) => void): Promise<void>;
}

export interface FeedOptions {
  /** How often the log is read when there is nothing new (jittered +-10 %). */
  readonly pollMs: number;
  /** Events read per batch: bounds what the sink holds in memory. */
  readonly batch: number;
  /** Retry delays after a failed batch (full jitter). */
  readonly backoff: { readonly baseMs: number; readonly capMs: number };
}

export const DEFAULT_FEED: FeedOptions = Object.freeze({ pollMs: 1000, batch: 200, backoff: Object.freeze({ baseMs: 1000, capMs: 30_000 }) });

export class EventFeed {
  private cursor: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = true;
  private failures = 0;
  private lastError: string | null = null;

  private readonly sink: EventSink;
  private readonly deps: { store: FeedStore; log: Logger };
  private readonly o: FeedOptions;

  constructor(sink: EventSink, deps: { store: FeedStore; log: Logger }, o: FeedOptions = DEFAULT_FEED) {
    this.sink = sink;
    this.deps = deps;
    this.o = o;
  }

  /** Fixes the start point at once (a new sink starts after the newest event recorded before this call), then polls. */
  start(): void {
    this.stopped = false;
    try {
      this.cursor = this.recover();
    } catch {
      // The store cannot be read or written now: the first round tries again and says why.
    }
    this.schedule(0);
  }

  /** Stops polling; resolves once a batch in flight has ended (its cursor saved or not). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /** The id this sink is done with (null before the first read). */
  position(): number | null {
    return this.cursor;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.round().finally(() => (this.running = null));
    }, ms);
    this.timer.unref();
  }

  /** One read-deliver-save round; schedules the next (at once while there is a backlog). */
  private async round(): Promise<void> {
    let next = jittered(this.o.pollMs);
    try {
      // The start point is fixed first, so events recorded while the sink waits to be ready are kept.
      if (this.cursor === null) this.cursor = this.recover();
      if (this.sink.ready?.() === false) return;
      const batch = this.deps.store.listEvents({ afterId: this.cursor, limit: this.o.batch });
      if (batch.length === 0) return;
      await this.sink.deliver(batch, (id) => {
        this.deps.store.saveSinkCursor(this.sink.name, id);
        this.cursor = id;
      });
      const upto = batch.at(-1)!.id;
      this.deps.store.saveSinkCursor(this.sink.name, upto);
      this.cursor = upto;
      if (this.lastError !== null) this.deps.log.info({ sink: this.sink.name, after: this.failures }, 'event sink delivers again');
      this.lastError = null;
      this.failures = 0;
      if (batch.length === this.o.batch) next = 0;
    } catch (err) {
      // Logged once per distinct error, not once per retry: an outage of hours is one line.
      const msg = (err as Error)?.message ?? String(err);
      if (msg !== this.lastError && !this.stopped) this.deps.log.warn({ sink: this.sink.name, err: msg, code: (err as { code?: string }).code }, 'event sink cannot deliver; retrying with backoff');
      this.lastError = msg;
      next = Math.max(this.o.backoff.baseMs / 2, backoffDelay(this.o.backoff, Math.min(this.failures, 20)));
      this.failures += 1;
    } finally {
      this.schedule(next);
    }
  }

  /** Where to resume: the saved cursor, else (a new sink) the newest event, saved at once. */
  private recover(): number {
    const saved = this.deps.store.sinkCursor(this.sink.name);
    if (saved !== null) return saved;
    const start = this.deps.store.lastEventId();
    this.deps.store.saveSinkCursor(this.sink.name, start);
    this.deps.log.info({ sink: this.sink.name, from: start }, 'new event sink: starting after the newest event');
    return start;
  }
}
