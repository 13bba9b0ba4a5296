/**
 * Retention: on a jittered timer, prunes what the limits say nobody needs (events,
 * finished commands, spent tokens, old observations; see store/retention.ts) in small
 * batches, one transaction each, yielding to the event loop between batches so agents'
 * frames and API calls are served in between: a backlog of millions of rows is worked
 * off over several rounds instead of stalling the coordinator.
 */
import { jittered, type Logger } from '@nodekeeper/common';
import type { Store } from '../store/db.ts';

export type PrunedKind = 'events' | 'commands' | 'tokens' | 'observations';

/** Ages in ms (0: keep forever); see docs/coordinator.md for the defaults. */
export interface RetentionOptions {
  readonly eventsMaxAgeMs: number;
  /** Newest events kept at most (0: no cap). */
  readonly eventsMaxRows: number;
  readonly commandsMaxAgeMs: number;
  /** After expiry or revocation. */
  readonly tokensMaxAgeMs: number;
  readonly observationsMaxAgeMs: number;
  /** Mean time between rounds. */
  readonly intervalMs: number;
  /** Rows per transaction. */
  readonly batchRows: number;
  /** Batches per kind per round, at most (the rest waits for the next round). */
  readonly maxBatchesPerRound: number;
}

export interface RetentionDeps {
  readonly store: Store;
  readonly log: Logger;
  /** Told of rows deleted (for nodekeeper_store_rows_pruned_total). */
  readonly pruned: (kind: PrunedKind, rows: number) => void;
  /** Runs each batch (the coordinator labels and guards its store writes with it). */
  readonly runAs?: <T>(fn: () => T) => T;
  /** False while the store cannot write: the round is skipped. */
  readonly canWrite?: () => boolean;
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export class RetentionController {
  readonly #deps: RetentionDeps;
  readonly #opts: RetentionOptions;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<Record<PrunedKind, number>> | null = null;
  #stopped = false;

  constructor(deps: RetentionDeps, opts: RetentionOptions) {
    if (!(opts.batchRows >= 1) || !(opts.maxBatchesPerRound >= 1) || !(opts.intervalMs > 0)) throw new RangeError('retention: batchRows, maxBatchesPerRound and intervalMs must be positive');
    this.#deps = deps;
    this.#opts = opts;
  }

  /** Starts the timer; the first round comes after a jittered interval (not at start, with everything else). */
  start(): void {
    if (this.#timer !== null || this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.runOnce().finally(() => {
        if (!this.#stopped) this.start();
      });
    }, jittered(this.#opts.intervalMs, 0.2));
    this.#timer.unref();
  }

  /** Stops the timer; a round under way finishes its current batch and stops. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running?.catch(() => {});
  }

  /** One round over every kind; resolves with the rows deleted per kind. Never rejects. */
  runOnce(): Promise<Record<PrunedKind, number>> {
    this.#running ??= this.#round().finally(() => (this.#running = null));
    return this.#running;
  }

  async #round(): Promise<Record<PrunedKind, number>> {
    const o = this.#opts;
    const { store } = this.#deps;
    const now = store.now();
    const total: Record<PrunedKind, number> = { events: 0, commands: 0, tokens: 0, observations: 0 };
    const kinds: Array<[PrunedKind, boolean, (cursor: { at: number }) => { deleted: number; more: boolean }]> = [
      ['events', o.eventsMaxAgeMs > 0 || o.eventsMaxRows > 0, () => {
        const n = store.pruneEvents(o.eventsMaxAgeMs > 0 ? now - o.eventsMaxAgeMs : -Infinity, o.eventsMaxRows, o.batchRows);
        return { deleted: n, more: n >= o.batchRows };
      }],
      ['commands', o.commandsMaxAgeMs > 0, () => {
        const n = store.pruneCommands(now - o.commandsMaxAgeMs, o.batchRows);
        return { deleted: n, more: n >= o.batchRows };
      }],
      ['tokens', o.tokensMaxAgeMs > 0, () => {
        const n = store.pruneTokens(now - o.tokensMaxAgeMs, o.batchRows);
        return { deleted: n, more: n >= o.batchRows };
      }],
      ['observations', o.observationsMaxAgeMs > 0, (cursor) => {
        const r = store.pruneObservations(now - o.observationsMaxAgeMs, cursor.at, o.batchRows);
        cursor.at = r.lastId;
        return { deleted: r.deleted, more: !r.done };
      }],
    ];
    const run = this.#deps.runAs ?? ((fn) => fn());
    for (const [kind, enabled, batch] of kinds) {
      if (!enabled) continue;
      const cursor = { at: 0 };
      for (let i = 0; i < o.maxBatchesPerRound && !this.#stopped; i++) {
        if (this.#deps.canWrite?.() === false) return total;
        let r: { deleted: number; more: boolean };
        try {
          r = run(() => batch(cursor));
        } catch (err) {
          this.#deps.log.warn({ err, kind }, 'retention batch failed; the next round retries');
          break;
        }
        total[kind] += r.deleted;
        if (r.deleted > 0) this.#deps.pruned(kind, r.deleted);
        if (!r.more) break;
        await yieldToLoop();
      }
    }
    if (Object.values(total).some((n) => n > 0)) this.#deps.log.info({ pruned: total }, 'retention pruned old rows');
    return total;
  }
}
