import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AppError } from '@nodekeeper/common';
import type { WatchLine } from './api-client.ts';
import type { RolloutMachineStatus, RolloutObject } from './rollout-objects.ts';
import { progressBar, renderStop } from './rollout-views.ts';
import { watchRollout, type WatchDeps } from './rollout-watch.ts';

const NOW = Date.parse('2026-12-03T12:00:00Z');

/** A rollout of `n` machines, the first `done` Succeeded and the next one Installing. */
function rollout(phase: string, n: number, done: number, reason = '', continueWith: string | null = null): RolloutObject {
  const machines: RolloutMachineStatus[] = Array.from({ length: n }, (_, i) => ({
    name: `node-${i + 1}`, phase: i < done ? 'Succeeded' : i === done && phase !== 'Completed' ? 'Installing' : 'Waiting', package: 'kubelet',
    fromVersion: '1.31.2', toVersion: '1.31.3', step: i === done ? 'download' : null, reason: '', message: '', since: new Date(NOW - 3000).toISOString(),
  }));
  return {
    apiVersion: 'nodekeeper.io/v1alpha1', kind: 'Rollout', metadata: { name: 'web-kubelet' },
    spec: { packages: [{ package: 'kubelet', version: '1.31.3' }], selector: {} } as RolloutObject['spec'],
    status: {
      phase, reason, message: reason === '' ? '' : '1 machine(s) failed', continueWith, batch: { index: 1, total: 2 },
      counts: { total: n, succeeded: done, inProgress: done < n ? 1 : 0, failed: 0, waiting: Math.max(0, n - done - 1), rollingBack: 0, rolledBack: 0, skipped: 0 } as NonNullable<RolloutObject['status']>['counts'],
      machines, startedTime: null, completedTime: null,
    },
  };
}

const line = (type: WatchLine['type'], object: unknown): WatchLine => ({ type, object: object as Record<string, unknown> });
const bookmark = (rv: string) => line('BOOKMARK', { kind: 'Bookmark', metadata: { resourceVersion: rv } });

/** Scripted watches: each call plays the next script (lines, then how it ends). */
function scripted(opts: { lists: RolloutObject[][]; watches: Array<{ lines: WatchLine[]; end?: AppError }>; tty?: boolean; rows?: number; noVersion?: boolean; fetch?: () => Promise<RolloutObject> }) {
  const out: string[] = [];
  const warnings: string[] = [];
  const froms: string[] = [];
  let lists = 0;
  let watches = 0;
  const d: WatchDeps = {
    fetch: opts.fetch ?? (async () => opts.lists[0]![0]!),
    list: async () => {
      const items = opts.lists[Math.min(lists, opts.lists.length - 1)] ?? [];
      lists += 1;
      return { items, ...(opts.noVersion === true ? {} : { metadata: { resourceVersion: String(lists * 10) } }) };
    },
    watch: async (rv, onEvent) => {
      froms.push(rv);
      const script = opts.watches[watches++];
      if (script === undefined) throw new Error('no more watches scripted');
      for (const l of script.lines) onEvent(l);
      if (script.end !== undefined) throw script.end;
    },
    sleep: async () => {},
    write: (t) => void out.push(t),
    warn: (t) => void warnings.push(t),
    tty: opts.tty ?? false,
    size: () => ({ rows: opts.rows ?? 24, columns: 100 }),
    now: () => NOW,
    intervalMs: 1000,
    random: () => 0.5,
    redrawMs: 0,
  };
  return { d, out, warnings, froms, lists: () => lists };
}

