/**
 * A non-blocking logger never waits for its reader: against a FIFO nobody reads (a full
 * pipe, as journald or a busy parent can leave one), a synchronous logger would sleep in
 * 100 ms steps for ever; this one goes on, keeps at most its buffer, and counts the rest.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger, droppedLogLines } from './logger.ts';

test('a logger with maxBufferedBytes goes on when its reader stops reading, and counts what it dropped', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'nk-log-'));
  const fifo = path.join(dir, 'log');
  execFileSync('mkfifo', [fifo]);
  // A reader that never reads: the pipe fills (64 KiB) and stays full.
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const before = droppedLogLines();
    const log = createLogger({ name: 'test', destination: fifo, maxBufferedBytes: 256 * 1024 });
    const line = 'x'.repeat(1000);
    let ticks = 0;
    const timer = setInterval(() => (ticks += 1), 1);
    for (let i = 0; i < 5000; i += 1) {
      log.info({ i }, line); // about 5 MB: far over the pipe and the buffer
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 50));
    clearInterval(timer);
    assert.ok(ticks > 0, 'timers ran while the log was stuck');
    assert.ok(droppedLogLines() - before > 4000, `dropped ${droppedLogLines() - before} of 5000 lines`);
  } finally {
    closeSync(reader);
    rmSync(dir, { recursive: true, force: true });
  }
});
