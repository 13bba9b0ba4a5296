import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CommandStore } from './command-store.ts';

const result = (id: string) => ({ commandId: id, kind: 'probe.now', finishedAt: new Date().toISOString(), frame: { type: 'command.result' as const, commandId: id, ok: true } });

test('prune deletes results older than the retention and keeps the recent ones', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'nk-cmd-store-'));
  try {
    const store = new CommandStore(dir);
    assert.equal(await store.prune(1000), 0, 'no dir yet: nothing to do');
    for (const id of ['old-1', 'old-2', 'new-1']) await store.put(result(id));
    const DAY = 86_400_000;
    const now = Date.now();
    for (const id of ['old-1', 'old-2']) {
      const t = new Date(now - 20 * DAY);
      await utimes(path.join(store.dir, `${id}.json`), t, t);
    }
    assert.equal(await store.prune(14 * DAY, now), 2);
    assert.deepEqual(await store.ids(), ['new-1']);
    assert.equal(await store.get('old-1'), null);
    assert.notEqual(await store.get('new-1'), null);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
