/**
 * Live state: a keyed store per resource, fed by list-then-watch (docs/ui.md, "Live
 * updates"). Each object is its own signal, so an event re-renders the components that
 * read that object, not the page; events are applied in one batch per animation frame.
 */
import { batch, signal, type Signal } from '@preact/signals';
import type { ListMeta } from '@nodekeeper/api';
import { getJson, ApiError } from './api.ts';
import { keyOf, parseWatchLine, type WatchEvent } from './model.ts';

export type Obj = Record<string, unknown>;

/** node-2 before node-10. */
const collator = new Intl.Collator('en', { numeric: true });
const byName = (a: string, b: string) => collator.compare(a, b);

export class KeyedStore<T extends Obj> {
  readonly items = new Map<string, Signal<T>>();
  /** The keys, sorted; replaced only when one comes or goes. */
  readonly keys: Signal<readonly string[]> = signal([]);
  /** Moves on every applied batch: for views that read every item (counts, distributions). */
  readonly version = signal(0);
  /** From the list answer, if any (metadata.resourceVersion, or a top-level `status`). */
  readonly listExtra: Signal<Obj> = signal({});
  #pending: WatchEvent[] = [];
  #frame: number | null = null;

  /** Replaces everything (a fresh list). */
  reset(items: readonly T[], extra: Obj): void {
    batch(() => {
      const seen = new Set<string>();
      for (const o of items) {
        const k = keyOf(o);
        if (k === null) continue;
        seen.add(k);
        this.#put(k, o);
      }
      for (const k of [...this.items.keys()]) if (!seen.has(k)) this.items.delete(k);
      this.keys.value = [...seen].sort(byName);
      this.listExtra.value = extra;
      this.version.value += 1;
    });
  }

  /** Queues a watch event; all queued ones apply together at the next frame. */
  push(e: WatchEvent): void {
    this.#pending.push(e);
    this.#frame ??= requestAnimationFrame(() => this.flush());
  }

  flush(): void {
    this.#frame = null;
    const events = this.#pending;
    this.#pending = [];
    if (events.length === 0) return;
    batch(() => {
      let keysChanged = false;
      for (const e of events) {
        if (e.type !== 'ADDED' && e.type !== 'MODIFIED' && e.type !== 'DELETED') continue;
        const k = keyOf(e.object);
        if (k === null) continue;
        if (e.type === 'DELETED') keysChanged = this.items.delete(k) || keysChanged;
        else keysChanged = this.#put(k, e.object as T) || keysChanged;
      }
      if (keysChanged) this.keys.value = [...this.items.keys()].sort(byName);
      this.version.value += 1;
    });
  }

  /** Sets one object; true when the key is new. */
  #put(k: string, o: T): boolean {
    const s = this.items.get(k);
    if (s !== undefined) {
      s.value = o;
      return false;
    }
    this.items.set(k, signal(o));
    return true;
  }

  values(): T[] {
    return [...this.items.values()].map((s) => s.value);
  }
}

export type LinkState = 'connecting' | 'live' | 'retrying' | 'unavailable';

/**
 * Keeps `store` equal to the server's `path`: lists it, then watches from the list's
 * resourceVersion; on a 410 (too old) lists again; on a broken stream waits (with
 * jitter) and watches again from the last version seen. Stops when `signal` aborts.
 */
export async function listWatch<T extends Obj>(path: string, store: KeyedStore<T>, link: Signal<LinkState>, onAuthLost: () => void, abort: AbortSignal): Promise<void> {
  let rv: string | null = null;
  let failures = 0;
  while (!abort.aborted) {
    try {
      if (rv === null) {
        const list = await getJson<{ items?: T[]; metadata?: ListMeta } & Obj>(path, abort);
        const { items, metadata, ...extra } = list;
        store.reset(items ?? [], extra);
        rv = metadata?.resourceVersion ?? '';
      }
      const q = new URLSearchParams({ watch: '1', allowWatchBookmarks: 'true' });
      if (rv !== '') q.set('resourceVersion', rv);
      const res = await fetch(`${path}?${q}`, { credentials: 'same-origin', cache: 'no-store', signal: abort });
      if (res.status === 410) {
        rv = null;
        continue;
      }
      if (!res.ok || res.body === null) throw new ApiError(res.status, `HTTP_${res.status}`, res.statusText);
      link.value = 'live';
      failures = 0;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      let parsed = 0;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line === '') continue;
          const e = parseWatchLine(line);
          if (e === null) continue;
          parsed += 1;
          if (e.type === 'BOOKMARK') rv = e.resourceVersion;
          else if (e.type === 'ERROR') {
            rv = e.code === 410 ? null : rv;
          } else {
            const v = (e.object['metadata'] as { resourceVersion?: unknown } | undefined)?.resourceVersion;
            if (typeof v === 'string') rv = v;
            store.push(e);
          }
        }
      }
      // A server without watch answers the list once, not a stream of events.
      if (parsed === 0) throw new ApiError(501, 'WATCH_UNAVAILABLE', 'this coordinator does not stream watch events');
    } catch (err) {
      if (abort.aborted) return;
      if (err instanceof ApiError && err.status === 401) {
        onAuthLost();
        return;
      }
      failures += 1;
      link.value = err instanceof ApiError && err.status === 501 ? 'unavailable' : 'retrying';
      // Backoff with jitter: a coordinator restart must not be met by every page at once.
      const wait = Math.min(30_000, 500 * 2 ** Math.min(failures, 6)) * (0.5 + Math.random());
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
