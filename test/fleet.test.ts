/**
 * Real processes end to end: one coordinator, three agents each with its own host root
 * (kubelet stand-in, real CNI config and Debian's plugins), one real containerd.
 * Agents enroll with a bootstrap token, report, go Unknown when killed, come back, and
 * survive a coordinator kill -9.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startContainerdWithNetwork, type RunningContainerd } from './harness/containerd.ts';
import { CNI_CONFIG_NAME, makeHostRoot } from './harness/host-root.ts';
import { installKubeletStandin, startKubeletStandin, type RunningKubeletStandin } from './harness/kubelet-standin.ts';
import { createToken, nkctl, startAgent, startCoordinator, waitFor, type CoordinatorProc, type Proc } from './harness/processes.ts';

interface Node {
  name: string;
  root: string;
  stateDir: string;
  kubelet: RunningKubeletStandin;
  agent: Proc;
}

// Short intervals so the test moves quickly; the rules are the same as in production.
const COORDINATOR_ARGS = ['--heartbeat-interval', '500', '--liveness-grace', '3000', '--liveness-recover', '500', '--flush-interval', '200', '--log-level', 'debug'];

type MachineObj = { metadata: { name: string }; status: Record<string, any> };

async function machines(coord: CoordinatorProc): Promise<MachineObj[]> {
  const r = await nkctl(coord.nkctlConfig, ['get', 'machines', '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { items: MachineObj[] }).items;
}

async function machine(coord: CoordinatorProc, name: string): Promise<MachineObj> {
  const r = await nkctl(coord.nkctlConfig, ['get', 'machine', name, '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as MachineObj;
}

const condition = (m: MachineObj, type: string) => (m.status['conditions'] as Array<Record<string, string>>).find((c) => c['type'] === type);

describe('a fleet of real agents and a real coordinator', { timeout: 120_000 }, () => {
  let dir: string;
  let containerd: RunningContainerd;
  let coord: CoordinatorProc;
  let token: { token: string; caCertHash: string | null };
  const nodes: Node[] = [];

  const launch = (n: Omit<Node, 'agent'>, withToken: boolean) =>
    startAgent({
      server: coord.url,
      stateDir: n.stateDir,
      hostRoot: n.root,
      kubeletHealthzUrl: n.kubelet.url,
      ...(withToken ? { token: token.token, caHash: token.caCertHash } : {}),
    });

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-fleet-'));
    // The shared runtime needs a network config too, or CRI says NetworkReady=false and
    // every node is (rightly) NotReady.
    containerd = await startContainerdWithNetwork(path.join(dir, 'containerd'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), COORDINATOR_ARGS);
    token = await createToken(coord.nkctlConfig, 3);
    for (const [i, name] of ['node-a', 'node-b', 'node-c'].entries()) {
      const { root } = await makeHostRoot(path.join(dir, name), { machineId: `${i + 1}`.repeat(32), hostname: name, runtimeSocket: containerd.socket });
      await installKubeletStandin(root, { version: `v1.31.${i + 1}` });
      const kubelet = await startKubeletStandin(root, { port: 0 });
      const base = { name, root, stateDir: path.join(dir, `${name}-state`), kubelet };
      nodes.push({ ...base, agent: launch(base, true) });
    }
  });

  after(async () => {
    for (const n of nodes) {
      await n.agent.stop();
      await n.kubelet.stop();
    }
    await coord?.stop();
    await containerd?.stop();
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(dir, { recursive: true, force: true });
  });

  test('agents enroll and report real kubelet, containerd and CNI versions', async () => {
    const items = await waitFor('three Ready machines', async () => {
      const ms = await machines(coord);
      return ms.length === 3 && ms.every((m) => m.status['phase'] === 'Ready') && ms;
    });
    assert.deepEqual(items.map((m) => m.metadata.name), ['node-a', 'node-b', 'node-c']);
    for (const [i, m] of items.entries()) {
      assert.equal(m.status['kubelet'].version, `Kubernetes v1.31.${i + 1}`);
      assert.equal(m.status['kubelet'].semver, `1.31.${i + 1}`);
      assert.equal(m.status['containerd'].runtimeName, 'containerd');
      assert.match(m.status['containerd'].version, /^1\.6\.\d+/);
      assert.equal(m.status['cni'].health, 'healthy');
      assert.equal(m.status['cni'].versionSource, 'dpkg');
      assert.match(m.status['cni'].version, /^1\.1\.1/);
    }
    // The credential is kept root-only; the bootstrap token is not kept at all.
    const cred = await stat(path.join(nodes[0]!.stateDir, 'credential'));
    assert.equal(cred.mode & 0o777, 0o600);
  });

  test('/metrics counts the machines by state and the connected agents', async () => {
    const https = await import('node:https');
    const { readFile } = await import('node:fs/promises');
    const ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
    const text = await new Promise<string>((resolve, reject) => {
      https.get(new URL('/metrics', coord.url), { ca }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString('utf8')));
        res.on('end', () => resolve(body));
      }).on('error', reject);
    });
    assert.match(text, /^nodekeeper_machines\{state="Ready"\} 3$/m);
    assert.match(text, /^nodekeeper_connected_agents 3$/m);
    assert.match(text, /^nodekeeper_enrollments_total\{result="ok"\} 3$/m);
  });

  test('the table view shows the versions', async () => {
    const r = await nkctl(coord.nkctlConfig, ['get', 'machines']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^NAME\s+STATUS\s+KUBELET\s+CONTAINERD\s+CNI/m);
    assert.match(r.stdout, /node-b\s+Ready\s+v1\.31\.2\s+1\.6\.\d+\S*\s+1\.1\.1/);
  });

  test('a deleted CNI config and a stopped kubelet are seen with their reasons', async () => {
    const a = nodes[0]!;
    await unlink(path.join(a.root, 'etc/cni/net.d', CNI_CONFIG_NAME));
    await a.kubelet.stop();
    const m = await waitFor('node-a NotReady with both faults', async () => {
      const m = await machine(coord, 'node-a');
      // A probe that lists the conf dir just before the unlink and reads it just after sees
      // a config it cannot read (InvalidNetworkConfig) for one round; the next says NoNetworkConfig.
      return m.status['phase'] === 'NotReady' && condition(m, 'NetworkReady')?.['reason'] === 'NoNetworkConfig' && condition(m, 'KubeletHealthy')?.['status'] === 'False' && m;
    });
    assert.equal(condition(m, 'NetworkReady')?.['reason'], 'NoNetworkConfig');
    assert.equal(condition(m, 'KubeletHealthy')?.['reason'], 'HealthzRefused');
    assert.equal(m.status['kubelet'].version, 'Kubernetes v1.31.1', 'the version is still read from the binary');
    const describe = await nkctl(coord.nkctlConfig, ['describe', 'machine', 'node-a']);
    assert.equal(describe.code, 0, describe.stderr);
    assert.match(describe.stdout, /NoNetworkConfig/);
    assert.match(describe.stdout, /HealthzRefused/);
  });

  test('a killed agent goes Unknown, and comes back Ready on its saved credential', async () => {
    const b = nodes[1]!;
    await b.agent.stop('SIGKILL');
    const gone = await waitFor('node-b Unknown', async () => {
      const m = await machine(coord, 'node-b');
      return m.status['phase'] === 'Unknown' && m;
    });
    assert.equal(condition(gone, 'Ready')?.['status'], 'Unknown');
    b.agent = launch(b, false); // no token: the saved credential is enough
    await waitFor('node-b Ready again', async () => (await machine(coord, 'node-b')).status['phase'] === 'Ready');
  });

  test('enrollment is refused once the token is used up, and nothing is added', async () => {
    const { root } = await makeHostRoot(path.join(dir, 'node-d'), { machineId: '4'.repeat(32), hostname: 'node-d' });
    const kubelet = await startKubeletStandin((await installKubeletStandin(root, { version: 'v1.31.4' }), root), { port: 0 });
    const d = { name: 'node-d', root, stateDir: path.join(dir, 'node-d-state'), kubelet };
    const agent = launch(d, true);
    const code = await agent.exited;
    await kubelet.stop();
    assert.notEqual(code, 0);
    assert.match(agent.log(), /NK_TOKEN_EXHAUSTED/);
    assert.equal((await machines(coord)).length, 3);
  });

  test('kill -9 of the coordinator loses nothing and does not mark the fleet Unknown', async () => {
    await coord.stop('SIGKILL');
    const port = coord.port;
    // A longer grace for the restarted coordinator: the claim is that a restart ALONE marks
    // nothing Unknown, not that a loaded machine restarts and reconnects within 3 s (it
    // did not once, with the whole suite and other builds sharing 2 cores).
    const args = COORDINATOR_ARGS.map((a, i) => (COORDINATOR_ARGS[i - 1] === '--liveness-grace' ? '15000' : a));
    coord = await startCoordinator(coord.dataDir, [...args, '--port', String(port)]);
    const ms = await machines(coord);
    assert.deepEqual(ms.map((m) => m.metadata.name), ['node-a', 'node-b', 'node-c']);
    assert.ok(ms.every((m) => m.status['phase'] !== 'Unknown'), 'a restart alone must not make machines Unknown');
    await waitFor('agents reconnected', async () => {
      const r = await machines(coord);
      return r.filter((m) => m.status['phase'] === 'Ready').length === 2 && r;
    });
  });
});
