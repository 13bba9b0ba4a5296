/**
 * The event feed over a real SQLite store: a new sink starts after the newest event, a
 * failed batch is handed over again (nothing skipped), the cursor survives a reopen,
 * events written inside a longer transaction are seen once it commits (a rolled-back
 * one never), and a backlog larger than a batch is delivered in order.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@nodekeeper/common';
import { openStore, type Store } from '../store/db.ts';
import type { EventRecord } from '../model/records.ts';
import { EventFeed, type EventSink } from './event-feed.ts';

const dir = mkdtempSync(join(tmpdir(), 'nk-event-feed-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const log = createLogger({ name: 'test', level: 'silent' });
const opts = { pollMs: 20, batch: 5, backoff: { baseMs: 20, capMs: 40 } };
let files = 0;

const until = async (what: string, check: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

/** A sink that records what it got, and fails while `failing` is set. */
class Recorder implements EventSink {
  readonly name = 'test-sink';
  readonly seen: number[] = [];
  readonly batches: number[][] = [];
  failing = 0;
  async deliver(batch: readonly EventRecord[]): Promise<void> {
    this.batches.push(batch.map((e) => e.id));
    if (this.failing > 0) {
      this.failing -= 1;
      throw new Error('receiver down');
    }
    this.seen.push(...batch.map((e) => e.id));
  }
}

const rec = (store: Store, n: number, reason = 'X') => Array.from({ length: n }, (_, i) => store.recordEvent({ object: 'machine/m', type: 'Normal', reason, message: `${i}` }).id);

test('a new sink starts after the newest event; later ones are delivered in order, failures handed over again', async () => {
  const file = join(dir, `s${files++}.db`);
  const store = openStore(file, { log });
  rec(store, 3, 'Old');
  const sink = new Recorder();
  const feed = new EventFeed(sink, { store, log }, opts);
  feed.start();
  const ids = rec(store, 12);
  sink.failing = 2;
  await until('all 12', () => sink.seen.length === 12);
  assert.deepEqual(sink.seen, ids, 'each once, in order, none of the history');
  assert.deepEqual(sink.batches[0], sink.batches[1], 'a failed batch comes again');
  await feed.stop();
  assert.equal(store.sinkCursor('test-sink'), ids.at(-1));

  // Reopened (a restart): resumes at the cursor, with what was recorded meanwhile.
  const more = rec(store, 2);
  store.close();
  const again = openStore(file, { log });
  const sink2 = new Recorder();
  const feed2 = new EventFeed(sink2, { store: again, log }, opts);
  feed2.start();
  await until('the two recorded while stopped', () => sink2.seen.length === 2);
  assert.deepEqual(sink2.seen, more);
  await feed2.stop();
  again.close();
});

test('an event written inside a transaction is seen once it commits, never before', async () => {
  const store = openStore(join(dir, `s${files++}.db`), { log });
  const sink = new Recorder();
  const feed = new EventFeed(sink, { store, log }, opts);
  feed.start();
  let inside = 0;
  await new Promise<void>((resolve) => {
    store.transaction(() => {
      inside = rec(store, 1)[0]!;
      // The feed's poll cannot run inside this synchronous transaction; after it, it sees the row.
    });
    resolve();
  });
  await until('the committed event', () => sink.seen.includes(inside));
  assert.throws(() => store.transaction(() => {
    rec(store, 1, 'RolledBack');
    throw new Error('rolled back');
  }));
  const last = rec(store, 1)[0]!;
  await until('the next one', () => sink.seen.includes(last));
  assert.deepEqual(sink.seen, [inside, last], 'the rolled-back event never reached the sink');
  await feed.stop();
  store.close();
});