describe('watchRollout (server-side watch)', () => {
  it('appends a line per change off a terminal and stops at Completed', async () => {
    const s = scripted({
      lists: [[rollout('Canary', 4, 0)]],
      watches: [{ lines: [line('MODIFIED', rollout('Progressing', 4, 1)), bookmark('11'), line('MODIFIED', rollout('Progressing', 4, 1)), line('MODIFIED', rollout('Completed', 4, 4))] }],
    });
    const last = await watchRollout(s.d);
    assert.equal(last.status?.phase, 'Completed');
    const text = s.out.join('');
    assert.doesNotMatch(text, /\x1b\[/, 'no cursor movement in a log');
    assert.deepEqual([...text.matchAll(/^rollout\/web-kubelet: (\w+)/gm)].map((m) => m[1]), ['Canary', 'Progressing', 'Completed'], 'a change seen twice is told once');
    assert.match(text, /^ {2}node-2 kubelet: Waiting -> Installing \(step download\)$/m);
    assert.deepEqual(s.froms, ['10']);
  });

  it('reconnects from the last bookmark after a dropped connection, and lists again after 410', async () => {
    const s = scripted({
      lists: [[rollout('Canary', 4, 0)], [rollout('Progressing', 4, 3)]],
      watches: [
        { lines: [line('MODIFIED', rollout('Progressing', 4, 1)), bookmark('17')], end: new AppError('NK_CLI_CONNECTION_REFUSED', 'cannot connect') },
        { lines: [line('ERROR', { kind: 'Status', code: 410, reason: 'Expired' })] },
        { lines: [], end: new AppError('NK_WATCH_EXPIRED', 'too old') },
        { lines: [line('MODIFIED', rollout('Completed', 4, 4))] },
      ],
    });
    assert.equal((await watchRollout(s.d)).status?.phase, 'Completed');
    assert.deepEqual(s.froms, ['10', '17', '20', '30'], 'resumed at the bookmark, then at each new list');
    assert.equal(s.warnings.length, 1);
    assert.match(s.warnings[0] ?? '', /^warning: cannot connect \(NK_CLI_CONNECTION_REFUSED\); reconnecting in/);
    const phases = [...s.out.join('').matchAll(/^rollout\/web-kubelet: (\w+)/gm)].map((m) => m[1]);
    assert.deepEqual(phases, ['Canary', 'Progressing', 'Progressing', 'Completed'], 'the relisted state is shown once');
  });

  it('stops at Paused with the reason and the command that continues it; other errors end it', async () => {
    const paused = rollout('Paused', 4, 0, 'CanaryFailed', 'nkctl rollout rollback web-kubelet');
    const s = scripted({ lists: [[rollout('Canary', 4, 0)]], watches: [{ lines: [line('MODIFIED', paused)] }] });
    const last = await watchRollout(s.d);
    assert.equal(renderStop(last), 'Rollout web-kubelet Paused: CanaryFailed: 1 machine(s) failed\nTo continue: nkctl rollout rollback web-kubelet\n');
    const gone = scripted({ lists: [[rollout('Canary', 4, 0)]], watches: [{ lines: [line('DELETED', rollout('Canary', 4, 0))] }] });
    await assert.rejects(watchRollout(gone.d), { code: 'NK_ROLLOUT_NOT_FOUND' });
    const refused = scripted({ lists: [[rollout('Canary', 4, 0)]], watches: [{ lines: [], end: new AppError('NK_AUTH_CREDENTIAL_INVALID', 'no') }] });
    await assert.rejects(watchRollout(refused.d), { code: 'NK_AUTH_CREDENTIAL_INVALID' });
  });

  it('stops at once when the rollout stopped between the first GET and the list', async () => {
    const s = scripted({ lists: [[rollout('Paused', 4, 0, 'CanaryFailed')]], watches: [], fetch: async () => rollout('Canary', 4, 0) });
    assert.equal((await watchRollout(s.d)).status?.phase, 'Paused');
    assert.deepEqual(s.froms, [], 'no watch was needed');
  });

  it('redraws in place on a terminal, each frame erasing exactly the previous one and fitting it', async () => {
    const s = scripted({
      tty: true, rows: 12,
      lists: [[rollout('Canary', 3000, 0)]],
      watches: [{ lines: [100, 1000, 2999].map((done) => line('MODIFIED', rollout('Progressing', 3000, done))).concat(line('MODIFIED', rollout('Completed', 3000, 3000))) }],
    });
    await watchRollout(s.d);
    assert.equal(s.out.length, 5);
    for (let i = 0; i < s.out.length; i++) {
      const frame = (s.out[i] ?? '').replace(/^\x1b\[\d+A\r\x1b\[J/, '');
      assert.ok(frame.split('\n').length - 1 <= 11, `frame ${i} fits 12 rows with one to spare`);
      if (i === 0) continue;
      const prevLines = (s.out[i - 1] ?? '').replace(/^\x1b\[\d+A\r\x1b\[J/, '').split('\n').length - 1;
      assert.ok((s.out[i] ?? '').startsWith(`\x1b[${prevLines}A\r\x1b[J`), `frame ${i} erases ${prevLines} lines`);
    }
    assert.match(s.out[1] ?? '', /and 2,999 machines done\/waiting \(100 done, 2,899 waiting\)/);
    assert.match(s.out.at(-1) ?? '', /rollout\/web-kubelet: Completed, batch 1\/2 {2}kubelet=1\.31\.3\nUpdated: {3}\[#{20}\] 3000\/3000 succeeded/);
  });
});

describe('watchRollout (a coordinator without server-side watch)', () => {
  it('polls every interval, waits for a coordinator that went away, and gives up on other errors', async () => {
    const states = [rollout('Canary', 2, 0), rollout('Progressing', 2, 1), rollout('Completed', 2, 2)];
    let calls = 0;
    const s = scripted({
      lists: [[states[0]!]], watches: [], noVersion: true,
      fetch: async () => {
        calls += 1;
        if (calls === 2) throw new AppError('NK_CLI_CONNECTION_REFUSED', 'cannot connect');
        return states[Math.min(states.length - 1, calls - (calls > 2 ? 2 : 1))]!;
      },
    });
    assert.equal((await watchRollout(s.d)).status?.phase, 'Completed');
    assert.equal(s.froms.length, 0, 'never watched');
    assert.equal(s.warnings.length, 1);
    assert.match(s.warnings[0] ?? '', /^warning: cannot connect \(NK_CLI_CONNECTION_REFUSED\); retrying in 0\.5s \(1\/10\)/);
    let down = 0;
    const gone = scripted({ lists: [[states[0]!]], watches: [], noVersion: true, fetch: async () => {
      if (down++ === 0) return states[0]!;
      throw new AppError('NK_CLI_UNREACHABLE', 'gone');
    } });
    await assert.rejects(watchRollout(gone.d), /gone/);
    assert.equal(gone.warnings.length, 10, 'a bounded number of retries');
  });
});

describe('progressBar', () => {
  it('is always the same width and never overfills', () => {
    fc.assert(fc.property(fc.integer({ min: -5, max: 200 }), fc.integer({ min: 0, max: 150 }), fc.integer({ min: 1, max: 60 }), (done, total, width) => {
      const bar = progressBar(done, total, width);
      assert.equal(bar.length, width + 2);
      const filled = bar.split('#').length - 1;
      assert.ok(filled <= width);
      if (total > 0 && done >= total) assert.equal(filled, width);
      if (done <= 0) assert.equal(filled, 0);
    }));
    assert.throws(() => progressBar(1, 2, 0), RangeError);
  });
});
