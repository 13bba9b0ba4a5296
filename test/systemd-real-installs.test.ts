/**
 * Installs under a real systemd (issue 11, item 1): the shipped agent unit, unchanged, on
 * a booted node (test/harness/systemd-agent.ts) with Debian's containerd.service, a
 * kubelet stand-in as kubelet.service and a working CNI, driven by a real coordinator:
 * the runtime through its real CRI socket across restarts and stops, a kubelet rollout
 * and its automatic rollback, and the agent killed (SIGKILL) or stopped (systemctl stop)
 * in the middle of an install.
 *
 * One boot serves the file: each test starts from a healthy machine, leaves it healthy,
 * and moves the kubelet to a version of its own. The moments "mid-install" are made
 * deterministic by a kubelet stand-in whose healthz fails until the test creates a file
 * (its readyFile): the install sits in its health step for as long as the test wants.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { containerdArtifact, kubeletArtifact, kubeletManifest } from './harness/artifacts.ts';
import { waitFor } from './harness/processes.ts';
import { AGENT_UNIT, KUBELET_PKG_DIR, STANDIN_RUNTIME, SystemdNode } from './harness/systemd-agent.ts';
import { systemdUnavailable } from './harness/systemd.ts';

const skip = await systemdUnavailable();
const COORDINATOR_ARGS = ['--fault-hold', '1', '--fault-clear', '2', '--control-plane-version', '1.32.0', '--heartbeat-interval', '500', '--liveness-grace', '5000', '--liveness-recover', '500'];
/** The agent unit's TimeoutStopSec= (agent/systemd/nodekeeper-agent.service). */
const TIMEOUT_STOP_MS = 30_000;

