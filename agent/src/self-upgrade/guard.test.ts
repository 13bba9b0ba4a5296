/**
 * The shipped guard (agent/systemd/nodekeeper-agent-guard), run with /bin/sh on a package
 * dir laid out as the agent leaves it. `systemctl` is a stand-in on PATH that records its
 * arguments: the guard must never reach the host's own systemd from a test.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatPending } from './record.ts';

const GUARD = fileURLToPath(new URL('../../systemd/nodekeeper-agent-guard', import.meta.url));

describe('nodekeeper-agent-guard', () => {
  let dir: string;
  let bin: string;
  let n = 0;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-guard-'));
    bin = path.join(dir, 'bin');
    await mkdir(bin);
    await writeFile(path.join(bin, 'systemctl'), `#!/bin/sh\necho "$*" >> "${dir}/systemctl.log"\n`);
    await chmod(path.join(bin, 'systemctl'), 0o755);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** A package dir switched from 1.0.0 to 2.0.0 with a pending record. */
  async function pkg(record: { deadline?: number; to?: string; current?: string } = {}): Promise<string> {
    const p = path.join(dir, `pkg${++n}`);
    for (const v of ['1.0.0', '2.0.0']) await mkdir(path.join(p, 'versions', v), { recursive: true });
    await symlink(`versions/${record.current ?? '2.0.0'}`, path.join(p, 'current'));
    const text = formatPending({ commandId: 'ro-1', from: '1.0.0', to: '2.0.0', deadline: record.deadline ?? Math.floor(Date.now() / 1000) + 3600, maxBoots: 3 });
    await writeFile(path.join(p, 'upgrade.pending'), record.to === undefined ? text : text.replace('to=2.0.0', `to=${record.to}`));
    return p;
  }
  const guard = (mode: string, p: string) => {
    const r = spawnSync('/bin/sh', [GUARD, mode, p], { env: { PATH: `${bin}:/usr/bin:/bin` }, encoding: 'utf8' });
    assert.equal(r.status, 0, `the guard always exits 0: ${r.stderr}`);
    return r.stderr;
  };
  const current = async (p: string) => path.basename(await readlink(path.join(p, 'current')));
  const calls = async () => (await readFile(path.join(dir, 'systemctl.log'), 'utf8').catch(() => '')).trim().split('\n');

  it('counts starts of the new version and switches back after more than maxBoots', async () => {
    const p = await pkg();
    for (let i = 0; i < 3; i++) guard('start', p);
    assert.equal(await current(p), '2.0.0', 'three starts are allowed');
    const err = guard('start', p);
    assert.equal(await current(p), '1.0.0');
    assert.match(err, /switched back from 2.0.0 to 1.0.0: crash loop/);
    assert.match(await readFile(path.join(p, 'upgrade.reverted'), 'utf8'), /^reason=crash loop: 3 starts of 2.0.0 without a confirm\n/);
    assert.ok((await calls()).includes('start --no-block nodekeeper-agent-rollback.timer'), 'the start guard arms the timer');
    guard('start', p);
    assert.equal(await current(p), '1.0.0', 'once back, it stays back (the old agent settles the record)');
  });

  it('past the deadline, the timer run switches back and restarts the agent', async () => {
    const p = await pkg({ deadline: Math.floor(Date.now() / 1000) - 1 });
    guard('deadline', p);
    assert.equal(await current(p), '1.0.0');
    assert.match(await readFile(path.join(p, 'upgrade.reverted'), 'utf8'), /deadline passed/);
    assert.equal((await calls()).at(-1), 'restart --no-block nodekeeper-agent.service');
  });

  it('before the deadline the timer run changes nothing; with nothing pending it stops the timer', async () => {
    const p = await pkg();
    guard('deadline', p);
    assert.equal(await current(p), '2.0.0');
    await rm(path.join(p, 'upgrade.pending'));
    guard('deadline', p);
    assert.equal((await calls()).at(-1), 'stop --no-block nodekeeper-agent-rollback.timer');
    guard('start', p);
    await assert.rejects(stat(path.join(p, 'upgrade.boots')), 'nothing pending: no count');
  });

  it('does nothing before the switch, or for a record it cannot trust', async () => {
    const before = await pkg({ current: '1.0.0', deadline: 1 });
    guard('deadline', before);
    assert.equal(await current(before), '1.0.0');
    await assert.rejects(stat(path.join(before, 'upgrade.reverted')));
    const hostile = await pkg({ to: '2.0.0;reboot', deadline: 1 });
    assert.match(guard('start', hostile), /unreadable record/);
    assert.equal(await current(hostile), '2.0.0');
  });
});
