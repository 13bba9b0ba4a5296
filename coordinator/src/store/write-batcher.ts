/**
 * Keeps heartbeats and status changes in memory and writes them in ONE transaction per
 * interval, so a fleet's heartbeats cost one fsync per interval instead of one each.
 * Last-seen times keep the latest per machine; statuses keep the latest per machine,
 * plus every distinct component observation seen since the last flush (so a component
 * that flapped between two flushes still leaves its trace in the history).
 *
 * Events that tell a status change (liveness, conditions) ride in the same transaction
 * as the status they describe, stamped with the time they happened.
 *
 * A timed flush holds the event loop for at most about `sliceMs`: when a storm has queued
 * more than that (19,000 machines coming back at once queue their statuses and events
 * together), it writes what fits in one transaction and the rest in the next turn of the
 * loop, so heartbeats and admission keep being served in between (a 1 s flush stalled the
 * loop and throttled the readmission of the fleet).
 *
 * What is pending when the process dies is lost by design: last-seen times are
 * re-learned from the next message, and status is recomputed from the next report.
 * Acknowledged operations (enrollment, revocation) never go through here.
 */
import { AppError, jittered, type Logger } from '@nodekeeper/common';
import type { Store } from './db.ts';
import { StoreErrorCode } from './errors.ts';
import type { NewEvent } from './events.ts';
import { observationsOf, sameObservation, type BatchResult, type Observation, type QueuedEvent, type StatusWrite } from './status.ts';

export interface WriteBatcherOptions {
  /** Mean time between flushes. */
  readonly intervalMs: number;
  /** Spread of each interval, as a fraction (default 0.2: +-20 %). */
  readonly jitter?: number;
  readonly random?: () => number;
  readonly log?: Logger;
  /** Clock for observation times when a status has no reportChangedAt (default: the store's). */
  readonly now?: () => number;
  /** Start the timer at once (default true). Tests that flush by hand pass false. */
  readonly autoStart?: boolean;
  /** Runs each timed flush (the coordinator labels its store writes with it). */
  readonly runAs?: <T>(fn: () => T) => T;
  /** Told how long each flush transaction took (the histogram of /metrics). */
  readonly flushed?: (seconds: number, result: 'ok' | 'failed') => void;
  /**
   * How long one timed flush may hold the event loop, roughly (default 50 ms): it stops
   * taking statuses and events once that is spent (always taking at least one) and
   * writes the rest in the following turns. flush() and close() write everything.
   */
  readonly sliceMs?: number;
}

/** Counters for /metrics. */
export interface BatcherCounters {
  /** Flush transactions committed. */
  flushes: number;
  /** Flushes that failed (their writes stay queued and are retried). */
  failedFlushes: number;
  /** Rows written in all: last-seen + status + observation rows. */
  rowsWritten: number;
  lastSeenRows: number;
  statusRows: number;
  observationRows: number;
  eventRows: number;
}

/** Bound on events queued between flushes (a storm of transitions); the oldest go first. */
const MAX_PENDING_EVENTS = 100_000;

/** Bound on observations kept per machine between flushes; the oldest go first. */
const MAX_PENDING_OBSERVATIONS = 64;

const DEFAULT_SLICE_MS = 50;

interface PendingStatus {
  status: StatusWrite;
  observations: Observation[];
}

export class WriteBatcher {
  readonly counters: BatcherCounters = { flushes: 0, failedFlushes: 0, rowsWritten: 0, lastSeenRows: 0, statusRows: 0, observationRows: 0, eventRows: 0 };
  readonly #store: Store;
  readonly #opts: WriteBatcherOptions;
  readonly #lastSeen = new Map<string, number>();
  readonly #statuses = new Map<string, PendingStatus>();
  #events: QueuedEvent[] = [];
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  /** Timed flushes that failed in a row (only the first is logged as an error). */
  #failingInARow = 0;

  constructor(store: Store, opts: WriteBatcherOptions) {
    if (!Number.isFinite(opts.intervalMs) || opts.intervalMs <= 0) throw new RangeError(`intervalMs must be > 0, got ${opts.intervalMs}`);
    const jitter = opts.jitter ?? 0.2;
    if (!(jitter >= 0 && jitter < 1)) throw new RangeError(`jitter must be in [0, 1), got ${jitter}`);
    if (opts.sliceMs !== undefined && !(opts.sliceMs > 0)) throw new RangeError(`sliceMs must be > 0, got ${opts.sliceMs}`);
    this.#store = store;
    this.#opts = opts;
    if (opts.autoStart !== false) this.start();
  }

