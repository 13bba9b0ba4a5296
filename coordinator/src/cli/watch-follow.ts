/**
 * List, then follow a list with the server-side watch (docs/nkctl.md, "Watch"), as
 * kubectl's reflector does: watch from the list's resourceVersion; on a dropped
 * connection reconnect from the last bookmark's version (jittered backoff); on 410
 * Expired list again and tell the caller only what differs from what it was told. A
 * change seen twice (a resume re-sends a batch) is told once.
 */
import { AppError, backoffDelay } from '@nodekeeper/common';
import { CliErrorCode } from './cli-errors.ts';
import type { WatchLine } from './api-client.ts';

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface ListResult<T> {
  readonly items: readonly T[];
  readonly metadata?: { readonly resourceVersion?: string };
}

export interface FollowDeps<T> {
  /** The list, with its resourceVersion. */
  readonly list: () => Promise<ListResult<T>>;
  /** The first list when the caller has it already (it is not asked for again). */
  readonly initial?: ListResult<T>;
  /** The watch from a version: resolves when the server ends it, rejects on an error. */
  readonly watch: (resourceVersion: string, onEvent: (e: WatchLine) => void) => Promise<void>;
  readonly nameOf: (o: T) => string;
  /** The first list, whole; return true to stop following (what was awaited is there already). */
  readonly onList: (items: readonly T[]) => boolean | void;
  /** Every change after it; return true to stop following. */
  readonly onChange: (type: ChangeType, object: T) => boolean;
  readonly sleep: (ms: number) => Promise<void>;
  readonly warn: (text: string) => void;
  readonly random?: () => number;
}

/** Consecutive failed reconnects tolerated while the coordinator is unreachable. */
const MAX_RETRIES = 10;
const RETRYABLE: ReadonlySet<string> = new Set([CliErrorCode.connectionRefused, CliErrorCode.unreachable, CliErrorCode.timeout, 'NK_STORE_UNAVAILABLE']);

/** Thrown inside the watch callback to leave it: the caller asked to stop. */
class Stop extends Error {}
class Expired extends Error {}

/** Follows until `onChange` returns true. */
export async function follow<T>(deps: FollowDeps<T>): Promise<void> {
  const known = new Map<string, string>();
  let failures = 0;
  const tell = (type: ChangeType, o: T): void => {
    const name = deps.nameOf(o);
    const text = JSON.stringify(o);
    if (type === 'DELETED') {
      if (!known.delete(name)) return;
    } else {
      if (known.get(name) === text) return;
      type = known.has(name) ? 'MODIFIED' : 'ADDED';
      known.set(name, text);
    }
    if (deps.onChange(type, o)) throw new Stop();
  };
  const relist = async (first: boolean): Promise<string> => {
    const l = first && deps.initial !== undefined ? deps.initial : await deps.list();
    if (first) {
      for (const o of l.items) known.set(deps.nameOf(o), JSON.stringify(o));
      if (deps.onList(l.items) === true) throw new Stop();
    } else {
      const now = new Set(l.items.map(deps.nameOf));
      for (const o of l.items) tell('MODIFIED', o);
      for (const name of [...known.keys()]) if (!now.has(name)) tell('DELETED', JSON.parse(known.get(name) ?? 'null') as T);
    }
    const rv = l.metadata?.resourceVersion;
    if (rv === undefined) throw new AppError(CliErrorCode.badResponse, 'the list has no metadata.resourceVersion: this coordinator cannot be watched (too old?)');
    return rv;
  };
  let rv: string | null = null;
  let listed = false;
  for (;;) {
    try {
      if (rv === null) {
        rv = await relist(!listed);
        listed = true;
      }
      const from: string = rv;
      await deps.watch(from, (e) => {
        if (e.type === 'BOOKMARK') rv = String((e.object['metadata'] as { resourceVersion?: unknown } | undefined)?.resourceVersion ?? rv);
        else if (e.type === 'ERROR') throw new Expired();
        else tell(e.type, e.object as T);
      });
      failures = 0; // the server ended it (shutdown, timeout): reconnect from where we are
    } catch (err) {
      if (err instanceof Stop) return;
      if (err instanceof Expired || (err instanceof AppError && err.code === 'NK_WATCH_EXPIRED')) {
        rv = null; // list again
        continue;
      }
      if (!(err instanceof AppError) || !RETRYABLE.has(err.code) || failures >= MAX_RETRIES) throw err;
      const delay = backoffDelay({ baseMs: 500, capMs: 10_000 }, failures, deps.random);
      failures += 1;
      deps.warn(`warning: ${err.message} (${err.code}); reconnecting in ${(delay / 1000).toFixed(1)}s (${failures}/${MAX_RETRIES})\n`);
      await deps.sleep(delay);
    }
  }
}
