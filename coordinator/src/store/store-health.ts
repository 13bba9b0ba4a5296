/**
 * Whether the store can write now (architecture invariant 11: no fault crashes the
 * coordinator). A disk that fills, an I/O error or a lock held too long makes SQLite
 * refuse writes; every write transaction reports here (store/context.ts), so the
 * coordinator can say it on /readyz and /metrics, back off its controllers, answer
 * writes with NK_STORE_UNAVAILABLE instead of acknowledging them, and tell when it
 * recovers. Reads keep working: SQLite serves them from what is committed.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { AppError, backoffDelay, type Logger } from '@nodekeeper/common';
import { StoreErrorCode } from './errors.ts';

/**
 * SQLite result codes (primary, before the first `_`) that mean "the store cannot write
 * now, try again later": a full disk or quota, an I/O error, a lock not released in
 * time, a read-only or vanished file, no memory. Anything else (a constraint, a
 * trigger, a misuse) is a bug or a refusal, not an outage.
 * https://www.sqlite.org/rescode.html
 */
const UNAVAILABLE = new Set(['SQLITE_FULL', 'SQLITE_IOERR', 'SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_READONLY', 'SQLITE_CANTOPEN', 'SQLITE_NOMEM', 'SQLITE_PROTOCOL', 'SQLITE_NOLFS']);

/** The SQLite code of an error that means the store is unavailable (e.g. SQLITE_FULL), or null. */
export function unavailableCode(err: unknown): string | null {
  if (err instanceof AppError && err.code === StoreErrorCode.unavailable) return String(err.context?.['sqlite'] ?? 'unknown');
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return null;
  const primary = code.split('_').slice(0, 2).join('_');
  return UNAVAILABLE.has(primary) ? code : null;
}

/** NK_STORE_UNAVAILABLE for an outage error (idempotent); other errors are returned as they are. */
export function asUnavailable(err: unknown): unknown {
  if (err instanceof AppError && err.code === StoreErrorCode.unavailable) return err;
  const code = unavailableCode(err);
  if (code === null) return err;
  return new AppError(StoreErrorCode.unavailable, `the store cannot write now (${code}: ${(err as Error).message}); nothing was changed, try again later`, { cause: err, context: { sqlite: code } });
}

export interface StoreHealthOptions {
  readonly now?: () => number;
  readonly log?: Logger;
  /** Backoff of the controllers' retries while writes fail (full jitter). */
  readonly backoff?: { readonly baseMs: number; readonly capMs: number };
  readonly random?: () => number;
  /** Told of each refused write (for the nodekeeper_store_errors_total counter). */
  readonly onError?: (op: string, code: string) => void;
}

export interface StoreOutage {
  /** When the first write of this outage failed (ms since the epoch). */
  readonly since: number;
  /** The SQLite code of the first and of the latest failure. */
  readonly firstCode: string;
  readonly lastCode: string;
  readonly lastMessage: string;
  readonly failures: number;
}

export class StoreHealth {
  /** Failed writes since start, by `${op}\0${code}`. */
  readonly errors = new Map<string, number>();
  readonly #ops = new AsyncLocalStorage<string>();
  readonly #now: () => number;
  readonly #log: Logger | undefined;
  readonly #backoff: { readonly baseMs: number; readonly capMs: number };
  readonly #random: () => number;
  readonly #onError: ((op: string, code: string) => void) | undefined;
  #outage: StoreOutage | null = null;
  #nextRetryAt = 0;
  #retries = 0;
  readonly #recovered: Array<(outage: StoreOutage, at: number) => void> = [];

  constructor(opts: StoreHealthOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.#log = opts.log;
    this.#backoff = opts.backoff ?? { baseMs: 1000, capMs: 30_000 };
    this.#random = opts.random ?? Math.random;
    this.#onError = opts.onError;
  }

  /** Runs `fn` with writes in it counted under `op` (a label: remediation, api, batch...). */
  run<T>(op: string, fn: () => T): T {
    return this.#ops.run(op, fn);
  }

  /** Called after a failed outermost write transaction; returns the error to throw. */
  failed(err: unknown): unknown {
    const code = unavailableCode(err);
    if (code === null) return err;
    const op = this.#ops.getStore() ?? 'other';
    const key = `${op}\0${code}`;
    this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
    this.#onError?.(op, code);
    const now = this.#now();
    const message = err instanceof Error ? err.message : String(err);
    const o = this.#outage;
    this.#outage = o === null
      ? { since: now, firstCode: code, lastCode: code, lastMessage: message, failures: 1 }
      : { ...o, lastCode: code, lastMessage: message, failures: o.failures + 1 };
    if (o === null) this.#log?.error({ err, op, code }, 'the store cannot write; reads are still served, writes are refused and retried with backoff');
    else this.#log?.debug({ op, code, failures: this.#outage.failures }, 'store write failed again');
    return asUnavailable(err);
  }

  /** Called after every committed outermost write transaction. */
  succeeded(): void {
    const o = this.#outage;
    if (o === null) return;
    this.#outage = null;
    this.#nextRetryAt = 0;
    this.#retries = 0;
    const now = this.#now();
    this.#log?.warn({ downForMs: now - o.since, failures: o.failures, code: o.firstCode }, 'the store writes again');
    for (const l of this.#recovered) {
      try {
        l(o, now);
      } catch (err) {
        this.#log?.error({ err }, 'store recovery listener failed');
      }
    }
  }

  /** The current outage, or null while writes succeed. */
  get outage(): StoreOutage | null {
    return this.#outage;
  }

  /** False during an outage until its backoff delay has passed: controllers skip their writes until then. */
  retryDue(): boolean {
    return this.#outage === null || this.#now() >= this.#nextRetryAt;
  }

  /**
   * The controllers retry now (during an outage): the next retry waits longer, up to the
   * cap, with full jitter. Other writers' failures (the batcher, API calls) do not move
   * it: only the controllers' own retries back off.
   */
  retrying(): void {
    if (this.#outage === null) return;
    this.#nextRetryAt = this.#now() + backoffDelay(this.#backoff, Math.min(this.#retries++, 30), this.#random);
  }

  /** Registers `l`, called once per outage, right after the first write that succeeds again. */
  onRecovered(l: (outage: StoreOutage, at: number) => void): void {
    this.#recovered.push(l);
  }
}