  /** Starts the flush timer (idempotent). */
  start(): void {
    if (this.#closed) throw new TypeError('write batcher is closed');
    if (this.#timer === null) this.#schedule();
  }

  /**
   * Records that a message from `name` arrived at `at` (coordinator clock). Memory only.
   * After close() it is ignored: agent connections close after the last flush at
   * shutdown, and a last-seen time is re-learned from the agent's next message.
   */
  lastSeen(name: string, at: number): void {
    if (this.#closed) return;
    const before = this.#lastSeen.get(name);
    if (before === undefined || at > before) this.#lastSeen.set(name, at);
  }

  /**
   * Queues a machine's status; the latest one wins, its observations accumulate.
   * `observe` false: the caller knows its report's health and versions did not move, so
   * no observation is queued (and none is compared with the history at the flush).
   */
  status(name: string, status: StatusWrite, observe = true): void {
    this.#assertOpen();
    const at = status.reportChangedAt ?? (this.#opts.now ?? (() => this.#store.now()))();
    const pending = this.#statuses.get(name) ?? { status, observations: [] };
    pending.status = status;
    for (const o of observe ? observationsOf(status.report, at) : []) {
      const last = pending.observations.findLast((p) => p.component === o.component);
      if (last !== undefined && sameObservation(last, o)) continue;
      pending.observations.push(o);
    }
    if (pending.observations.length > MAX_PENDING_OBSERVATIONS) {
      pending.observations.splice(0, pending.observations.length - MAX_PENDING_OBSERVATIONS);
    }
    this.#statuses.set(name, pending);
  }

  /** Queues an event, stamped now; it is written with the next flush. */
  event(event: NewEvent): void {
    this.#assertOpen();
    this.#events.push({ event, at: (this.#opts.now ?? (() => this.#store.now()))() });
    if (this.#events.length > MAX_PENDING_EVENTS) this.#events.splice(0, this.#events.length - MAX_PENDING_EVENTS);
  }

  /** How many machines have a pending last-seen time or status. */
  get pending(): { lastSeen: number; statuses: number } {
    return { lastSeen: this.#lastSeen.size, statuses: this.#statuses.size };
  }

  /**
   * Writes everything pending in one transaction and clears it. Returns null when there
   * was nothing to write. On failure the writes stay queued and NK_STORE_WRITE_FAILED
   * is thrown with the cause.
   */
  flush(): BatchResult | null {
    return this.#flush(Infinity);
  }

  /**
   * Writes what is pending in one transaction: every last-seen time, then events and
   * statuses, oldest queued first, until `budgetMs` is spent (at least one of them).
   * What is written leaves the queue; the rest stays for the next call.
   */
  #flush(budgetMs: number): BatchResult | null {
    if (this.#lastSeen.size === 0 && this.#statuses.size === 0 && this.#events.length === 0) return null;
    let result: BatchResult;
    const started = performance.now();
    const took = () => (performance.now() - started) / 1000;
    let taken = 0;
    const within = () => taken++ === 0 || performance.now() - started < budgetMs;
    let events = 0;
    const statuses: string[] = [];
    const pending = this.#statuses;
    const queuedEvents = this.#events;
    try {
      result = this.#store.writeBatch({
        lastSeen: this.#lastSeen,
        events: (function* () {
          for (const e of queuedEvents) {
            if (!within()) return;
            events += 1;
            yield e;
          }
        })(),
        statuses: (function* () {
          for (const [name, p] of pending) {
            if (!within()) return;
            statuses.push(name);
            yield { name, status: p.status, observations: p.observations };
          }
        })(),
      });
    } catch (err) {
      this.counters.failedFlushes += 1;
      this.#opts.flushed?.(took(), 'failed');
      throw new AppError(StoreErrorCode.writeFailed, `batched store write failed, ${this.#lastSeen.size + this.#statuses.size} machine(s) still queued: ${String(err)}`, { cause: err });
    }
    // Synchronous from read to here: nothing can have been queued in between.
    this.#lastSeen.clear();
    if (statuses.length === pending.size) pending.clear();
    else for (const name of statuses) pending.delete(name);
    this.#events = events === queuedEvents.length ? [] : queuedEvents.slice(events);
    this.#opts.flushed?.(took(), 'ok');
    const c = this.counters;
    c.eventRows += events;
    c.flushes += 1;
    c.lastSeenRows += result.lastSeenRows;
    c.statusRows += result.statusRows;
    c.observationRows += result.observationRows;
    c.rowsWritten += result.lastSeenRows + result.statusRows + result.observationRows + events;
    if (result.missing.length > 0) this.#opts.log?.warn({ machines: result.missing }, 'status queued for machines the store does not have');
    return result;
  }

  /** Flushes what is pending and stops the timer. Idempotent. Call before Store.close(). */
  close(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#closed) return;
    this.#closed = true;
    this.flush();
  }

  #schedule(): void {
    const delay = jittered(this.#opts.intervalMs, this.#opts.jitter ?? 0.2, this.#opts.random);
    this.#timer = setTimeout(() => this.#tick(), delay);
    this.#timer.unref(); // a pending flush never keeps the process alive: close() flushes
  }

  #tick(): void {
    this.#timer = null;
    if (this.#closed) return;
    let more = false;
    try {
      (this.#opts.runAs ?? ((fn) => fn()))(() => this.#flush(this.#opts.sliceMs ?? DEFAULT_SLICE_MS));
      more = this.#statuses.size > 0 || this.#events.length > 0;
      if (this.#failingInARow > 0) this.#opts.log?.info({ failed: this.#failingInARow }, 'batched store writes succeed again');
      this.#failingInARow = 0;
    } catch (err) {
      // An outage (a full disk) fails every interval until it ends: say it once.
      if (this.#failingInARow++ === 0) this.#opts.log?.error({ err }, 'batched store write failed; will retry');
      else this.#opts.log?.debug({ err, failed: this.#failingInARow }, 'batched store write failed again');
    }
    if (this.#closed) return;
    // The rest of a sliced flush goes in the next turn, after the I/O that waited.
    if (more) this.#timer = setTimeout(() => this.#tick(), 0).unref();
    else this.#schedule();
  }

  #assertOpen(): void {
    if (this.#closed) throw new TypeError('write batcher is closed');
  }
}