describe('installs under a real systemd with the shipped agent unit', { skip: skip ?? false, timeout: 900_000 }, () => {
  let node: SystemdNode;
  const pushed = new Map<string, { url: string; sha256: string; size: number }>();

  /** Pushes a kubelet stand-in artifact at `version` (healthz failing, or held until `readyFile` exists). */
  const push = async (version: string, o: { healthz?: 'fail'; readyFile?: string; exitAtStart?: boolean } = {}) => {
    const art = await kubeletArtifact(path.join(node.dir, 'art'), { version: `v${version}`, runtime: STANDIN_RUNTIME, ...o });
    const out = JSON.parse(await node.nk(['artifact', 'push', art.file, '--package', 'kubelet', '--version', version, '-o', 'json'])) as { url: string; sha256: string; size: number };
    pushed.set(version, { url: out.url, sha256: out.sha256, size: out.size });
  };
  /** The cluster's package entries (the manifests rollouts install with), by package. */
  const cpv = new Map<string, unknown>();
  const applyCpv = () => node.apply('cpv', { apiVersion: 'nodekeeper.io/v1alpha1', kind: 'ClusterPackageVersion', metadata: { name: 'cluster' }, spec: { packages: [...cpv.values()] } });
  /** The cluster's kubelet entry, with the health timeout installs of it wait for. */
  const setKubeletManifest = async (version: string, healthTimeoutMs: number) => {
    cpv.set('kubelet', { name: 'kubelet', version, artifact: pushed.get(version)!, manifest: kubeletManifest(healthTimeoutMs) });
    await applyCpv();
  };
  /** What `current` and /usr/bin/kubelet point at, and what else is in the package dir. */
  const kubeletOnDisk = async () => {
    const pkg = node.sd.hostPath(KUBELET_PKG_DIR);
    return {
      current: await readlink(path.join(pkg, 'current')),
      link: await readlink(node.sd.hostPath('/usr/bin/kubelet')),
      entries: (await readdir(pkg)).sort(),
      versions: (await readdir(path.join(pkg, 'versions'))).filter((v) => !v.endsWith('.artifact.json')).sort(),
    };
  };
  const reportedKubelet = async () => (await node.machineJson())?.['status']?.['kubelet'];
  const kubeletActive = async () => (await node.sd.show('kubelet.service', 'ActiveState'))['ActiveState'] === 'active';
  /**
   * Creates a one-machine rollout (the canary is all). A rollout an earlier test left
   * stopped half-way is aborted first, so it cannot hold the machine for this one. The
   * soak allows for a report round or two on a loaded machine: the machine must be seen
   * healthy within it, and a 2 s soak failed under load (reports are sent on change).
   */
  const createRollout = async (name: string, pkg: string, version: string, onFailure = 'Pause') => {
    const list = (JSON.parse(await node.nk(['rollout', 'list', '-o', 'json'])) as { items: Array<{ metadata: { name: string }; status: Record<string, any> }> }).items;
    for (const r of list) if (!['Completed', 'RolledBack', 'Failed'].includes(r.status['phase'])) await node.nk(['rollout', 'abort', r.metadata.name]).catch(() => '');
    await node.nk(['rollout', 'create', name, '--package', `${pkg}=${version}`, '--canary', '1', '--soak', '5s', '--batches', '100', '--on-failure', onFailure.toLowerCase()]);
  };
  const rolloutTo = (name: string, version: string, onFailure = 'Pause') => createRollout(name, 'kubelet', version, onFailure);

  before(async () => {
    node = await SystemdNode.start({ coordinatorArgs: COORDINATOR_ARGS, kubeletVersion: 'v1.31.2' });
    await waitFor('the machine Ready', async () => (await node.machineJson())?.['status']?.['phase'] === 'Ready', 60_000, 250).catch(async (err) => {
      throw new Error(`${(err as Error).message}\n${await node.diagnostics()}`);
    });
  });

  after(async () => {
    await node?.close();
  });

  test('containerd.service: reported healthy through its CRI socket, across a restart, a crash and a stop repaired by the coordinator', async () => {
    const runtime = async () => (await node.machineJson())?.['status']?.['containerd'];
    const healthy = async () => {
      const r = await runtime();
      return r?.['health'] === 'healthy' && r?.['reason'] === 'RuntimeReady' && r?.['service']?.['activeState'] === 'active' && r;
    };
    const first = await waitFor('containerd healthy', healthy, 30_000, 250);
    assert.equal(first['service']['manager'], 'systemd');
    assert.match(first['version'], /^1\.6\./, 'the version comes from the real CRI socket');

    // An operator's restart: a new process, reported healthy again (a manual restart is no NRestarts).
    const pid0 = (await node.sd.show('containerd.service', 'MainPID'))['MainPID'];
    await node.sd.systemctl('restart', 'containerd.service');
    assert.notEqual((await node.sd.show('containerd.service', 'MainPID'))['MainPID'], pid0);
    // (A report is sent on change: a restart quicker than a probe round may show nothing.)
    const again = await waitFor('containerd healthy after the restart', healthy, 30_000, 250);
    assert.equal(again['service']['restarts'], 0, 'an operator\'s restart is not one of systemd\'s NRestarts');

    // A crash: Debian's unit restarts it (Restart=always, 5 s); the agent reports the restart count.
    await node.sd.exec(['systemctl', 'kill', '-s', 'KILL', 'containerd.service']);
    const crashed = await waitFor('containerd restarted by systemd and reported', async () => {
      const r = await healthy();
      return r !== false && r['service']['restarts'] === 1 && r;
    }, 30_000, 250).catch(async (err) => {
      throw new Error(`${(err as Error).message}\n${JSON.stringify(await runtime())}\n${await node.diagnostics()}`);
    });
    assert.equal((await node.sd.show('containerd.service', 'NRestarts'))['NRestarts'], '1');
    assert.equal(crashed['service']['restarts'], 1);

    // A stop: nothing restarts it by itself (the agent does not, while connected); the
    // coordinator sees RuntimeNotReady from the closed socket and systemd's inactive state...
    await node.sd.systemctl('stop', 'containerd.service');
    await waitFor('RuntimeNotReady active', () => node.faultActive('RuntimeNotReady'), 30_000, 250);
    const down = await runtime();
    assert.equal(down['health'], 'unhealthy', JSON.stringify(down));
    assert.equal(down['service']['activeState'], 'inactive');
    assert.equal((await node.sd.show('containerd.service', 'ActiveState'))['ActiveState'], 'inactive', 'nothing restarted it without a rule');
    // ...and, once a rule says so, its remediation restarts the unit through systemd.
    await node.apply('runtime-rule', {
      apiVersion: 'nodekeeper.io/v1alpha1', kind: 'RemediationRule', metadata: { name: 'runtime-down' },
      spec: { fault: 'RuntimeNotReady', forSeconds: 1, ladder: [{ action: 'RestartService', target: 'containerd.service', timeoutSeconds: 60, successWithinSeconds: 10 }], maxAttemptsPerMachine: 1, cooldownSeconds: 2 },
    });
    await waitFor('containerd restarted by the remediation and healthy', healthy, 60_000, 250).catch(async (err) => {
      throw new Error(`${(err as Error).message}\n${await node.diagnostics()}`);
    });
    assert.equal((await node.sd.show('containerd.service', 'ActiveState'))['ActiveState'], 'active');
    const restart = node.commands('service.restart').at(-1);
    assert.equal(restart?.state, 'Succeeded', JSON.stringify(restart));
    await waitFor('RuntimeNotReady cleared', async () => !(await node.faultActive('RuntimeNotReady')), 30_000, 250);
  });
  test('a kubelet rollout installs the new version; a version failing health is rolled back to it by itself', async () => {
    await push('1.31.3');
    await push('1.31.4', { healthz: 'fail' });
    await setKubeletManifest('1.31.3', 8000);
    await rolloutTo('kubelet-1-31-3', '1.31.3');
    const good = await node.nk(['rollout', 'status', 'kubelet-1-31-3', '-w', '--interval', '500ms']).catch(async (err) => {
      throw new Error(`${(err as Error).message}\n${JSON.stringify((await node.rollout('kubelet-1-31-3'))?.status['machines'])}\n${await node.diagnostics()}`);
    });
    assert.match(good, /Completed/);
    let disk = await kubeletOnDisk();
    assert.equal(disk.current, 'versions/1.31.3');
    assert.equal(disk.link, '../../var/lib/nodekeeper/packages/kubelet/current/kubelet', '/usr/bin/kubelet goes through current');
    assert.ok(disk.versions.some((v) => v.startsWith('adopted-')), `the apt-installed kubelet was adopted: ${disk.versions}`);
    assert.ok(await kubeletActive());
    await waitFor('kubelet 1.31.3 reported', async () => (await reportedKubelet())?.['semver'] === '1.31.3', 30_000, 250);

    await rolloutTo('kubelet-1-31-4', '1.31.4', 'Rollback');
    const bad = await node.nk(['rollout', 'status', 'kubelet-1-31-4', '-w', '--interval', '500ms']).then(() => 'exit 0', (err: Error) => err.message);
    assert.notEqual(bad, 'exit 0', 'a rolled-back rollout is not a success');
    const r = await node.rollout('kubelet-1-31-4');
    assert.equal(r?.status['phase'], 'RolledBack', JSON.stringify(r?.status));
    const install = node.commands('package.install').at(-1)!;
    const result = JSON.parse(install.result ?? '{}');
    assert.equal(result['outcome'], 'rolled-back', JSON.stringify(install));
    assert.equal(result['failedStep'], 'health');
    assert.equal(result['activeVersion'], '1.31.3');
    assert.match(install.error ?? '', /NK_INSTALL_HEALTH_TIMEOUT/);
    disk = await kubeletOnDisk();
    assert.equal(disk.current, 'versions/1.31.3', 'current points at the previous version again');
    assert.equal(disk.link, '../../var/lib/nodekeeper/packages/kubelet/current/kubelet');
    assert.ok(await kubeletActive(), 'kubelet.service runs the previous version');
    const version = await node.sd.exec(['/usr/bin/kubelet', '--version']);
    assert.equal(version.stdout.trim(), 'Kubernetes v1.31.3');
    await waitFor('kubelet 1.31.3 reported healthy again', async () => {
      const k = await reportedKubelet();
      return k?.['semver'] === '1.31.3' && k?.['health'] === 'healthy';
    }, 30_000, 250);
    assert.deepEqual(await node.journalRecords(), {}, 'no install journal left');

    // A version that cannot start at all: its unit ends failed; the rollback restarts the
    // failed unit on the previous version.
    await push('1.31.9', { exitAtStart: true });
    await rolloutTo('kubelet-1-31-9', '1.31.9', 'Rollback');
    await node.nk(['rollout', 'status', 'kubelet-1-31-9', '-w', '--interval', '500ms']).catch(() => {});
    assert.equal((await node.rollout('kubelet-1-31-9'))?.status['phase'], 'RolledBack');
    const crashed = node.commands('package.install').at(-1)!;
    assert.equal(JSON.parse(crashed.result ?? '{}')['outcome'], 'rolled-back', JSON.stringify(crashed));
    assert.match(await node.sd.journal('kubelet.service'), /failed to start \(NK_KUBELET_STANDIN_EXIT_AT_START\)/, 'the new version did run, and failed');
    assert.equal((await kubeletOnDisk()).current, 'versions/1.31.3');
    assert.ok(await kubeletActive(), 'kubelet.service active again on the previous version');
    assert.equal((await node.sd.exec(['/usr/bin/kubelet', '--version'])).stdout.trim(), 'Kubernetes v1.31.3');
  });

  /**
   * An install held in its health step (the new kubelet's healthz fails until `readyFile`
   * exists): resolves with the journal record once the agent is waiting for health.
   */
  const installHeldAtHealth = async (name: string, version: string) => {
    const readyFile = `/run/nk-test/kubelet-${version}-ready`;
    await push(version, { readyFile });
    // Long enough for a kill, systemd's RestartSec=5s, a restart and the recovery.
    await setKubeletManifest(version, 90_000);
    await rolloutTo(name, version);
    const rec = await waitFor(`the install of ${version} in its health step`, async () => Object.values(await node.journalRecords()).find((r) => r?.params.version === version && r.step === 'health'), 60_000, 50).catch(async (err) => {
      throw new Error(`${(err as Error).message}\n${await node.diagnostics()}`);
    });
    return { rec, open: async () => {
      await mkdir(node.sd.hostPath('/run/nk-test'), { recursive: true });
      await writeFile(node.sd.hostPath(readyFile), '');
    } };
  };
  /** The held install's second health step: the restarted agent recovered it up to there. */
  const recoveredToHealth = (version: string) =>
    waitFor('the recovery back in the health step', async () => Object.values(await node.journalRecords()).find((r) => r?.params.version === version && r.history.filter((h) => h.step === 'health').length >= 2), 60_000, 100).catch(async (err) => {
      throw new Error(`${(err as Error).message}\n${await node.diagnostics()}`);
    });
  /** Exactly one version linked, the install's, and nothing half-staged beside it. */
  const assertConsistent = async (version: string) => {
    const disk = await kubeletOnDisk();
    assert.equal(disk.current, `versions/${version}`);
    assert.equal(disk.link, '../../var/lib/nodekeeper/packages/kubelet/current/kubelet');
    assert.ok(!disk.versions.some((v) => v.endsWith('.staging')), `no staging dir: ${disk.versions}`);
    assert.equal((await node.sd.exec(['/usr/bin/kubelet', '--version'])).stdout.trim(), `Kubernetes v${version}`);
  };
  /** The install's command, its rollout and the node once the install finished. */
  const assertFinished = async (name: string, version: string) => {
    const row = await waitFor('the install command finished', () => {
      const c = node.commands('package.install').at(-1);
      return c !== undefined && c.state !== 'Sent' && c.state !== 'Pending' && c.state !== 'Running' && c;
    }, 60_000, 250);
    assert.equal(row.state, 'Succeeded', JSON.stringify(row));
    assert.equal(JSON.parse(row.result ?? '{}')['outcome'], 'installed');
    const status = await node.nk(['rollout', 'status', name, '-w', '--interval', '500ms']).catch(async (err) => {
      throw new Error(`${(err as Error).message}\n${JSON.stringify((await node.rollout(name))?.status['machines'])}\n${await node.diagnostics()}`);
    });
    assert.match(status, /Completed/);
    await assertConsistent(version);
    assert.equal((await kubeletOnDisk()).entries.includes('incoming'), false, 'the download dir is gone');
    assert.deepEqual(await node.journalRecords(), {}, 'the journal record is gone');
    assert.ok(await kubeletActive());
    await waitFor(`kubelet ${version} reported healthy`, async () => {
      const k = await reportedKubelet();
      return k?.['semver'] === version && k?.['health'] === 'healthy';
    }, 30_000, 250);
  };

  test('SIGKILL of the agent mid-install: systemd restarts it, the journal recovery finishes the install, the command succeeds', async () => {
    const before = Number((await node.sd.show(AGENT_UNIT, 'NRestarts'))['NRestarts']);
    const held = await installHeldAtHealth('kubelet-1-31-5', '1.31.5');
    await assertConsistent('1.31.5');
    const kill = await node.sd.exec(['systemctl', 'kill', '-s', 'KILL', AGENT_UNIT]);
    assert.equal(kill.code, 0, kill.stderr);
    await waitFor('systemd restarted the agent', async () => {
      const p = await node.sd.show(AGENT_UNIT, 'NRestarts', 'ActiveState');
      return Number(p['NRestarts']) === before + 1 && p['ActiveState'] === 'active';
    }, 30_000, 100);
    await recoveredToHealth('1.31.5');
    await assertConsistent('1.31.5');
    await held.open();
    await assertFinished('kubelet-1-31-5', '1.31.5');
    assert.match(await node.sd.journal(AGENT_UNIT), /recovering an install interrupted by an agent restart/);
  });

  test('systemctl stop of the agent mid-install: it stops within TimeoutStopSec, and after a start the outcome is reported', async () => {
    const held = await installHeldAtHealth('kubelet-1-31-6', '1.31.6');
    const t0 = Date.now();
    await node.sd.systemctl('stop', AGENT_UNIT);
    const stopMs = Date.now() - t0;
    const props = await node.sd.show(AGENT_UNIT, 'ActiveState', 'Result', 'ExecMainCode', 'ExecMainStatus');
    console.log(`systemctl stop took ${stopMs} ms; ${JSON.stringify(props)}`);
    assert.equal(props['ActiveState'], 'inactive');
    assert.equal(props['Result'], 'success', `a clean exit, not a kill after TimeoutStopSec: ${JSON.stringify(props)}`);
    assert.ok(stopMs < TIMEOUT_STOP_MS, `stopped in ${stopMs} ms`);
    await assertConsistent('1.31.6');
    const left = Object.values(await node.journalRecords());
    assert.equal(left.length, 1, 'the install is left journaled, for the next start');
    assert.match(node.commands('package.install').at(-1)?.state ?? '', /^(Sent|Running)$/, 'no outcome yet: the install did not finish');
    assert.match(await node.sd.journal(AGENT_UNIT), /stopping with 1 command\(s\) still running; the install journal finishes them at the next start/, 'the operator sees why in journalctl');
    await node.sd.systemctl('start', AGENT_UNIT);
    await recoveredToHealth('1.31.6');
    await held.open();
    await assertFinished('kubelet-1-31-6', '1.31.6');

    // With nothing running, a stop is the connection's close and no more.
    const t1 = Date.now();
    await node.sd.systemctl('stop', AGENT_UNIT);
    const idleMs = Date.now() - t1;
    console.log(`systemctl stop (idle) took ${idleMs} ms`);
    assert.equal((await node.sd.show(AGENT_UNIT, 'Result'))['Result'], 'success');
    assert.ok(idleMs < 5000, `an idle stop took ${idleMs} ms`);
    await node.sd.systemctl('start', AGENT_UNIT);
    await waitFor('the agent connected again', async () => (await node.machineJson())?.['status']?.['phase'] === 'Ready', 30_000, 250);
  });

  test('SIGKILL of the agent mid-rollback: the recovery carries the rollback through, the command ends rolled-back', async () => {
    // A good 1.31.7 first, its health held by a ready file; once it runs, the file is
    // removed: its NEXT start (the rollback to it) is held as long as the test wants.
    const good = await installHeldAtHealth('kubelet-1-31-7', '1.31.7');
    await good.open();
    await assertFinished('kubelet-1-31-7', '1.31.7');
    const readyFile = node.sd.hostPath('/run/nk-test/kubelet-1.31.7-ready');
    await rm(readyFile);
    await push('1.31.8', { healthz: 'fail' });
    await setKubeletManifest('1.31.8', 12_000);
    await rolloutTo('kubelet-1-31-8', '1.31.8', 'Rollback');
    const atRollback = (n: number) => waitFor(`the rollback in rollback-health (${n})`, async () => Object.values(await node.journalRecords()).find((r) => r?.params.version === '1.31.8' && r.step === 'rollback-health' && r.history.filter((h) => h.step === 'rollback-health').length >= n), 90_000, 50).catch(async (err) => {
      throw new Error(`${(err as Error).message}\n${await node.diagnostics()}`);
    });
    await atRollback(1);
    await assertConsistent('1.31.7');
    const before = Number((await node.sd.show(AGENT_UNIT, 'NRestarts'))['NRestarts']);
    assert.equal((await node.sd.exec(['systemctl', 'kill', '-s', 'KILL', AGENT_UNIT])).code, 0);
    await waitFor('systemd restarted the agent', async () => Number((await node.sd.show(AGENT_UNIT, 'NRestarts'))['NRestarts']) === before + 1, 30_000, 100);
    await atRollback(2);
    await assertConsistent('1.31.7');
    await writeFile(readyFile, '');
    const row = await waitFor('the install command finished', () => {
      const c = node.commands('package.install').at(-1);
      return c !== undefined && !['Pending', 'Sent', 'Running'].includes(c.state) && c;
    }, 60_000, 250);
    assert.equal(row.state, 'Failed', JSON.stringify(row));
    const result = JSON.parse(row.result ?? '{}');
    assert.equal(result['outcome'], 'rolled-back', JSON.stringify(row));
    assert.equal(result['activeVersion'], '1.31.7');
    assert.equal(result['failedStep'], 'health');
    assert.match(row.error ?? '', /NK_INSTALL_HEALTH_TIMEOUT/, 'the first failure is what is reported, not the interruption');
    await node.nk(['rollout', 'status', 'kubelet-1-31-8', '-w', '--interval', '500ms']).catch(() => {});
    assert.equal((await node.rollout('kubelet-1-31-8'))?.status['phase'], 'RolledBack');
    await assertConsistent('1.31.7');
    assert.deepEqual(await node.journalRecords(), {});
    assert.ok(await kubeletActive());
  });

  test('a containerd rollout: /usr/bin/containerd adopted and linked, containerd.service restarted by systemd on the new binary, healthy over CRI', async () => {
    const art = await containerdArtifact(path.join(node.dir, 'art'));
    const out = JSON.parse(await node.nk(['artifact', 'push', art.file, '--package', 'containerd', '--version', '1.6.21', '-o', 'json'])) as { url: string; sha256: string; size: number };
    cpv.set('containerd', {
      name: 'containerd', version: '1.6.21', artifact: { url: out.url, sha256: out.sha256, size: out.size },
      manifest: { name: 'containerd', format: 'tar.gz', links: [{ path: '/usr/bin/containerd', target: 'containerd' }], service: 'containerd.service', healthProbe: 'runtime', healthTimeoutMs: 30_000 },
    });
    await applyCpv();
    const pid0 = (await node.sd.show('containerd.service', 'MainPID'))['MainPID'];
    await createRollout('containerd-1-6-21', 'containerd', '1.6.21');
    const status = await node.nk(['rollout', 'status', 'containerd-1-6-21', '-w', '--interval', '500ms']).catch(async (err) => {
      throw new Error(`${(err as Error).message}\n${await node.diagnostics()}\ncontainerd journal:\n${(await node.sd.journal('containerd.service')).slice(-3000)}`);
    });
    assert.match(status, /Completed/);
    const pkg = node.sd.hostPath('/var/lib/nodekeeper/packages/containerd');
    assert.equal(await readlink(path.join(pkg, 'current')), 'versions/1.6.21');
    assert.equal(await readlink(node.sd.hostPath('/usr/bin/containerd')), '../../var/lib/nodekeeper/packages/containerd/current/containerd');
    assert.ok((await readdir(path.join(pkg, 'versions'))).some((v) => /^adopted-[0-9a-f]+$/.test(v)), 'the apt-installed binary was adopted');
    const p = await node.sd.show('containerd.service', 'MainPID', 'ActiveState');
    assert.equal(p['ActiveState'], 'active');
    assert.notEqual(p['MainPID'], pid0, 'containerd.service was restarted');
    // The running process is the new version's binary (its /proc/PID/exe, in the node's PID namespace).
    const exe = await node.sd.exec(['readlink', `/proc/${p['MainPID']}/exe`]);
    assert.equal(exe.stdout.trim(), '/var/lib/nodekeeper/packages/containerd/versions/1.6.21/containerd');
    await waitFor('containerd reported healthy over CRI', async () => (await node.machineJson())?.['status']?.['containerd']?.['health'] === 'healthy', 30_000, 250);
  });
});
