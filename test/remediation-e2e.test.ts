/**
 * Automatic remediation with real processes: a coordinator, three agents with
 * supervised kubelet stand-ins, a real containerd. A stopped kubelet is restarted, a
 * deleted CNI config is restored from the desired state, a kubelet that stays broken
 * escalates to NeedsHuman without looping, and a storm (most of the fleet unhealthy)
 * starts nothing and says why.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import Database from 'better-sqlite3';
import path from 'node:path';
import { startContainerdWithNetwork, type RunningContainerd } from './harness/containerd.ts';
import { CNI_CONFIG_NAME, bridgeConflist } from './harness/host-root.ts';
import { installKubeletStandin } from './harness/kubelet-standin.ts';
import { createToken, nkctl, nkctlOk, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { makeSupervisedNode, startNodeAgent, stopNode, type SupervisedNode } from './harness/supervised-node.ts';

const CNI_PATH = `/etc/cni/net.d/${CNI_CONFIG_NAME}`;

describe('automatic remediation', { timeout: 300_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc;
  let containerd: RunningContainerd;
  const nodes: SupervisedNode[] = [];

  const nk = (args: string[]) => nkctlOk(coord.nkctlConfig, args);
  const api = async (pathname: string, method = 'GET', body?: unknown) => {
    const https = await import('node:https');
    const { readFile } = await import('node:fs/promises');
    const ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
    const token = (await readFile(path.join(coord.dataDir, 'admin.credential'), 'utf8')).trim();
    return new Promise<any>((resolve, reject) => {
      const req = https.request(new URL(pathname, coord.url), { method, ca, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c));
        res.on('end', () => resolve(JSON.parse(text)));
      });
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  };
  const remediation = (name: string) => api(`/v1/remediations/${name}`);
  const phase = async (name: string) => JSON.parse(await nk(['get', 'machine', name, '-o', 'json'])).status.phase as string;
  const rule = (name: string, fault: string, ladder: unknown[], extra: Record<string, unknown> = {}) => ({
    apiVersion: 'nodekeeper.io/v1alpha1', kind: 'RemediationRule', metadata: { name },
    spec: { fault, forSeconds: 1, ladder, maxAttemptsPerMachine: 3, cooldownSeconds: 2, ...extra },
  });

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-remediate-'));
    containerd = await startContainerdWithNetwork(path.join(dir, 'containerd'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), [
      '--heartbeat-interval', '500', '--liveness-grace', '5000', '--liveness-recover', '500',
      '--fault-hold', '1', '--fault-clear', '2', '--storm-cooldown', '3',
    ]);
    const { token, caCertHash } = await createToken(coord.nkctlConfig, 3);
    for (const [i, name] of ['node-a', 'node-b', 'node-c'].entries()) {
      const n = await makeSupervisedNode(dir, { name, machineId: `${i + 1}`.repeat(32), kubeletVersion: 'v1.31.2', runtimeSocket: containerd.socket });
      startNodeAgent(n, { server: coord.url, token, caHash: caCertHash });
      nodes.push(n);
    }
    // The desired state: the CNI config to restore, and short ladders for the test.
    await writeFile(path.join(dir, 'cpv.json'), JSON.stringify({
      apiVersion: 'nodekeeper.io/v1alpha1', kind: 'ClusterPackageVersion', metadata: { name: 'cluster' },
      spec: { packages: [{ name: 'cni-plugins', version: '1.1.1', artifact: { url: 'https://artifacts.invalid/cni.tgz', sha256: 'c'.repeat(64), size: 1 },
        parameters: { networkConfigPath: CNI_PATH, networkConfig: bridgeConflist() } }] },
    }));
    await nk(['apply', '-f', path.join(dir, 'cpv.json')]);
    const step = (action: string, target?: string) => ({ action, ...(target === undefined ? {} : { target }), timeoutSeconds: 20, successWithinSeconds: 6 });
    for (const r of [
      rule('kubelet-down', 'KubeletNotRunning', [step('RestartService', 'kubelet.service'), step('CordonAndNotify')]),
      rule('kubelet-sick', 'KubeletUnhealthy', [step('RestartService', 'kubelet.service'), step('CordonAndNotify')]),
      rule('network', 'NetworkNotReady', [step('RestoreConfig', 'cni-plugins'), step('CordonAndNotify')]),
    ]) {
      const stored = await api(`/v1/remediationrules/${r.metadata.name}`, 'PUT', r);
      assert.equal(stored.metadata?.name, r.metadata.name, JSON.stringify(stored));
    }
    await waitFor('three Ready machines', async () => (await Promise.all(nodes.map((n) => phase(n.name)))).every((p) => p === 'Ready'), 30_000);
  });

  after(async () => {
    for (const n of nodes) await stopNode(n);
    await coord?.stop();
    await containerd?.stop();
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(dir, { recursive: true, force: true });
  });

  test('a stopped kubelet is restarted by the agent and the machine is Ready again', async () => {
    const a = nodes[0]!;
    await a.services.stop('kubelet.service');
    // The NotReady spell can be shorter than one poll of nkctl on a loaded machine, so the
    // restart in the history is what proves the fault was seen; Ready comes after it.
    const r = await waitFor('the restart in the history', async () => {
      const x = await remediation('node-a');
      return x.history.some((h: { action: string }) => h.action === 'RestartService') && x;
    }, 60_000, 250);
    await waitFor('node-a Ready again', async () => (await phase('node-a')) === 'Ready', 40_000, 250);
    assert.notEqual(r.phase, 'NeedsHuman');
  });

  test('a deleted CNI config is restored from the desired state', async () => {
    const b = nodes[1]!;
    await unlink(path.join(b.root, CNI_PATH));
    await waitFor('node-b NotReady', async () => (await phase('node-b')) === 'NotReady', 20_000);
    await waitFor('node-b Ready again', async () => (await phase('node-b')) === 'Ready', 40_000, 250);
    const m = JSON.parse(await nk(['get', 'machine', 'node-b', '-o', 'json']));
    assert.equal(m.status.cni.health, 'healthy');
    await waitFor('the restore in the history', async () => (await remediation('node-b')).history.some((h: { action: string }) => h.action === 'RestoreConfig'), 20_000, 250);
  });

  test('a kubelet that stays broken escalates to NeedsHuman and stops there', async () => {
    const c = nodes[2]!;
    // Its binary now serves a failing healthz: a restart does not help.
    await installKubeletStandin(c.root, { version: 'v1.31.2', healthz: 'fail' });
    await c.services.restart('kubelet.service');
    const r = await waitFor('node-c NeedsHuman', async () => {
      const x = await remediation('node-c');
      return x.phase === 'NeedsHuman' && x;
    }, 60_000, 250);
    assert.ok(r.history.some((h: { action: string }) => h.action === 'RestartService'));
    assert.ok(r.history.some((h: { action: string }) => h.action === 'CordonAndNotify'));
    const attempts = r.attempts as number;
    await new Promise((res) => setTimeout(res, 4000));
    const later = await remediation('node-c');
    assert.equal(later.phase, 'NeedsHuman', 'no loop: it stays with the human');
    assert.equal(later.attempts, attempts);
    const events = await nk(['describe', 'machine', 'node-c']);
    assert.match(events, /NeedsHuman/);
    assert.match(await nk(['remediation', 'list']), /node-c\s+NeedsHuman/);
    assert.match(await nk(['remediation', 'describe', 'node-c']), /CordonAndNotify/);
    assert.match(await nk(['get', 'remediationrules']), /kubelet-sick\s+KubeletUnhealthy/);
    assert.match(await nk(['get', 'machines']), /node-c\s+NotReady.*NeedsHuman/);
  });

  test('a storm (most of the fleet unhealthy) starts nothing new and says why', async () => {
    // node-c is still broken; breaking node-a too makes 2 of 3 unhealthy: more than max(1, 10%).
    await nodes[0]!.services.stop('kubelet.service');
    const list = await waitFor('a storm', async () => {
      const l = await api('/v1/remediations');
      return l.status.storm.active === true && l;
    }, 30_000, 250);
    assert.match(`${list.status.storm.reason} ${list.status.storm.message}`, /unhealthy|Storm/i);
    const stormSince = Date.parse(list.status.storm.since);
    await new Promise((res) => setTimeout(res, 3000));
    const during = await remediation('node-a');
    assert.ok(!during.history.some((h: { at: string }) => Date.parse(h.at) >= stormSince), `no new remediation during the storm: ${JSON.stringify(during.history)}`);
    assert.equal(await phase('node-a'), 'NotReady');

    // A human fixes node-c; the storm calms, and after the cooldown node-a is repaired.
    await installKubeletStandin(nodes[2]!.root, { version: 'v1.31.2' });
    await nodes[2]!.services.restart('kubelet.service');
    await waitFor('the storm over', async () => (await api('/v1/remediations')).status.storm.active === false, 30_000, 250);
    await waitFor('node-a repaired after the cooldown', async () => (await phase('node-a')) === 'Ready', 40_000, 250);
    const after = await remediation('node-a');
    assert.ok(after.history.some((h: { action: string }) => h.action === 'RestartService'), `repaired by remediation: ${JSON.stringify(after.history)}`);
  });

  test('many agents silent at once: a partition is suspected, nothing is remediated, rollouts hold', async () => {
    const before = await Promise.all(['node-b', 'node-c'].map(async (n) => (await remediation(n)).history.length));
    await nodes[1]!.agent?.stop('SIGKILL');
    await nodes[2]!.agent?.stop('SIGKILL');
    const list = await waitFor('a suspected partition', async () => {
      const l = await api('/v1/remediations');
      return l.status.storm.active === true && l.status.storm.reason === 'PartitionSuspected' && l;
    }, 30_000, 250);
    assert.match(list.status.storm.message, /2 of 3 agents silent/);
    await new Promise((res) => setTimeout(res, 2000));
    const after = await Promise.all(['node-b', 'node-c'].map(async (n) => (await remediation(n)).history.length));
    assert.deepEqual(after, before, 'no remediation of silent machines');
    const db = new Database(path.join(coord.dataDir, 'state.db'), { readonly: true });
    try {
      const held = db.prepare("SELECT reason FROM events WHERE object = 'rollouts/cluster' ORDER BY id").all() as Array<{ reason: string }>;
      assert.ok(held.some((e) => e.reason === 'PartitionSuspected'), 'rollouts recorded that they hold');
    } finally {
      db.close();
    }
    // The agents come back (their credentials are saved): the partition is over.
    startNodeAgent(nodes[1]!, { server: coord.url });
    startNodeAgent(nodes[2]!, { server: coord.url });
    await waitFor('the partition over', async () => (await api('/v1/remediations')).status.storm.active === false, 40_000, 250);
  });

  test('dry run records what it would do and does nothing; switched off, it repairs', async () => {
    await waitFor('all Ready', async () => (await Promise.all(nodes.map((n) => phase(n.name)))).every((p) => p === 'Ready'), 40_000, 250);
    assert.match(await nk(['remediation', 'dry-run', 'on']), /.+/);
    const b = nodes[1]!;
    const before = (await remediation('node-b')).history.length;
    await unlink(path.join(b.root, CNI_PATH));
    await waitFor('a DryRun event', async () => /DryRun/.test(await nk(['describe', 'machine', 'node-b'])), 30_000, 250);
    await new Promise((res) => setTimeout(res, 2000));
    assert.equal(await phase('node-b'), 'NotReady', 'nothing was done');
    assert.equal((await remediation('node-b')).history.length, before, 'no step ran');
    await nk(['remediation', 'dry-run', 'off']);
    await waitFor('node-b repaired once dry run is off', async () => (await phase('node-b')) === 'Ready', 40_000, 250);
  });
});
