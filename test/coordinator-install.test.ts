/**
 * install-coordinator, run from an extracted release (test/harness/coordinator-install.ts
 * assembles one from the checkout): bad usage fails before touching anything, --dry-run
 * changes nothing, --root stages the exact layout (versions/<v>, current, previous, the
 * unit, the config), and the staged coordinator started as the unit starts it creates
 * its CA and admin credential and answers nkctl at the advertised URL. A second
 * release flips `current` and keeps `previous` for a rollback.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fakeCoordinatorRelease } from './harness/coordinator-install.ts';
import { listeningLine, nkctlOk, spawnLogged, type Proc } from './harness/processes.ts';
import { freePort } from './harness/supervised-node.ts';

const install = (release: string, args: string[]) => {
  const r = spawnSync(path.join(release, 'install-coordinator'), args, { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
};

describe('install-coordinator from an extracted release', { timeout: 120_000 }, () => {
  let dir: string;
  let release: string;
  let proc: Proc | undefined;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-coord-install-'));
    release = await fakeCoordinatorRelease(dir, '0.2.0');
  });

  after(async () => {
    await proc?.stop();
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(dir, { recursive: true, force: true });
  });

  test('bad usage fails with exit 2 before anything is created', () => {
    const root = path.join(dir, 'bad');
    const cases: Array<[string[], RegExp]> = [
      [['--root', root], /--advertise-url is required/],
      [['--root', root, '--advertise-url', 'http://nk.example:7443'], /must be https:\/\/NAME/],
      [['--root', root, '--advertise-url', 'https://nk.example:7443', '--listen', 'nowhere'], /--listen must be HOST:PORT/],
      [['--root', root, '--advertise-url', 'https://nk.example:7443', '--backup-keep', '3'], /need --backup-dir/],
      [['--root', root, '--advertise-url', 'https://nk.example:7443', '--backup-dir', '/var/lib/nodekeeper-coordinator/b'], /outside the data dir/],
      [['--root', root, '--advertise-url', 'https://nk.example:7443', '--frobnicate'], /unknown option/],
    ];
    for (const [args, want] of cases) {
      const r = install(release, args);
      assert.equal(r.code, 2, r.out);
      assert.match(r.out, want);
    }
    assert.equal(existsSync(root), false);
  });

  test('--dry-run prints the plan and changes nothing', () => {
    const root = path.join(dir, 'dry');
    const r = install(release, ['--root', root, '--dry-run', '--advertise-url', 'https://nk.example:7443', '--backup-dir', '/var/backups/nodekeeper']);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /versions\/0\.2\.0/);
    assert.match(r.out, /advertiseUrl: "https:\/\/nk\.example:7443"/);
    assert.match(r.out, /ReadWritePaths=\/var\/backups\/nodekeeper/);
    assert.equal(existsSync(root), false);
  });

  test('--root stages the layout; the staged coordinator starts as the unit starts it, with its CA and admin credential', async () => {
    const root = path.join(dir, 'staged');
    const port = await freePort();
    const advertise = `https://127.0.0.1:${port}`;
    const r = install(release, ['--root', root, '--advertise-url', advertise, '--listen', `127.0.0.1:${port}`, '--backup-dir', '/var/backups/nodekeeper', '--backup-keep', '3']);
    assert.equal(r.code, 0, r.out);
    const opt = path.join(root, 'opt/nodekeeper-coordinator');
    assert.equal(readlinkSync(path.join(opt, 'current')), 'versions/0.2.0');
    assert.equal((await readFile(path.join(opt, 'versions/0.2.0/VERSION'), 'utf8')).trim(), '0.2.0');
    assert.equal(readlinkSync(path.join(root, 'usr/local/bin/nkctl')), '/opt/nodekeeper-coordinator/current/bin/nkctl');
    const unit = await readFile(path.join(root, 'etc/systemd/system/nodekeeper-coordinator.service'), 'utf8');
    const execStart = /^ExecStart=(.*)$/m.exec(unit)?.[1] ?? '';
    assert.equal(execStart, '/opt/nodekeeper-coordinator/current/bin/nodekeeper-coordinator --config /etc/nodekeeper-coordinator/coordinator.yaml --data-dir /var/lib/nodekeeper-coordinator');
    assert.match(await readFile(path.join(root, 'etc/systemd/system/nodekeeper-coordinator.service.d/backup-dir.conf'), 'utf8'), /^ReadWritePaths=\/var\/backups\/nodekeeper$/m);
    assert.equal(statSync(path.join(root, 'var/lib/nodekeeper-coordinator')).mode & 0o777, 0o700);
    assert.equal(statSync(path.join(root, 'etc/nodekeeper-coordinator/coordinator.yaml')).mode & 0o777, 0o640);

    // The unit's command, with the staging root prefixed to its paths.
    const argv = execStart.split(' ').map((a) => (a.startsWith('/') ? path.join(root, a) : a));
    const configText = await readFile(path.join(root, 'etc/nodekeeper-coordinator/coordinator.yaml'), 'utf8');
    assert.match(configText, /backupDir: "\/var\/backups\/nodekeeper"/);
    // The backup dir is the host's path in the config; in the staged run it must be inside the root.
    argv.push('--backup-dir', path.join(root, 'var/backups/nodekeeper'));
    proc = spawnLogged(argv[0]!, argv.slice(1), path.join(dir, 'staged.log'));
    const line = await listeningLine(proc);
    assert.equal(line.listening, advertise);
    const data = path.join(root, 'var/lib/nodekeeper-coordinator');
    for (const f of ['pki/ca.crt', 'pki/ca.key', 'admin.credential', 'nkctl.yaml']) assert.ok(existsSync(path.join(data, f)), `${f} created at first start`);
    assert.equal(new X509Certificate(await readFile(path.join(data, 'pki/server.crt'))).checkIP('127.0.0.1'), '127.0.0.1');
    const out = await nkctlOk(path.join(data, 'nkctl.yaml'), ['token', 'create', '--uses', '1', '--ttl', '10m']);
    assert.match(out, new RegExp(`nodekeeper-agent --server ${advertise.replace(/\./g, '\\.')} --token \\S+ --discovery-ca-hash sha256:[0-9a-f]{64}`));
    await proc.stop();
    proc = undefined;

    // The next release: current flips, previous names the old one, data untouched.
    const next = await fakeCoordinatorRelease(path.join(dir, 'next'), '0.2.1');
    const again = install(next, ['--root', root]);
    assert.equal(again.code, 0, again.out);
    assert.equal(readlinkSync(path.join(opt, 'current')), 'versions/0.2.1');
    assert.equal(readlinkSync(path.join(opt, 'previous')), 'versions/0.2.0');
    assert.deepEqual(readdirSync(path.join(opt, 'versions')).sort(), ['0.2.0', '0.2.1'], 'no staging left');
    assert.equal(await readFile(path.join(root, 'etc/nodekeeper-coordinator/coordinator.yaml'), 'utf8'), configText, 'the config is kept without --advertise-url');
    assert.ok(existsSync(path.join(data, 'admin.credential')));
  });
});
