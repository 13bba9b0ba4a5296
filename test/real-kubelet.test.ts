/**
 * The real kubelet in place of the stand-in: the kubelet built from k8s.io/kubernetes
 * (scripts/lib/kube.sh) runs under the agent's supervisor adapter against the reference
 * kube-apiserver and the real containerd, registers its Node and reports it Ready. The
 * agent probes it (healthz, `kubelet --version`, CRI), the coordinator shows the Node's
 * readiness beside the agent's view, and a killed kubelet is noticed by the agent and
 * comes back healthy when its service is restarted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SupervisorServiceManager } from '../agent/src/services/supervisor.ts';
import { startContainerdWithNetwork, type RunningContainerd } from './harness/containerd.ts';
import { makeHostRoot } from './harness/host-root.ts';
import { kubeBinDir, startApiServer, startEtcd, type ApiServer, type Etcd } from './harness/kube.ts';
import { createToken, nkctlOk, startAgent, startCoordinator, waitFor, type CoordinatorProc, type Proc } from './harness/processes.ts';
import { freePort } from './harness/supervised-node.ts';

describe('the real kubelet, supervised by the agent, against the reference API server and containerd', { timeout: 300_000 }, () => {
  let dir: string;
  let etcd: Etcd;
  let member: ApiServer;
  let containerd: RunningContainerd;
  let coord: CoordinatorProc;
  let agent: Proc;
  let services: SupervisorServiceManager;
  let healthz = '';

  const nk = (args: string[]) => nkctlOk(coord.nkctlConfig, args);
  const machine = async () => JSON.parse(await nk(['get', 'machine', 'real-node', '-o', 'json']));
  const nodeReady = () => {
    try {
      return JSON.parse(member.kubectl(['get', 'node', 'real-node', '-o', 'json'])).status.conditions.find((c: { type: string }) => c.type === 'Ready')?.status as string | undefined;
    } catch {
      return undefined;
    }
  };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-real-kubelet-'));
    etcd = await startEtcd(path.join(dir, 'etcd'));
    member = await startApiServer({ etcd, name: 'member', dir: path.join(dir, 'member') });
    containerd = await startContainerdWithNetwork(path.join(dir, 'containerd'));
    const [healthzPort, port] = [await freePort(), await freePort()];
    const { root } = await makeHostRoot(path.join(dir, 'real-node'), { machineId: '7'.repeat(32), hostname: 'real-node', runtimeSocket: containerd.socket, kubeletHealthzPort: healthzPort });
    await mkdir(path.join(root, 'usr/bin'), { recursive: true });
    await copyFile(path.join(kubeBinDir(), 'kubelet'), path.join(root, 'usr/bin/kubelet'));
    // What a node's kubelet config says, minus what this machine cannot do: no systemd
    // (cgroupfs), cgroup v1 (allowed explicitly), no QoS cgroups; anonymous read of its
    // own API on loopback for the test.
    const config = path.join(dir, 'kubelet.yaml');
    await writeFile(config, [
      'apiVersion: kubelet.config.k8s.io/v1beta1', 'kind: KubeletConfiguration',
      'cgroupDriver: cgroupfs', 'failSwapOn: false', 'failCgroupV1: false', 'cgroupsPerQOS: false', 'enforceNodeAllocatable: []',
      'authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}', 'authorization: {mode: AlwaysAllow}',
      'healthzBindAddress: 127.0.0.1', `healthzPort: ${healthzPort}`, 'address: 127.0.0.1', `port: ${port}`, 'readOnlyPort: 0',
      `containerRuntimeEndpoint: unix://${containerd.socket}`, '',
    ].join('\n'));
    services = new SupervisorServiceManager(root);
    await services.define('kubelet.service', {
      argv: ['/usr/bin/kubelet', '--kubeconfig', member.adminKubeconfig, '--config', config, '--root-dir', path.join(dir, 'kubelet-root'),
        '--cert-dir', path.join(dir, 'kubelet-pki'), '--hostname-override', 'real-node', '--v=1'],
    });
    await services.restart('kubelet.service');
    healthz = `http://127.0.0.1:${healthzPort}/healthz`;
    coord = await startCoordinator(path.join(dir, 'coordinator'), ['--heartbeat-interval', '500', '--liveness-grace', '5000', '--member-kubeconfig', member.adminKubeconfig]);
    const { token, caCertHash } = await createToken(coord.nkctlConfig, 1);
    agent = startAgent({ server: coord.url, stateDir: path.join(dir, 'agent-state'), hostRoot: root, kubeletHealthzUrl: healthz, token, caHash: caCertHash, extraArgs: ['--service-manager', 'supervisor'] });
  });

  after(async () => {
    await agent?.stop();
    await services?.stop('kubelet.service').catch(() => {});
    await coord?.stop();
    await containerd?.stop();
    await member?.stop();
    await etcd?.stop();
  });

  test('the kubelet registers its Node Ready; the agent reports its real version and health; nkctl shows both views', async () => {
    await waitFor('the real kubelet to register a Ready Node', () => nodeReady() === 'True', 90_000, 500);
    const m = await waitFor('the machine Ready with the real kubelet', async () => {
      const got = await machine();
      return got.status.phase === 'Ready' && got.status.kubelet?.version === 'Kubernetes v1.36.3' && got.status.node?.ready === 'True' && got;
    }, 60_000, 500);
    assert.equal(m.status.kubelet.health, 'healthy');
    assert.equal(m.status.containerd.health, 'healthy');
    assert.equal(m.status.node.name, 'real-node');
    assert.match(await nk(['get', 'machines', '-o', 'wide']), /real-node\s+Ready\s+v1\.36\.3\s+.*\sReady\s+\S+\n/);
  });

  test('a killed kubelet is noticed by the agent within seconds; restarted, it is healthy and its Node Ready', async () => {
    await services.stop('kubelet.service');
    await waitFor('the agent to see the kubelet down', async () => (await machine()).status.conditions.find((c: { type: string }) => c.type === 'KubeletHealthy')?.status === 'False', 30_000, 250);
    await services.restart('kubelet.service');
    await waitFor('the kubelet healthy again', async () => {
      const got = await machine();
      return got.status.phase === 'Ready' && got.status.kubelet?.health === 'healthy';
    }, 60_000, 500);
    // A restarted kubelet posts NotReady until its runtime checks pass, then Ready.
    await waitFor('its Node Ready again', () => nodeReady() === 'True', 60_000, 500);
  });
});
