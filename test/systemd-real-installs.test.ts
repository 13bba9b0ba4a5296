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
import { mkdir, readdir, readlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { kubeletArtifact, kubeletManifest } from './harness/artifacts.ts';
import { waitFor } from './harness/processes.ts';
import { AGENT_UNIT, KUBELET_PKG_DIR, STANDIN_RUNTIME, SystemdNode } from './harness/systemd-agent.ts';
import { systemdUnavailable } from './harness/systemd.ts';

const skip = await systemdUnavailable();
const COORDINATOR_ARGS = ['--fault-hold', '1', '--fault-clear', '2', '--control-plane-version', '1.32.0', '--heartbeat-interval', '500', '--liveness-grace', '5000', '--liveness-recover', '500'];
/** The agent unit's TimeoutStopSec= (agent/systemd/nodekeeper-agent.service). */
const TIMEOUT_STOP_MS = 30_000;

describe('installs under a real systemd with the shipped agent unit', { skip: skip ?? false, timeout: 400_000 }, () => {
  let node: SystemdNode;
  const pushed = new Map<string, { url: string; sha256: string; size: number }>();

  /** Pushes a kubelet stand-in artifact at `version` (healthz failing, or held until `readyFile` exists). */
  const push = async (version: string, o: { healthz?: 'fail'; readyFile?: string } = {}) => {
    const art = await kubeletArtifact(path.join(node.dir, 'art'), { version: `v${version}`, runtime: STANDIN_RUNTIME, ...o });
    pushed.set(version, JSON.parse(await node.nk(['artifact', 'push', art.file, '--package', 'kubelet', '--version', version, '-o', 'json'])));
  };
  /** The cluster's kubelet entry: the manifest rollouts install with (its health timeout). */
  const setKubeletManifest = async (version: string, healthTimeoutMs: number) => {
    const a = pushed.get(version)!;
    await node.apply('cpv', { apiVersion: 'nodekeeper.io/v1alpha1', kind: 'ClusterPackageVersion', metadata: { name: 'cluster' }, spec: { packages: [{ name: 'kubelet', version, artifact: a, manifest: kubeletManifest(healthTimeoutMs) }] } });
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
  /** A single install of `version` through a rollout (one machine: the canary is all). */
  const rolloutTo = (name: string, version: string, onFailure = 'Pause') =>
    node.nk(['rollout', 'create', name, '--package', `kubelet=${version}`, '--canary', '1', '--soak', '2s', '--batches', '100', '--on-failure', onFailure.toLowerCase()]);

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
    const restartedAt = Date.now();
    await node.sd.systemctl('restart', 'containerd.service');
    assert.notEqual((await node.sd.show('containerd.service', 'MainPID'))['MainPID'], pid0);
    await waitFor('containerd healthy after the restart', async () => (await healthy()) && Date.parse((await runtime())['observedAt']) > restartedAt && true, 30_000, 250);

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
});
