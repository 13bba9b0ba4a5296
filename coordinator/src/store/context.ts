/**
 * What every store operation works with: the connection, the coordinator's clock, a
 * logger, a cache of prepared statements and the one way to run a transaction.
 */
import type Database from 'better-sqlite3';
import { AppError, type Logger } from '@nodekeeper/common';
import { StoreErrorCode } from './errors.ts';

/** Told about every outermost write transaction (see store-health.ts). */
export interface WriteObserver {
  /** After a failed one: returns the error to throw in its place. */
  failed(err: unknown): unknown;
  /** After a committed one. */
  succeeded(): void;
}

export interface StoreCounters {
  /** Outermost transactions committed (each one fsync under synchronous=FULL). */
  transactions: number;
}

export interface StoreContext {
  readonly db: Database.Database;
  readonly now: () => number;
  readonly log: Logger | undefined;
  readonly counters: StoreCounters;
  /** A prepared statement, prepared once per SQL text. */
  stmt(sql: string): Database.Statement;
  /**
   * Runs `fn` in an IMMEDIATE transaction (the write lock is taken up front, so two
   * writers never deadlock on upgrade). Nested calls become savepoints of the outer one.
   */
  tx<T>(fn: () => T): T;
}

/** Builds the context for an open connection. */
export function createContext(db: Database.Database, now: () => number, log: Logger | undefined, observer?: WriteObserver): StoreContext {
  const cache = new Map<string, Database.Statement>();
  const counters: StoreCounters = { transactions: 0 };
  return {
    db,
    // Times are INTEGER columns of STRICT tables: a fractional clock must not make a write fail.
    now: () => toMs(now()),
    log,
    counters,
    stmt(sql) {
      let s = cache.get(sql);
      if (s === undefined) {
        s = db.prepare(sql);
        cache.set(sql, s);
      }
      return s;
    },
    tx(fn) {
      if (db.inTransaction) return db.transaction(fn)();
      let result: ReturnType<typeof fn>;
      try {
        result = db.transaction(fn).immediate();
      } catch (err) {
        // better-sqlite3 has rolled back: nothing of it is stored.
        throw observer === undefined ? err : observer.failed(err);
      }
      counters.transactions += 1;
      observer?.succeeded();
      return result;
    },
  };
}

/** Parses a JSON column; a row that does not parse is a store fault, not a crash. */
export function parseJson<T>(text: string, what: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new AppError(StoreErrorCode.rowCorrupt, `stored ${what} is not valid JSON`, { cause: err, context: { what } });
  }
}

/** A time as stored: whole milliseconds (INTEGER columns refuse fractions). */
export function toMs(t: number): number {
  if (!Number.isFinite(t)) throw new TypeError(`a time must be a finite number, got ${t}`);
  return Math.floor(t);
}
