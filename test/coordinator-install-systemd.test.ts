/**
 * install-coordinator for real, from the REAL coordinator tarball (scripts/release),
 * under a real systemd booted as PID 1 in its own namespaces (test/harness/systemd.ts).
 * Inside the node only the tarball and SHA256SUMS are put (and the tarball unpacked
 * beside them); the checkout and the release cache are hidden under empty mounts, and
 * the installer runs in an empty environment. It checks the sum, makes the `nodekeeper`
 * user, installs and starts the shipped unit, whose first start creates the CA and the admin credential;
 * nkctl (linked into /usr/local/bin) then talks to it at the advertised URL, an online
 * backup works under the unit's hardening (ProtectSystem=strict, its own user), and the
 * documented restore (stop, move aside, restore as root, start) brings it back.
 * An upgrade with the installed install-coordinator --from the next version (the same
 * tarball with only VERSION changed) restarts the unit on it, keeping data, config and CA.
 * `systemd-analyze security` scores the unit (reported in docs/operations.md).
 * Then the gateway in worker processes under the same unit and hardening: forked workers
 * sharing the port, the writer's unix socket in the unit's private /tmp.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO, waitFor } from './harness/processes.ts';
import { coordinatorRelease, repackCoordinator, runCommand, showResult, type CoordinatorRelease } from './harness/release.ts';
import { freePort } from './harness/supervised-node.ts';
import { BootedSystemd, systemdUnavailable } from './harness/systemd.ts';

const UNIT = 'nodekeeper-coordinator.service';
const DATA = '/var/lib/nodekeeper-coordinator';
const unavailable = await systemdUnavailable();

describe('install-coordinator under a real systemd', { timeout: 300_000, skip: unavailable ?? false }, () => {
  let dir: string;
  let sd: BootedSystemd | undefined;
  let port: number;
  let rel: CoordinatorRelease;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-coord-sd-'));
    port = await freePort();
    rel = await coordinatorRelease();
    sd = await BootedSystemd.boot({
      prepare: async (upper) => {
        // What an operator copies to the host: the tarball and its sums, unpacked beside them.
        const kit = path.join(upper, 'opt/nk-test');
        await mkdir(path.join(kit, 'x'), { recursive: true });
        await copyFile(rel.tarball, path.join(kit, path.basename(rel.tarball)));
        await copyFile(rel.sums, path.join(kit, 'SHA256SUMS'));
        const untar = await runCommand('tar', ['-xzf', rel.tarball, '-C', path.join(kit, 'x')]);
        assert.equal(untar.code, 0, showResult(untar));
        // The next release for the upgrade: the same tarball with only VERSION changed.
        await repackCoordinator('0.99.0', path.join(kit, 'next'));
      },
    });
    // No checkout, no release cache, no build Node inside the node: empty mounts over them
    // (the node's root is an overlay over the host's /, which has them).
    // Only dirs the node sees (one under /tmp is absent there: the node has its own /tmp),
    // and never a system dir (a test Node in /usr would be found as /usr/bin/node).
    for (const hide of new Set([REPO, path.dirname(path.dirname(rel.tarball)), path.dirname(path.dirname(process.execPath))])) {
      if (['/', '/usr', '/usr/local', '/opt', '/var', '/etc', '/root', '/tmp'].includes(hide)) continue;
      if ((await sd.exec(['test', '-d', hide])).code !== 0) continue;
      const m = await sd.exec(['mount', '-t', 'tmpfs', '-o', 'size=1m,mode=0555', 'nk-hidden', hide]);
      assert.equal(m.code, 0, `hiding ${hide}: ${m.stderr}`);
    }
  });

  after(async () => {
    await sd?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  test('it installs, starts as its own user, creates the CA and admin credential, and serves nkctl and backups', async () => {
    const advertise = `https://127.0.0.1:${port}`;
    assert.deepEqual((await sd!.exec(['ls', '-A', REPO])).stdout, '', 'the checkout is hidden inside the node');
    const r = await sd!.exec(['env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', '/opt/nk-test/x/install-coordinator', '--sha256sums', '/opt/nk-test/SHA256SUMS', '--advertise-url', advertise, '--listen', `127.0.0.1:${port}`], { timeoutMs: 180_000 });
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}\n${await sd!.journal(UNIT)}`);
    assert.match(r.stderr, /matches SHA256SUMS/);
    assert.equal((await sd!.exec(['readlink', '/opt/nodekeeper-coordinator/current'])).stdout.trim(), `versions/${rel.version}`);
    assert.match(r.stdout, new RegExp(`admin credential: +${DATA}/admin\\.credential`));
    assert.match(r.stdout, new RegExp(`nkctl config: +${DATA}/nkctl\\.yaml`));
    const props = await sd!.show(UNIT, 'ActiveState', 'User', 'FragmentPath', 'NRestarts');
    assert.deepEqual(props, { ActiveState: 'active', User: 'nodekeeper', FragmentPath: `/etc/systemd/system/${UNIT}`, NRestarts: '0' }, await sd!.journal(UNIT));
    const owners = await sd!.exec(['stat', '-c', '%U %a %n', DATA, `${DATA}/admin.credential`, `${DATA}/pki/ca.key`, `${DATA}/state.db`]);
    assert.deepEqual(owners.stdout.trim().split('\n').map((l) => l.split(' ').slice(0, 2).join(' ')), ['nodekeeper 700', 'nodekeeper 600', 'nodekeeper 600', 'nodekeeper 600'], owners.stdout);

    const nk = (...args: string[]) => sd!.exec(['env', '-i', 'PATH=/usr/bin:/bin', '/usr/local/bin/nkctl', '--config', `${DATA}/nkctl.yaml`, ...args], { timeoutMs: 60_000 });
    const version = await nk('version');
    assert.equal(version.stdout, `nkctl ${rel.version} (API nodekeeper.io/v1alpha1)\n`, version.stderr);
    const token = await nk('token', 'create', '--ttl', '10m');
    assert.equal(token.code, 0, token.stderr);
    assert.match(token.stdout, new RegExp(`nodekeeper-agent --server ${advertise.replace(/\./g, '\\.')} --token \\S+ --discovery-ca-hash sha256:[0-9a-f]{64}`));

    // An online backup under the hardened unit, restorable.
    const backup = await nk('backup', 'create', '-o', '/root/coord.tar.gz');
    assert.equal(backup.code, 0, `${backup.stderr}\n${await sd!.journal(UNIT)}`);
    assert.match(backup.stdout, /integrity ok/);

    // The documented restore (docs/operations.md): stop, move the data dir aside, restore
    // as root, start. systemd gives the files back to the service user; same CA.
    const caBefore = (await sd!.exec(['sha256sum', `${DATA}/pki/ca.crt`])).stdout.split(' ')[0];
    await sd!.systemctl('stop', UNIT);
    assert.equal((await sd!.exec(['mv', DATA, `${DATA}.old`])).code, 0);
    const restored = await sd!.exec(['/opt/nodekeeper-coordinator/current/bin/nodekeeper-coordinator', 'restore', '--from', '/root/coord.tar.gz', '--data-dir', DATA], { timeoutMs: 60_000 });
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(restored.stdout, new RegExp(`by coordinator ${rel.version.replace(/\./g, '\\.')} \\(manual\\)`), 'the version the bundled coordinator read from VERSION');
    await sd!.systemctl('start', UNIT);
    assert.equal((await sd!.show(UNIT, 'ActiveState')).ActiveState, 'active', await sd!.journal(UNIT));
    assert.equal((await sd!.exec(['sha256sum', `${DATA}/pki/ca.crt`])).stdout.split(' ')[0], caBefore);
    // Type=simple: `systemctl start` returns before the coordinator listens.
    const listed = await waitFor('the restored coordinator answering', async () => {
      const l = await nk('token', 'list');
      return l.code === 0 && l;
    }, 60_000, 250).catch(async (err) => {
      throw new Error(`${(err as Error).message}\n${await sd!.journal(UNIT)}`);
    });
    assert.match(listed.stdout, /Active/, 'the token made before the backup is back');
    // Only now: Type=simple's `systemctl start` returns at fork, and the StateDirectory=
    // chown happens in the child before exec, so it is certain once the coordinator answers.
    const after = await sd!.exec(['stat', '-c', '%U', DATA, `${DATA}/state.db`, `${DATA}/pki/ca.key`]);
    assert.deepEqual(after.stdout.trim().split('\n'), ['nodekeeper', 'nodekeeper', 'nodekeeper'], after.stdout);

    // An upgrade with the installed installer: verified, current flipped, the unit
    // restarted on the new version (its backups say so), the data and config kept.
    const up = await sd!.exec(['env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', '/opt/nodekeeper-coordinator/current/install-coordinator', '--from', '/opt/nk-test/next/nodekeeper-coordinator-0.99.0-linux-x64.tar.gz'], { timeoutMs: 180_000 });
    assert.equal(up.code, 0, `${up.stdout}${up.stderr}\n${await sd!.journal(UNIT)}`);
    assert.match(up.stdout, /nodekeeper-coordinator 0\.99\.0 is running/);
    assert.equal((await sd!.exec(['readlink', '/opt/nodekeeper-coordinator/current'])).stdout.trim(), 'versions/0.99.0');
    assert.equal((await sd!.exec(['readlink', '/opt/nodekeeper-coordinator/previous'])).stdout.trim(), `versions/${rel.version}`);
    const upgraded = await waitFor('the upgraded coordinator answering', async () => {
      const b = await nk('backup', 'create', '-o', '/root/after-upgrade.tar.gz');
      return b.code === 0 && b;
    }, 60_000, 250).catch(async (err) => {
      throw new Error(`${(err as Error).message}\n${await sd!.journal(UNIT)}`);
    });
    assert.match(upgraded.stdout, /integrity ok/);
    const manifest = await sd!.exec(['tar', '-xzOf', '/root/after-upgrade.tar.gz', 'manifest.json']);
    assert.equal((JSON.parse(manifest.stdout) as { coordinatorVersion: string }).coordinatorVersion, '0.99.0', 'the running coordinator is the new version');
    assert.match((await nk('token', 'list')).stdout, /Active/, 'the data is kept');
    assert.equal((await sd!.exec(['sha256sum', `${DATA}/pki/ca.crt`])).stdout.split(' ')[0], caBefore, 'the same CA');

    const score = await sd!.exec(['systemd-analyze', 'security', '--no-pager', UNIT]);
    const overall = /Overall exposure level for \S+: ([\d.]+) (\S+)/.exec(score.stdout);
    assert.ok(overall !== null, score.stdout + score.stderr);
    console.log(`systemd-analyze security ${UNIT}: ${overall[1]} ${overall[2]}`);
  });

  test('with --gateway-workers 2 under the shipped unit: the workers serve the port and reach the writer over its unix socket', async () => {
    const nk = (...args: string[]) => sd!.exec(['env', '-i', 'PATH=/usr/bin:/bin', '/usr/local/bin/nkctl', '--config', `${DATA}/nkctl.yaml`, ...args], { timeoutMs: 60_000 });
    // The documented override file (EnvironmentFile= of the unit).
    const env = await sd!.exec(['sh', '-c', 'echo NODEKEEPER_COORDINATOR_GATEWAY_WORKERS=2 >> /etc/nodekeeper-coordinator/coordinator.env']);
    assert.equal(env.code, 0, env.stderr);
    const before = (await sd!.journal(UNIT)).length;
    await sd!.systemctl('restart', UNIT);
    // Every request on the port is a worker's now, proxied to the writer: nkctl answering
    // is the workers' proxy and the writer's socket working under ProtectSystem=, PrivateTmp=
    // and RestrictAddressFamilies=.
    const listed = await waitFor('the coordinator answering through its gateway workers', async () => {
      const l = await nk('token', 'list');
      return l.code === 0 && l;
    }, 60_000, 250).catch(async (err) => {
      throw new Error(`${(err as Error).message}\n${await sd!.journal(UNIT)}`);
    });
    assert.match(listed.stdout, /Active/);
    const { ControlGroup: cgroup } = await sd!.show(UNIT, 'ControlGroup');
    const procs = await sd!.exec(['sh', '-c', `for p in $(cat /sys/fs/cgroup${cgroup}/cgroup.procs); do tr '\\0' ' ' < /proc/$p/cmdline; echo; done`]);
    const cmds = procs.stdout.trim().split('\n');
    assert.equal(cmds.length, 3, `the writer and two workers in the unit's cgroup:\n${procs.stdout}`);
    assert.equal(cmds.filter((c) => / gateway-worker\s*$/.test(c)).length, 2, procs.stdout);
    assert.ok(cmds.every((c) => c.includes('--max-semi-space-size=8')), `the workers run with the launcher's Node flags:\n${procs.stdout}`);
    // What the unit logged since the restart (the journal only grows). A worker can serve
    // nkctl before its sibling's line has reached the journal: wait for both.
    const journal = await waitFor('both workers\' "listening" lines in the journal', async () => {
      const j = (await sd!.journal(UNIT)).slice(before);
      return (j.match(/gateway worker listening/g) ?? []).length >= 2 && j;
    }, 30_000, 250).catch(async (err) => {
      throw new Error(`${(err as Error).message}\n${(await sd!.journal(UNIT)).slice(before)}`);
    });
    assert.doesNotMatch(journal, /"level":50/, 'no error since the restart');
    assert.equal((await sd!.show(UNIT, 'NRestarts')).NRestarts, '0');
  });
});
