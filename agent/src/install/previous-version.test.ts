/**
 * The `previous` bookkeeping: the one rule (nextPrevious) by example and as a property
 * over random install/rollback histories, and the link on disk (atomic, refuses a
 * version directory that is not there, removed for "nothing").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { packageLayout, versionDir } from './layout.ts';
import { commitPrevious, nextPrevious, readPrevious, writePrevious } from './previous-version.ts';

test('nextPrevious: an install remembers what it replaced, a repair changes nothing, a rollback remembers where it went', () => {
  assert.equal(nextPrevious(null, { kind: 'install', from: null, to: '1.31.2' }), null);
  assert.equal(nextPrevious(null, { kind: 'install', from: 'adopted-0123456789ab', to: '1.32.0' }), 'adopted-0123456789ab');
  assert.equal(nextPrevious('1.30.0', { kind: 'install', from: '1.31.2', to: '1.32.0' }), '1.31.2');
  assert.equal(nextPrevious('1.30.0', { kind: 'install', from: '1.31.2', to: '1.31.2' }), '1.30.0', 'repairing the active version keeps the way back');
  assert.equal(nextPrevious('1.31.2', { kind: 'rollback', from: '1.32.0', to: '1.31.2' }), '1.31.2');
});

/** A model node: what is active, what `previous` names, every version ever active. */
interface Model {
  current: string | null;
  previous: string | null;
  everActive: Set<string>;
}

type Op = { readonly kind: 'install'; readonly v: string } | { readonly kind: 'rollback' };

/** Applies `op` the way the agent does; returns the rollback's verdict (or null for installs). */
function apply(m: Model, op: Op): 'rolled-back' | 'already-installed' | 'no-previous' | null {
  if (op.kind === 'install') {
    const from = m.current;
    m.previous = nextPrevious(m.previous, { kind: 'install', from, to: op.v });
    m.current = op.v;
    m.everActive.add(op.v);
    return null;
  }
  if (m.previous === null) return 'no-previous';
  const from = m.current;
  const to = m.previous;
  m.previous = nextPrevious(m.previous, { kind: 'rollback', from, to });
  m.current = to;
  return from === to ? 'already-installed' : 'rolled-back';
}

test('property: rollbacks never ping-pong, and only ever return to a version that was active before', () => {
  const op: fc.Arbitrary<Op> = fc.oneof(fc.constantFrom('1.30.0', '1.31.2', '1.32.0', 'adopted-0123456789ab').map((v) => ({ kind: 'install' as const, v })), fc.constant({ kind: 'rollback' as const }));
  fc.assert(
    fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
      const m: Model = { current: null, previous: null, everActive: new Set() };
      let last: Op | null = null;
      for (const o of ops) {
        const before = m.current;
        const seen = new Set(m.everActive);
        const verdict = apply(m, o);
        if (o.kind === 'rollback') {
          if (verdict === 'rolled-back') assert.ok(m.current !== null && seen.has(m.current), 'a rollback goes only to a version active before');
          // The second of two rollbacks in a row never moves: no switching forward again.
          if (last?.kind === 'rollback') assert.equal(m.current, before);
          if (verdict !== 'no-previous') assert.equal(m.previous, m.current, 'after a rollback, previous is the active version');
        } else if (before !== o.v) {
          assert.equal(m.previous, before, 'after an install, previous is what it replaced');
        }
        assert.ok(m.previous === null || seen.has(m.previous) || m.previous === m.current);
        last = o;
      }
    }),
  );
});

test('the previous link on disk: atomic, never dangling at write, removed for nothing', async (t) => {
  const hostRoot = await mkdtemp(path.join(os.tmpdir(), 'nk-previous-'));
  t.after(() => rm(hostRoot, { recursive: true, force: true }));
  const l = packageLayout(hostRoot, '/var/lib/nodekeeper/packages', 'kubelet');
  await mkdir(versionDir(l, '1.31.2'), { recursive: true });
  await mkdir(versionDir(l, '1.32.0'), { recursive: true });
  assert.equal(await readPrevious(l), null);

  await writePrevious(l, '1.31.2');
  assert.equal(await readlink(l.previous), 'versions/1.31.2');
  assert.equal(await readPrevious(l), '1.31.2');
  await assert.rejects(writePrevious(l, '9.9.9'), { code: 'ENOENT' }, 'a version that is not unpacked is never named');
  assert.equal(await readPrevious(l), '1.31.2', 'a refused write leaves the link as it was');
  await assert.rejects(writePrevious(l, '../../etc'), TypeError);

  assert.equal(await commitPrevious(l, { kind: 'install', from: '1.32.0', to: '1.32.0' }), '1.31.2', 'a repair keeps it');
  assert.equal(await commitPrevious(l, { kind: 'rollback', from: '1.31.2', to: '1.32.0' }), '1.32.0');
  assert.equal(await readPrevious(l), '1.32.0');
  assert.equal(await commitPrevious(l, { kind: 'install', from: null, to: '1.31.2' }), null);
  assert.equal(await readPrevious(l), null, 'an install over nothing leaves nothing to return to');
  assert.deepEqual((await readdir(l.pkgDir)).sort(), ['versions'], 'no temp links are left behind');
});
