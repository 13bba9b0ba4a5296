/**
 * Pull-mode registration against a real kube-apiserver (built from the published Go
 * modules; see scripts/lib/kube.sh): a host cluster and a member cluster (two API
 * servers over one etcd), a real coordinator with one real agent, the real nkctl and
 * kubectl. Covers: host install, member tokens, registration with the CA pinned,
 * Cluster status and Machine mirror (with the member's Node readiness), a host-authored
 * ClusterPackageVersion pulled and reported back, bad host objects refused, RBAC
 * isolation between members, credential rotation without a restart, Lease expiry ->
 * Unknown -> Ready judged by the host monitor on its own clock, the default mirror
 * (only machines that need an eye, the rest counted in the Cluster), and unregister.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startContainerdWithNetwork, type RunningContainerd } from './harness/containerd.ts';
import { startApiServer, startEtcd, type ApiServer, type Etcd } from './harness/kube.ts';
import { BIN, createToken, nkctl, nkctlOk, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { makeSupervisedNode, startNodeAgent, stopNode, type SupervisedNode } from './harness/supervised-node.ts';
import { newMachinePublicKey } from './harness/machine-key.ts';

const NS = 'nodekeeper-alpha';

describe('host cluster registration (pull mode)', { timeout: 300_000 }, () => {
  let dir: string;
  let etcd: Etcd;
  let host: ApiServer;
  let member: ApiServer;
  let coord: CoordinatorProc;
  let node: SupervisedNode;
  let containerd: RunningContainerd;
  let hostToken = '';
  let betaToken = '';
  let caHash = '';

  // The full mirror (every Machine) for most of the file; the default mirror is tested at its end.
  const coordArgs = (syncInterval = '500', mirror = 'all') => ['--heartbeat-interval', '500', '--liveness-grace', '5000', '--host-sync-interval', syncInterval, '--member-kubeconfig', member.adminKubeconfig, '--host-mirror', mirror];
  const nk = (args: string[]) => nkctlOk(coord.nkctlConfig, args);
  const hostNk = (args: string[]) => nkctlOk(coord.nkctlConfig, [...args, '--kubeconfig', host.adminKubeconfig]);
  const kubectl = (args: string[], opts: { kubeconfig?: string; input?: string } = {}) => host.kubectl(args, opts);
  const getJson = (args: string[], kubeconfig?: string) => JSON.parse(kubectl([...args, '-o', 'json'], kubeconfig === undefined ? {} : { kubeconfig }));
  const clusterReady = () => {
    const c = getJson(['get', 'clusters.nodekeeper.io', 'alpha']);
    return c.status?.conditions?.find((x: { type: string }) => x.type === 'Ready') as { status: string; reason: string; message: string } | undefined;
  };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-host-'));
    etcd = await startEtcd(path.join(dir, 'etcd'));
    [host, member] = await Promise.all([
      startApiServer({ etcd, name: 'host', dir: path.join(dir, 'host') }),
      startApiServer({ etcd, name: 'member', dir: path.join(dir, 'member') }),
    ]);
    containerd = await startContainerdWithNetwork(path.join(dir, 'containerd'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), coordArgs());
    const { token, caCertHash } = await createToken(coord.nkctlConfig, 1);
    node = await makeSupervisedNode(dir, { name: 'node-1', machineId: '1'.repeat(32), kubeletVersion: 'v1.35.2', runtimeSocket: containerd.socket });
    startNodeAgent(node, { server: coord.url, token, caHash: caCertHash });
    // The member cluster's Node for this machine, Ready as its kubelet would report.
    member.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-1' }, spec: { providerID: 'test://node-1' } }) });
    member.kubectl(['patch', 'node', 'node-1', '--subresource=status', '--type=merge', '-p', JSON.stringify({
      status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: new Date().toISOString(), lastTransitionTime: new Date().toISOString() }] },
    })]);
  });

  after(async () => {
    if (node !== undefined) await stopNode(node);
    await coord?.stop();
    await containerd?.stop();
    await Promise.all([host?.stop(), member?.stop()]);
    await etcd?.stop();
  });

  test('nkctl host install puts the CRDs, the viewer role and the identity policy on the host', async () => {
    const out = await hostNk(['host', 'install']);
    assert.match(out, /members pin its CA with --discovery-ca-hash sha256:[0-9a-f]{64}/);
    caHash = /--discovery-ca-hash (sha256:[0-9a-f]{64})/.exec(out)![1]!;
    assert.equal(caHash, host.caHash);
    const crds = kubectl(['get', 'crd', '-o', 'name']);
    for (const n of ['clusters', 'machines', 'clusterpackageversions']) assert.match(crds, new RegExp(`customresourcedefinition.apiextensions.k8s.io/${n}.nodekeeper.io`));
    // Idempotent.
    await hostNk(['host', 'install']);
    // Members read cluster-info before they trust the host: with no credential at all, so
    // the bootstrap token never goes to a server the pin has not vouched for.
    const anonymous = await new Promise<number>((resolve, reject) => {
      https.get(`${host.url}/api/v1/namespaces/kube-public/configmaps/cluster-info`, { ca: host.caPem }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    });
    assert.equal(anonymous, 200);
  });

  test('a member token prints the register command; a bad cluster name is refused', async () => {
    const t = JSON.parse(await hostNk(['host', 'token', 'create', '--cluster', 'alpha', '--ttl', '1h', '-o', 'json']));
    assert.match(t.token, /^[a-z0-9]{6}\.[a-z0-9]{16}$/);
    assert.equal(t.caHash, caHash);
    assert.match(t.registerCommand, /^nkctl register --cluster alpha --host-server https:\/\/127\.0\.0\.1:\d+ --host-token /);
    hostToken = t.token;
    betaToken = JSON.parse(await hostNk(['host', 'token', 'create', '--cluster', 'beta', '-o', 'json'])).token;
    const bad = await nkctl(coord.nkctlConfig, ['host', 'token', 'create', '--cluster', 'Not_A_Name', '--kubeconfig', host.adminKubeconfig]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /NK_HOST_CLUSTER_NAME_INVALID/);
  });

  test('registration refuses a wrong CA pin and a wrong token, and changes nothing', async () => {
    const wrongPin = await nkctl(coord.nkctlConfig, ['register', '--cluster', 'alpha', '--host-server', host.url, '--host-token', hostToken, '--discovery-ca-hash', `sha256:${'0'.repeat(64)}`]);
    assert.notEqual(wrongPin.code, 0);
    assert.match(wrongPin.stderr, /NK_HOST_CA_MISMATCH/);
    const wrongToken = await nkctl(coord.nkctlConfig, ['register', '--cluster', 'alpha', '--host-server', host.url, '--host-token', 'abcdef.0123456789abcdef', '--discovery-ca-hash', caHash]);
    assert.notEqual(wrongToken.code, 0);
    assert.match(wrongToken.stderr, /NK_HOST_UNAUTHORIZED/);
    // A token issued for beta cannot register as alpha: it may only mint beta's credential.
    const crossed = await nkctl(coord.nkctlConfig, ['register', '--cluster', 'alpha', '--host-server', host.url, '--host-token', betaToken, '--discovery-ca-hash', caHash]);
    assert.notEqual(crossed.code, 0);
    assert.match(crossed.stderr, /NK_HOST_FORBIDDEN/);
    assert.match(await nk(['host', 'status']), /Not registered/);
  });

  test('register (CA discovered from cluster-info, pinned by hash): Cluster, Lease and status appear on the host', async () => {
    const out = await nk(['register', '--cluster', 'alpha', '--host-server', host.url, '--host-token', hostToken, '--discovery-ca-hash', caHash, '--zone', 'zone-a']);
    assert.match(out, /cluster\/alpha registered/);
    const ready = await waitFor('Cluster alpha Ready on the host', () => clusterReady()?.status === 'True' && clusterReady(), 30_000);
    assert.equal(ready.reason, 'MemberReady');
    const c = getJson(['get', 'clusters.nodekeeper.io', 'alpha']);
    assert.equal(c.spec.syncMode, 'Pull');
    assert.equal(c.spec.zone, 'zone-a');
    assert.equal(c.status.kubernetesVersion, 'v1.36.3');
    const lease = getJson(['get', 'lease', '-n', NS, 'nodekeeper-member']);
    assert.equal(lease.spec.leaseDurationSeconds, 40);
    // The printer columns, through the real kubectl.
    const table = kubectl(['get', 'clusters.nodekeeper.io']);
    assert.match(table.split('\n')[0]!, /NAME\s+READY\s+REASON\s+VERSION\s+NODES\s+NODES-READY\s+MODE\s+AGE/);
    assert.match(table, /alpha\s+True\s+MemberReady\s+v1\.36\.3\s+1\s+1\s+Pull/);
  });

  test('the Machine is mirrored with its versions and the member Node readiness', async () => {
    const m = await waitFor('Machine node-1 on the host', () => {
      const got = getJson(['get', 'machines.nodekeeper.io', '-n', NS]).items.find((x: { metadata: { name: string } }) => x.metadata.name === 'node-1');
      return got?.status?.kubelet?.version === '1.35.2' && got;
    }, 30_000);
    assert.equal(m.spec.machineId, '1'.repeat(32));
    assert.equal(m.spec.providerID, 'test://node-1');
    assert.equal(m.status.node.ready, 'True');
    assert.equal(m.status.phase, 'Ready');
    // The member's Node beside the agent's view, in nkctl too.
    assert.match(await nk(['get', 'machines', '-o', 'wide']), /node-1 .*\sReady\s+\S+\n/);
    assert.match(await nk(['describe', 'machine', 'node-1']), /Node:\n\s+Name:\s+node-1\n\s+Status:\s+Ready\n\s+Provider ID:\s+test:\/\/node-1/);
    const table = kubectl(['get', 'machines.nodekeeper.io', '-n', NS]);
    assert.match(table, /node-1\s+Ready\s+True\s+1\.35\.2\s+\S+\s+1\.1\.1/);
    // Writes only on change: a quiet fleet does not rewrite its Machine every sync.
    const before = JSON.parse(await nk(['host', 'status', '-o', 'json'])).machineWrites;
    await new Promise((r) => setTimeout(r, 3000));
    const afterWrites = JSON.parse(await nk(['host', 'status', '-o', 'json'])).machineWrites;
    assert.ok(afterWrites - before <= 1, `machine writes grew from ${before} to ${afterWrites} in 3 s of quiet`);
  });

  test('nkctl clusters shows every member from the host', async () => {
    const out = await hostNk(['clusters']);
    assert.match(out.split('\n')[0]!, /NAME\s+READY\s+REASON\s+VERSION\s+NODES\s+AGENTS\s+PACKAGES\s+AGE/);
    assert.match(out, /alpha\s+True\s+MemberReady\s+v1\.36\.3\s+1\/1\s+1\s+\S*kubelet=1\.35\.2\(1\)/);
  });

  const artifact = { url: 'https://artifacts.invalid/kubelet.tgz', sha256: 'a'.repeat(64), size: 1 };
  const hostCpv = (name: string, packages: unknown[]) => ({ apiVersion: 'nodekeeper.io/v1alpha1', kind: 'ClusterPackageVersion', metadata: { name, namespace: NS }, spec: { packages } });

  test('a ClusterPackageVersion authored on the host reaches the member, and its status comes back', async () => {
    kubectl(['apply', '-f', '-'], { input: JSON.stringify(hostCpv('defaults', [{ name: 'kubelet', version: '1.35.3', artifact }])) });
    const cpv = await waitFor('the member to apply the host object', async () => {
      const local = JSON.parse(await nk(['get', 'clusterpackageversion', '-o', 'json']));
      return local.spec.packages.some((p: { name: string; version: string }) => p.name === 'kubelet' && p.version === '1.35.3') && local;
    }, 30_000);
    assert.ok(cpv.metadata.generation >= 1);
    const status = await waitFor('status on the host', () => {
      const o = getJson(['get', 'clusterpackageversions.nodekeeper.io', '-n', NS, 'defaults']);
      return o.status?.observedGeneration === o.metadata.generation && o.status;
    }, 30_000);
    const accepted = status.conditions.find((c: { type: string }) => c.type === 'Accepted');
    assert.equal(accepted.status, 'True');
    assert.equal(status.memberGeneration, cpv.metadata.generation);
    assert.match(kubectl(['get', 'clusterpackageversions.nodekeeper.io', '-n', NS]), /defaults\s+True\s+True\s+Valid/);
  });

  test('bad host objects are rejected with reasons and never applied', async () => {
    // Wrong schema: the API server refuses it (structural schema, patterns).
    assert.throws(
      () => kubectl(['apply', '-f', '-'], { input: JSON.stringify(hostCpv('bad-schema', [{ name: 'kubelet', version: 'latest', artifact }])) }),
      (err: { stderr?: string }) => /spec\.packages\[0\]\.version/.test(String(err.stderr)),
    );
    // Unknown package (no manifest), and a kubelet newer than the member's control plane.
    kubectl(['apply', '-f', '-'], { input: JSON.stringify(hostCpv('unknown-package', [{ name: 'frobnicator', version: '1.0.0', artifact }])) });
    kubectl(['apply', '-f', '-'], { input: JSON.stringify(hostCpv('zz-skew', [{ name: 'cni-plugins', version: '1.1.1', artifact }])) });
    kubectl(['patch', 'clusterpackageversions.nodekeeper.io', '-n', NS, 'zz-skew', '--type=merge', '-p', JSON.stringify({ spec: { packages: [{ name: 'kubelet', version: '1.99.0', artifact }] } })]);
    const reasonOf = (name: string) => waitFor(`verdict on ${name}`, () => {
      const o = getJson(['get', 'clusterpackageversions.nodekeeper.io', '-n', NS, name]);
      const c = o.status?.observedGeneration === o.metadata.generation ? o.status.conditions.find((x: { type: string }) => x.type === 'Accepted') : undefined;
      return c !== undefined && c;
    }, 30_000);
    const unknown = await reasonOf('unknown-package');
    assert.equal(unknown.status, 'False');
    assert.equal(unknown.reason, 'Invalid');
    assert.match(unknown.message, /frobnicator.*not a built-in package/);
    const skew = await reasonOf('zz-skew');
    assert.equal(skew.status, 'False');
    assert.equal(skew.reason, 'VersionSkew');
    assert.match(skew.message, /newer than the control plane v1\.36\.3/);
    const local = JSON.parse(await nk(['get', 'clusterpackageversion', '-o', 'json']));
    const versions = Object.fromEntries(local.spec.packages.map((p: { name: string; version: string }) => [p.name, p.version]));
    assert.equal(versions['kubelet'], '1.35.3', 'a refused object changed nothing');
    assert.equal(versions['frobnicator'], undefined);
  });

  test("one member's credential can neither read nor write another member's objects", async () => {
    const reg = JSON.parse(await readFile(path.join(coord.dataDir, 'host-registration.json'), 'utf8'));
    const alpha = host.kubeconfig(path.join(dir, 'alpha.kubeconfig'), reg.token);
    const denied = (args: string[]) => assert.throws(() => kubectl(args, { kubeconfig: alpha }), (err: { stderr?: string }) => /forbidden|denied/i.test(String(err.stderr)), args.join(' '));
    kubectl(['get', 'clusters.nodekeeper.io', 'alpha'], { kubeconfig: alpha });
    kubectl(['get', 'machines.nodekeeper.io', '-n', NS], { kubeconfig: alpha });
    denied(['get', 'machines.nodekeeper.io', '-n', 'nodekeeper-beta']);
    denied(['get', 'clusterpackageversions.nodekeeper.io', '-n', 'nodekeeper-beta']);
    denied(['get', 'clusters.nodekeeper.io']);
    denied(['get', 'secrets', '-n', 'kube-system']);
    const beta = JSON.stringify({ apiVersion: 'nodekeeper.io/v1alpha1', kind: 'Cluster', metadata: { name: 'beta' }, spec: { id: 'beta', syncMode: 'Pull' } });
    assert.throws(() => kubectl(['create', '-f', '-'], { kubeconfig: alpha, input: beta }), (err: { stderr?: string }) => /may only write its own Cluster/.test(String(err.stderr)));
  });

  test('the host credential rotates without a restart', async () => {
    const file = path.join(coord.dataDir, 'host-registration.json');
    const before = JSON.parse(await readFile(file, 'utf8'));
    await nk(['host', 'rotate-credential']);
    const rotated = JSON.parse(await readFile(file, 'utf8'));
    assert.notEqual(rotated.token, before.token);
    const renewedAfter = Date.now();
    await waitFor('a Lease renewal with the new credential', async () => {
      const s = JSON.parse(await nk(['host', 'status', '-o', 'json']));
      return s.lastError === null && Date.parse(s.lastLeaseRenewTime) > renewedAfter;
    }, 20_000);
  });

  test('host objects are watched: a new generation is applied long before the next sync', async () => {
    await coord.stop();
    coord = await startCoordinator(coord.dataDir, [...coordArgs('120000'), '--port', String(coord.port)]);
    await waitFor('the first sync after the restart', async () => JSON.parse(await nk(['host', 'status', '-o', 'json'])).lastSyncTime !== null, 20_000);
    kubectl(['apply', '-f', '-'], { input: JSON.stringify(hostCpv('defaults', [{ name: 'kubelet', version: '1.35.4', artifact }])) });
    await waitFor('the member to apply generation 2 (the next sync is 2 minutes away)', async () => {
      const local = JSON.parse(await nk(['get', 'clusterpackageversion', '-o', 'json']));
      return local.spec.packages.some((p: { name: string; version: string }) => p.name === 'kubelet' && p.version === '1.35.4');
    }, 20_000);
    await coord.stop();
    coord = await startCoordinator(coord.dataDir, [...coordArgs(), '--port', String(coord.port)]);
  });

  test('a silent member turns Unknown on the host monitor\'s clock, and Ready again when it is back', async () => {
    const monitorLog = path.join(dir, 'monitor.log');
    const monitor = spawn(process.execPath, [BIN.nkctl, 'host', 'monitor', '--kubeconfig', host.adminKubeconfig, '--grace', '3s', '--interval', '300ms'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    monitor.stdout.on('data', (c: Buffer) => (out += c.toString()));
    try {
      await waitFor('monitor started', () => out.includes('monitoring member Leases'), 20_000);
      // The coordinator was just restarted: node-1 is Ready again first (until then the
      // member rightly writes NoMachineReady, and a True read before that was stale).
      await waitFor('node-1 Ready on the member', async () => JSON.parse(await nk(['get', 'machine', 'node-1', '-o', 'json'])).status.phase === 'Ready', 30_000);
      await waitFor('the member Ready', () => clusterReady()?.status === 'True', 20_000);
      await new Promise((r) => setTimeout(r, 4000));
      assert.equal(clusterReady()?.status, 'True', 'a live member is not marked Unknown by a monitor that just started');
      await coord.stop('SIGKILL');
      const unknown = await waitFor('Unknown after the grace period', () => clusterReady()?.status === 'Unknown' && clusterReady(), 30_000);
      assert.equal(unknown.reason, 'LeaseExpired');
      assert.match(unknown.message, /not renewed for \d+s as seen by the host monitor/);
      coord = await startCoordinator(coord.dataDir, [...coordArgs(), '--port', String(coord.port)]);
      await waitFor('Ready again after the restart', () => clusterReady()?.status === 'True', 30_000);
    } finally {
      monitor.kill();
      await writeFile(monitorLog, out);
    }
  });

  test('nkctl machine delete removes the machine\'s Machine on the host too', async () => {
    const { token } = await createToken(coord.nkctlConfig, 1);
    const ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
    const https = await import('node:https');
    const status = await new Promise<number>((resolve, reject) => {
      const req = https.request(new URL('/v1/enroll', coord.url), { method: 'POST', ca, headers: { 'Content-Type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ token, identity: { machineId: '9'.repeat(32), hostname: 'node-gone', addresses: [], zone: null, labels: {} }, agentVersion: 'test', publicKey: newMachinePublicKey() }));
    });
    assert.equal(status, 201);
    const onHost = () => getJson(['get', 'machines.nodekeeper.io', '-n', NS]).items.some((x: { metadata: { name: string } }) => x.metadata.name === 'node-gone');
    await waitFor('Machine node-gone on the host', onHost, 30_000);
    assert.match(await nk(['machine', 'delete', 'node-gone']), /machine\/node-gone deleted/);
    await waitFor('Machine node-gone deleted on the host', () => !onHost(), 30_000);
    assert.ok(getJson(['get', 'machines.nodekeeper.io', '-n', NS]).items.some((x: { metadata: { name: string } }) => x.metadata.name === 'node-1'), 'the others stay');
  });

  test('--host-mirror unhealthy (the default): a healthy machine leaves the host, counted in the Cluster; a silent one comes back', async () => {
    await coord.stop();
    const restarted = Date.now();
    // A 1 s linger: the restart itself makes node-1 need an eye for a moment (its contact recovering).
    // --reconnect-backoff-cap 1000: the restart grace (grace + readmission + the agents' longest redial
    // step, restart-grace.ts) is about 7 s here, not 35, whether or not node-1 was heard before it stops.
    coord = await startCoordinator(coord.dataDir, [...coordArgs('500', 'unhealthy'), '--host-mirror-linger', '1000', '--reconnect-backoff-cap', '1000', '--port', String(coord.port)]);
    const machines = () => getJson(['get', 'machines.nodekeeper.io', '-n', NS]).items.map((x: { metadata: { name: string } }) => x.metadata.name) as string[];
    await waitFor('the healthy node-1 gone from the host', () => machines().length === 0, 30_000).catch(async (err: Error) => {
      const m = JSON.parse(await nk(['get', 'machine', 'node-1', '-o', 'json']));
      throw new Error(`${err.message}; node-1 on the member: ${m.status.phase}, ${JSON.stringify(m.status.conditions.map((c: { type: string; status: string; reason: string }) => `${c.type}=${c.status}:${c.reason}`))}, node ${JSON.stringify(m.status.node)}, remediation ${JSON.stringify(m.status.remediation)}`);
    });
    const summary = await waitFor('the machine summary in the Cluster status', () => {
      const s = getJson(['get', 'clusters.nodekeeper.io', 'alpha']).status?.machineSummary;
      return s?.mirror === 'unhealthy' && s.mirrored === 0 && s;
    }, 30_000);
    // A Pending machine was counted before (node-gone, deleted since): its count is 0 now, not left behind by the merge patch.
    assert.deepEqual(summary.phases, { Pending: 0, Ready: 1, NotReady: 0, Unknown: 0 });
    assert.deepEqual(summary.problems, []);
    assert.match(kubectl(['get', 'clusters.nodekeeper.io', 'alpha', '-o', 'wide']), /MIRRORED/);
    // Its agent stops: Unknown after the 5 s grace, so it needs an eye and is mirrored again. Heard
    // since the restart first: until then the restart grace (readmission plus the agents' backoff
    // cap, docs/coordinator.md) applies, not the 5 s one.
    await waitFor('node-1 heard since the restart', async () => Date.parse(JSON.parse(await nk(['get', 'machine', 'node-1', '-o', 'json'])).status.lastSeenTime ?? '0') > restarted, 60_000);
    await node.agent?.stop();
    const back = await waitFor('node-1 mirrored again, Unknown', () => {
      const m = getJson(['get', 'machines.nodekeeper.io', '-n', NS]).items.find((x: { metadata: { name: string } }) => x.metadata.name === 'node-1');
      return m?.status?.phase === 'Unknown' && m;
    }, 30_000);
    assert.equal(back.spec.machineId, '1'.repeat(32));
    await waitFor('the summary counts it', () => {
      const s = getJson(['get', 'clusters.nodekeeper.io', 'alpha']).status?.machineSummary;
      return s?.mirrored === 1 && s.phases.Unknown === 1 && s.problems.some((p: { type: string; status: string }) => p.type === 'Ready' && p.status === 'Unknown');
    }, 30_000);
  });

  test('unregister removes the Cluster, Lease and Machines from the host', async () => {
    const out = await nk(['unregister']);
    assert.match(out, /cluster\/alpha/);
    assert.throws(() => kubectl(['get', 'clusters.nodekeeper.io', 'alpha']), /NotFound|not found/);
    assert.equal(getJson(['get', 'machines.nodekeeper.io', '-n', NS]).items.length, 0);
    assert.match(await nk(['host', 'status']), /Not registered/);
  });
});
