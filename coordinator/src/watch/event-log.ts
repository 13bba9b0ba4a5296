/**
 * Watching the event log (`GET /v1/events?watch=1`). The log is append-only with its
 * own ids, kept in SQLite for the retention period: it needs no ring. Its
 * resourceVersion is the event id (the list answers with the newest id). Every watcher
 * has a cursor, and each tick sends it the events after its cursor straight from the
 * store, as many as its socket takes (under maxBufferBytes unsent): a replay, a burst
 * and the live stream are the same loop, and a reader that does not read costs a
 * socket, never memory. Only an N that retention has pruned past (or one above every id
 * handed out) is 410 Expired. Events reach the store through the write batcher, so a
 * watcher sees them when they are flushed.
 */
import { toEventObject } from '../api/objects.ts';
import type { Store } from '../store/db.ts';
import { bookmarkLine, expiredLine, watchError, type WatchHub, type Watcher, type WatchSink } from './hub.ts';

/** Events read per store query. */
const PAGE = 200;

const eventLine = (e: Parameters<typeof toEventObject>[0]) => `{"type":"ADDED","object":${JSON.stringify(toEventObject(e))}}\n`;

export class EventLogWatch {
  readonly #store: Store;
  readonly #hub: WatchHub;

  constructor(store: Store, hub: WatchHub) {
    this.#store = store;
    this.#hub = hub;
    hub.addTicker(() => this.tick());
  }

  /** 410 NK_WATCH_EXPIRED when the events after `from` are no longer all kept, or `from` was never handed out. */
  checkResume(from: number): void {
    const { oldest, newest } = this.#store.eventIdBounds();
    if (from > newest || (oldest > 0 && from < oldest - 1)) {
      throw watchError('NK_WATCH_EXPIRED', `event resourceVersion ${from} is no longer kept or unknown (events ${oldest}..${newest} are): list again and watch from the list's resourceVersion`);
    }
  }

  /** Serves a watch: the newest `initial` events when `from` is null, else those after it; then live. */
  async watch(from: number | null, initial: number, sink: WatchSink): Promise<void> {
    const w: Watcher = { kind: 'events', filter: { selector: [], name: null }, sink, cursor: from ?? 0, live: true, stalledSince: null };
    this.#hub.register(w);
    if (from === null) {
      const recent = this.#store.listEvents({ limit: initial });
      for (const e of recent) sink.write(eventLine(e));
      w.cursor = recent.at(-1)?.id ?? this.#store.eventIdBounds().newest;
    }
    this.#deliver(w, this.#store.eventIdBounds());
    sink.write(bookmarkLine(w.cursor));
  }

  /** New events since each watcher's cursor, to every event watcher. */
  tick(): void {
    const watchers = [...this.#hub.watchers()].filter((w) => w.kind === 'events');
    if (watchers.length === 0) return;
    const bounds = this.#store.eventIdBounds();
    for (const w of watchers) this.#deliver(w, bounds);
  }

  #deliver(w: Watcher, bounds: { oldest: number; newest: number }): void {
    let wrote = false;
    while (w.cursor < bounds.newest && this.#hub.mayWrite(w)) {
      if (bounds.oldest > 0 && w.cursor < bounds.oldest - 1) {
        // Retention pruned events this watcher had not been sent yet.
        w.sink.write(expiredLine(`events after ${w.cursor} were pruned before this watch was sent them: list again`));
        w.sink.end();
        return;
      }
      const page = this.#store.listEvents({ afterId: w.cursor, limit: PAGE });
      for (const e of page) if (e.id <= bounds.newest) w.sink.write(eventLine(e));
      w.cursor = Math.min(bounds.newest, page.at(-1)?.id ?? bounds.newest);
      wrote = true;
    }
    if (wrote && !w.sink.closed) w.sink.write(bookmarkLine(w.cursor));
  }
}
