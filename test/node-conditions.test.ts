/**
 * nodekeeper's Node conditions on a real member cluster (reference kube-apiserver), with
 * a real coordinator running as a user that has ONLY the member role of
 * coordinator/src/member/member-rbac.ts, and real agents whose kubelet stand-ins run
 * under the supervisor (so a test can stop one), sharing a real containerd. The test
 * plays the kubelet's part on the Nodes: it keeps Ready, MemoryPressure, DiskPressure,
 * PIDPressure and NetworkUnavailable, which nodekeeper must never touch.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { memberApiRbac } from '../coordinator/src/member/member-rbac.ts';
import { startContainerdWithNetwork, type RunningContainerd } from './harness/containerd.ts';
import { startApiServer, startEtcd, type ApiServer, type Etcd, type KubeUser } from './harness/kube.ts';
import { createToken, nkctlOk, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { makeSupervisedNode, startNodeAgent, stopNode, type SupervisedNode } from './harness/supervised-node.ts';

type Cond = { type: string; status: string; reason?: string; message?: string; lastTransitionTime?: string; lastHeartbeatTime?: string };
type NodeObj = { metadata: { name: string }; spec?: { unschedulable?: boolean }; status: { conditions?: Cond[] } };

const OURS = ['KubeletUnhealthy', 'ContainerRuntimeUnhealthy', 'FrequentKubeletRestart', 'FrequentContainerdRestart', 'ReadonlyFilesystem',
  'NetworkPluginUnhealthy', 'SystemdUnitsReady', 'RebootRequired', 'NodekeeperManaged'];
const KUBELET_TYPES = ['Ready', 'MemoryPressure', 'DiskPressure', 'PIDPressure', 'NetworkUnavailable'];

/**
 * Cluster API MachineHealthCheck's `unhealthyConditions` semantics, written from its
 * docs: a Node is unhealthy when one of its conditions has the rule's type and status
 * and has had it for at least the rule's timeout (since lastTransitionTime).
 * https://cluster-api.sigs.k8s.io/tasks/automated-machine-management/healthchecking
 */
export function mhcUnhealthy(node: NodeObj, rules: ReadonlyArray<{ type: string; status: string; timeoutSeconds: number }>, now: number): boolean {
  return rules.some((r) => (node.status.conditions ?? []).some((c) =>
    c.type === r.type && c.status === r.status && c.lastTransitionTime !== undefined && now - Date.parse(c.lastTransitionTime) >= r.timeoutSeconds * 1000));
}

/** One condition as the writer's debug log and the tests spell it. */
const spell = (c: Cond) => `${c.type}=${c.status} ${c.reason}: ${c.message}`;

/**
 * Writes that changed nothing: from the coordinator's 'Node conditions written' debug
 * lines (of process `pid`), each condition sent is compared with what that node had for
 * that type before (`initial`, else the previous write). Returns the redundant ones.
 */
export function redundantWrites(log: string, pid: number, initial: ReadonlyMap<string, string> = new Map()): string[] {
  const last = new Map(initial);
  const out: string[] = [];
  for (const line of log.split('\n')) {
    if (!line.includes('"Node conditions written"')) continue;
    const e = JSON.parse(line) as { pid: number; node: string; conditions: string[] };
    if (e.pid !== pid) continue;
    for (const c of e.conditions) {
      const key = `${e.node}|${c.slice(0, c.indexOf('='))}`;
      if (last.get(key) === c) out.push(`${e.node}: ${c}`);
      last.set(key, c);
    }
  }
  return out;
}

describe('Node conditions on the member cluster', { timeout: 420_000 }, () => {
  let dir: string;
  let etcd: Etcd;
  let member: ApiServer;
  let containerd: RunningContainerd;
  let coord: CoordinatorProc;
  let coordKubeconfig: string;
  const nodes: SupervisedNode[] = [];
  const names = ['node-a', 'node-b', 'node-c'];
  /** A read-only bind mount a test made (unmounted by it, or by after() if it failed half-way). */
  let readOnlyMount: string | null = null;
  const coordUser: KubeUser = { name: 'nodekeeper-coordinator', token: randomBytes(24).toString('hex'), groups: [] };

  const k = (args: string[], input?: string) => member.kubectl(args, input === undefined ? {} : { input });
  const getNode = (name: string): NodeObj => JSON.parse(k(['get', 'node', name, '-o', 'json']));
  const cond = (name: string, type: string) => getNode(name).status.conditions?.find((c) => c.type === type);
  const foreign = (n: NodeObj) => JSON.stringify((n.status.conditions ?? []).filter((c) => !OURS.includes(c.type)));
  const now = () => new Date(Math.floor(Date.now() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  /** What a kubelet does every 10 s: its own conditions, by strategic merge on the status subresource. */
  const kubeletHeartbeat = (name: string, ready = 'True') => k(['patch', 'node', name, '--subresource=status', '--type=strategic', '-p', JSON.stringify({
    status: {
      conditions: [
        { type: 'Ready', status: ready, reason: ready === 'True' ? 'KubeletReady' : 'KubeletNotReady', message: 'kubelet is posting ready status', lastHeartbeatTime: now(), lastTransitionTime: '2026-12-01T00:00:00Z' },
        ...['MemoryPressure', 'DiskPressure', 'PIDPressure'].map((type) => ({ type, status: 'False', reason: `KubeletHasNo${type}`, message: 'ok', lastHeartbeatTime: now(), lastTransitionTime: '2026-12-01T00:00:00Z' })),
        { type: 'NetworkUnavailable', status: 'False', reason: 'RouteCreated', message: 'routes created', lastHeartbeatTime: now(), lastTransitionTime: '2026-12-01T00:00:00Z' },
      ],
    },
  })]);
  const coordArgs = () => [
    // A grace that a loaded test machine cannot overrun by accident (a reconnect after a restart).
    '--heartbeat-interval', '500', '--liveness-grace', '15000', '--liveness-recover', '500',
    '--fault-hold', '2', '--fault-clear', '3', '--storm-cooldown', '3',
    '--member-kubeconfig', coordKubeconfig, '--node-condition-interval', '1000', '--log-level', 'debug',
  ];
  /** nodekeeper_node_condition_writes_total{result="ok"} from the coordinator's /metrics. */
  const metricsText = async () => {
    const ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
    return new Promise<string>((resolve, reject) => {
      https.get(new URL('/metrics', coord.url), { ca }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString('utf8')));
        res.on('end', () => resolve(body));
      }).on('error', reject);
    });
  };
  /** nodekeeper_node_condition_writes_total{result="ok"} (absent before the first write). */
  const writes = async () => Number(/^nodekeeper_node_condition_writes_total\{result="ok"\} (\d+)$/m.exec(await metricsText())?.[1] ?? '0');
  const allOurs = (name: string) => { const n = getNode(name); return OURS.every((t) => n.status.conditions?.some((c) => c.type === t)); };
  const failWithLog = (err: Error) => {
    throw new Error(`${err.message}\ncoordinator log (tail):\n${coord.log().split('\n').filter((l) => /"level":(40|50|60)|condition/.test(l)).slice(-30).join('\n')}`);
  };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-node-conditions-'));
    etcd = await startEtcd(path.join(dir, 'etcd'));
    member = await startApiServer({ etcd, name: 'member', dir: path.join(dir, 'member'), users: [coordUser] });
    k(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: memberApiRbac({ kind: 'User', name: coordUser.name }) }));
    coordKubeconfig = member.kubeconfig(path.join(dir, 'coordinator.kubeconfig'), coordUser.token);
    containerd = await startContainerdWithNetwork(path.join(dir, 'containerd'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), coordArgs());
    const { token, caCertHash } = await createToken(coord.nkctlConfig, names.length);
    for (const [i, name] of names.entries()) {
      k(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name } }));
      kubeletHeartbeat(name);
      const n = await makeSupervisedNode(dir, { name, machineId: `${i + 1}`.repeat(32), kubeletVersion: 'v1.35.2', runtimeSocket: containerd.socket });
      startNodeAgent(n, { server: coord.url, token, caHash: caCertHash });
      nodes.push(n);
    }
    await waitFor('our conditions on every Node', () => names.every(allOurs), 60_000, 250).catch(failWithLog);
  });

  after(async () => {
    if (readOnlyMount !== null) execFileSync('umount', [readOnlyMount], { stdio: 'pipe' });
    for (const n of nodes) await stopNode(n);
    await coord?.stop();
    await containerd?.stop();
    await member?.stop();
    await etcd?.stop();
  });

  test('the member role grants nodes/status patch and no more than it needs there', () => {
    const can = (...args: string[]) => { try { return member.kubectl(['auth', 'can-i', ...args], { kubeconfig: coordKubeconfig }).trim(); } catch (err) { return String((err as { stdout?: string }).stdout ?? '').trim(); } };
    assert.equal(can('patch', 'nodes', '--subresource=status'), 'yes');
    assert.equal(can('update', 'nodes', '--subresource=status'), 'no');
    assert.equal(can('delete', 'nodes'), 'no');
    assert.equal(can('create', 'pods', '--subresource=eviction'), 'yes');
    assert.equal(can('delete', 'pods'), 'no');
  });

  test('conditions appear on every Node with reasons and messages; the kubelet-owned ones are as the kubelet wrote them', async () => {
    await waitFor('NodekeeperManaged True with versions', () => names.every((n) => cond(n, 'NodekeeperManaged')?.status === 'True'), 30_000, 250).catch(failWithLog);
    await waitFor('the healthy faults derived', () => names.every((n) => cond(n, 'KubeletUnhealthy')?.status === 'False'), 30_000, 250).catch(failWithLog);
    // The versions come with the reports (a loaded machine may be slow to answer `kubelet --version`).
    await waitFor('NodekeeperManaged with the versions', () => names.every((n) => /^agent \S+, kubelet Kubernetes v1\.35\.2, containerd \S+, CNI /.test(cond(n, 'NodekeeperManaged')?.message ?? '')), 30_000, 250).catch(failWithLog);
    for (const name of names) {
      const n = getNode(name);
      const c = Object.fromEntries((n.status.conditions ?? []).map((x) => [x.type, x]));
      assert.deepEqual([c['KubeletUnhealthy']!.status, c['KubeletUnhealthy']!.reason, c['KubeletUnhealthy']!.message], ['False', 'KubeletIsHealthy', 'kubelet on the node is functioning properly']);
      assert.deepEqual([c['ContainerRuntimeUnhealthy']!.status, c['ContainerRuntimeUnhealthy']!.reason], ['False', 'ContainerRuntimeIsHealthy']);
      assert.deepEqual([c['NetworkPluginUnhealthy']!.status, c['NetworkPluginUnhealthy']!.reason], ['False', 'NetworkPluginIsHealthy']);
      assert.equal(c['NodekeeperManaged']!.reason, 'Idle');
      assert.match(c['NodekeeperManaged']!.message!, /^agent \S+, kubelet Kubernetes v1\.35\.2, containerd \S+, CNI /);
      // The supervisor is not systemd: the unit states are not reported, so Unknown, said so.
      assert.deepEqual([c['SystemdUnitsReady']!.status, c['SystemdUnitsReady']!.reason], ['Unknown', 'NotReported']);
      // The agent's host facts: no sentinel, no newer kernel, no read-only data dir.
      assert.deepEqual([c['RebootRequired']!.status, c['RebootRequired']!.reason], ['False', 'NoRebootRequired']);
      assert.deepEqual([c['ReadonlyFilesystem']!.status, c['ReadonlyFilesystem']!.reason], ['False', 'FilesystemIsNotReadOnly']);
      for (const t of OURS) assert.ok(Date.parse(c[t]!.lastTransitionTime!) <= Date.now() && c[t]!.lastHeartbeatTime, `${t} has true times`);
      assert.deepEqual(JSON.parse(foreign(n)).map((x: Cond) => x.type), KUBELET_TYPES);
      assert.equal(c['Ready']!.reason, 'KubeletReady');
    }
  });

  test('written on change only: a steady fleet, with the kubelet writing its own conditions, gets no write that changes nothing', async () => {
    const settled = await writes();
    assert.ok(settled >= names.length, `at least one write per Node so far, got ${settled}`);
    for (let i = 0; i < 10; i++) {
      for (const n of names) kubeletHeartbeat(n);
      await new Promise((r) => setTimeout(r, 500));
    }
    // Every write (the metric and the debug log agree) changed a condition; on an idle
    // machine there is none at all in this window, on a loaded one a probe that timed
    // out (a version briefly unknown) is a change, and is written as one.
    const log = coord.log();
    assert.equal((log.match(/"Node conditions written"/g) ?? []).length, await writes());
    assert.deepEqual(redundantWrites(log, coord.child.pid!), []);
  });

  test('a broken kubelet turns KubeletUnhealthy True, and False after repair; lastTransitionTime moves exactly at the transitions; MHC matching selects only that node', async () => {
    const seen: Array<{ status: string; ltt: string }> = [];
    const watching = { on: true };
    const watcher = (async () => {
      while (watching.on) {
        const c = cond('node-b', 'KubeletUnhealthy');
        if (c !== undefined) seen.push({ status: c.status, ltt: c.lastTransitionTime! });
        kubeletHeartbeat('node-b'); // the kubelet keeps writing its own conditions meanwhile
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    const before = cond('node-b', 'KubeletUnhealthy')!;
    await nodes[1]!.services.stop('kubelet.service');
    await waitFor('KubeletUnhealthy True on node-b', () => cond('node-b', 'KubeletUnhealthy')?.status === 'True', 30_000, 250).catch(failWithLog);
    const broken = cond('node-b', 'KubeletUnhealthy')!;
    assert.notEqual(broken.lastTransitionTime, before.lastTransitionTime);
    assert.match(broken.reason!, /^[A-Z][A-Za-z0-9]*$/);
    assert.ok(broken.message, 'the fault says what is wrong');
    // MachineHealthCheck: unhealthyConditions [{type: KubeletUnhealthy, status: "True", timeout: 0s}].
    const rules = [{ type: 'KubeletUnhealthy', status: 'True', timeoutSeconds: 0 }];
    assert.deepEqual(names.filter((n) => mhcUnhealthy(getNode(n), rules, Date.now())), ['node-b']);
    // With a timeout, the node is selected only once the condition has held that long.
    assert.deepEqual(names.filter((n) => mhcUnhealthy(getNode(n), [{ ...rules[0]!, timeoutSeconds: 300 }], Date.now())), []);
    // Held broken a while: still True, the transition time unchanged.
    await new Promise((r) => setTimeout(r, 4000));
    assert.deepEqual([cond('node-b', 'KubeletUnhealthy')!.status, cond('node-b', 'KubeletUnhealthy')!.lastTransitionTime], ['True', broken.lastTransitionTime]);
    await nodes[1]!.services.restart('kubelet.service');
    await waitFor('KubeletUnhealthy False on node-b again', () => cond('node-b', 'KubeletUnhealthy')?.status === 'False', 30_000, 250).catch(failWithLog);
    const repaired = cond('node-b', 'KubeletUnhealthy')!;
    assert.equal(repaired.reason, 'KubeletIsHealthy');
    assert.ok(Date.parse(repaired.lastTransitionTime!) > Date.parse(broken.lastTransitionTime!));
    await new Promise((r) => setTimeout(r, 2000));
    watching.on = false;
    await watcher;
    // Every observation: the transition time changes when, and only when, the status does.
    const runs = seen.filter((o, i) => i === 0 || o.status !== seen[i - 1]!.status);
    assert.deepEqual(runs.map((r) => r.status), ['False', 'True', 'False'], JSON.stringify(seen));
    for (const [i, o] of seen.entries()) {
      if (i === 0) continue;
      const p = seen[i - 1]!;
      if (o.status === p.status) assert.equal(o.ltt, p.ltt, `no transition, same time: ${JSON.stringify(seen)}`);
      else assert.notEqual(o.ltt, p.ltt);
    }
    assert.deepEqual(names.filter((n) => mhcUnhealthy(getNode(n), rules, Date.now())), []);
    // The kubelet's conditions are what it last wrote, untouched by our writes in between.
    assert.deepEqual(JSON.parse(foreign(getNode('node-b'))).map((x: Cond) => [x.type, x.reason]), KUBELET_TYPES.map((t) => [t, t === 'Ready' ? 'KubeletReady' : t === 'NetworkUnavailable' ? 'RouteCreated' : `KubeletHasNo${t}`]));
  });

  test('a stopped agent: NodekeeperManaged and the rest turn Unknown after the liveness grace, and back when it returns', async () => {
    const n = nodes[2]!;
    const stoppedAt = Date.now();
    await n.agent?.stop();
    await waitFor('NodekeeperManaged Unknown on node-c', () => cond('node-c', 'NodekeeperManaged')?.status === 'Unknown', 60_000, 250).catch(failWithLog);
    // The grace runs from the agent's last message, at most one heartbeat (500 ms) before it stopped.
    assert.ok(Date.now() - stoppedAt >= 15_000 - 500, 'not before the liveness grace');
    const c = getNode('node-c').status.conditions!.filter((x) => OURS.includes(x.type));
    assert.ok(c.every((x) => x.status === 'Unknown' && x.reason === 'AgentSilent'), JSON.stringify(c));
    assert.equal(cond('node-a', 'NodekeeperManaged')?.status, 'True', 'the others are unaffected');
    startNodeAgent(n, { server: coord.url });
    await waitFor('NodekeeperManaged True again', () => cond('node-c', 'NodekeeperManaged')?.status === 'True', 40_000, 250).catch(failWithLog);
    await waitFor('KubeletUnhealthy False again', () => cond('node-c', 'KubeletUnhealthy')?.status === 'False', 40_000, 250).catch(failWithLog);
  });

  test('RebootRequired turns True from the reboot-required sentinel file, with the packages that asked, and False once it is gone', async () => {
    const sentinel = path.join(nodes[0]!.root, 'var/run/reboot-required');
    await mkdir(path.dirname(sentinel), { recursive: true });
    const before = cond('node-a', 'RebootRequired')!;
    await writeFile(`${sentinel}.pkgs`, 'linux-image-6.1.0-26-amd64\nlinux-base\n');
    await writeFile(sentinel, '*** System restart required ***\n');
    await waitFor('RebootRequired True on node-a', () => cond('node-a', 'RebootRequired')?.status === 'True', 30_000, 250).catch(failWithLog);
    const c = cond('node-a', 'RebootRequired')!;
    assert.equal(c.reason, 'RebootRequired');
    assert.equal(c.message, '/var/run/reboot-required exists (packages: linux-image-6.1.0-26-amd64, linux-base)');
    assert.notEqual(c.lastTransitionTime, before.lastTransitionTime);
    assert.equal(cond('node-b', 'RebootRequired')?.status, 'False', 'only the node with the sentinel');
    await rm(sentinel);
    await rm(`${sentinel}.pkgs`);
    await waitFor('RebootRequired False again', () => cond('node-a', 'RebootRequired')?.status === 'False', 30_000, 250).catch(failWithLog);
  });

  test('ReadonlyFilesystem turns True while the kubelet data dir is on a read-only mount, naming it, and False once it is not', async (t) => {
    // A read-only bind mount over node-b's /var/lib/kubelet, in the host's mount table (the
    // agent reads PID 1's mountinfo, as on a node): needs root and mount(8).
    const dirPath = path.join(nodes[1]!.root, 'var/lib/kubelet');
    try {
      execFileSync('mount', ['--bind', dirPath, dirPath], { stdio: 'pipe' });
    } catch (err) {
      t.skip(`cannot bind-mount here (needs root): ${(err as Error).message.split('\n')[0]}`);
      return;
    }
    readOnlyMount = dirPath;
    try {
      execFileSync('mount', ['-o', 'remount,bind,ro', dirPath], { stdio: 'pipe' });
      await waitFor('ReadonlyFilesystem True on node-b', () => cond('node-b', 'ReadonlyFilesystem')?.status === 'True', 30_000, 250).catch(failWithLog);
      const c = cond('node-b', 'ReadonlyFilesystem')!;
      assert.deepEqual([c.reason, c.message], ['FilesystemIsReadOnly', 'read-only: /var/lib/kubelet']);
      assert.equal(cond('node-a', 'ReadonlyFilesystem')?.status, 'False', 'only the node with the read-only mount');
    } finally {
      execFileSync('umount', [dirPath], { stdio: 'pipe' });
      readOnlyMount = null;
    }
    await waitFor('ReadonlyFilesystem False again', () => cond('node-b', 'ReadonlyFilesystem')?.status === 'False', 30_000, 250).catch(failWithLog);
  });

  test('a hostile Node (garbage conditions, a huge list, ours with bad times, duplicates) is handled without a crash and without touching other types', async () => {
    const junk: Cond[] = [
      ...Array.from({ length: 400 }, (_, i) => ({ type: `Junk${i}`, status: 'Maybe', reason: 'x'.repeat(i % 50), message: '\u0000\u202e'.repeat(i % 7) })),
      { type: '', status: '' },
      { type: 'KubeletUnhealthy', status: 'True', reason: 'Forged', message: 'not ours', lastTransitionTime: '2999-01-01T00:00:00Z' },
      { type: 'NodekeeperManaged', status: 'False', reason: 'Forged', message: 'duplicate' },
      { type: 'NodekeeperManaged', status: 'False', reason: 'Forged2', message: 'duplicate 2' },
    ];
    // Merge-patched as a whole list (replacing it), as a careless controller would.
    const current = getNode('node-a').status.conditions!.filter((c) => !OURS.includes(c.type) || c.type === 'RebootRequired');
    k(['patch', 'node', 'node-a', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { conditions: [...current, ...junk] } })]);
    const hostile = getNode('node-a');
    assert.ok(hostile.status.conditions!.length >= 400, 'the API server kept the hostile list');
    const foreignBefore = JSON.parse(foreign(hostile)) as Cond[];
    await waitFor('our conditions repaired on node-a', () => {
      const n = getNode('node-a');
      const ku = n.status.conditions!.find((c) => c.type === 'KubeletUnhealthy')!;
      const nm = n.status.conditions!.find((c) => c.type === 'NodekeeperManaged')!;
      return ku.status === 'False' && Date.parse(ku.lastTransitionTime!) <= Date.now() && nm.status === 'True' && OURS.every((t) => n.status.conditions!.some((c) => c.type === t));
    }, 30_000, 250).catch(failWithLog);
    const after = getNode('node-a');
    assert.equal(foreign(after), JSON.stringify(foreignBefore), 'every entry not ours is byte-identical and in place');
    assert.equal(coord.child.exitCode, null, 'the coordinator is still running');
    // The other nodes are still kept.
    assert.equal(cond('node-b', 'NodekeeperManaged')?.status, 'True');
  });

  test('a coordinator restart rewrites nothing: the Nodes keep their conditions and transition times', async () => {
    // The first entry of each of our types (the one a strategic merge updates; the hostile test left duplicates).
    const ours = (n: string) => [...new Map((getNode(n).status.conditions ?? []).filter((c) => OURS.includes(c.type)).reverse().map((c) => [c.type, c])).values()];
    const before = new Map(names.flatMap((n) => ours(n).map((c) => [`${n}|${c.type}`, c] as const)));
    await coord.stop();
    coord = await startCoordinator(coord.dataDir, [...coordArgs(), '--port', String(coord.port)]);
    await waitFor('every agent connected again', async () => /^nodekeeper_connected_agents 3$/m.test(await metricsText()), 60_000, 250);
    await new Promise((r) => setTimeout(r, 5000));
    // Nothing the Nodes already said was written again (on an idle machine: no write at all)...
    assert.deepEqual(redundantWrites(coord.log(), coord.child.pid!, new Map([...before].map(([k, c]) => [k, spell(c)]))), []);
    // ...and every condition whose status held across the restart kept its transition time.
    let held = 0;
    for (const n of names) {
      for (const c of ours(n)) {
        const b = before.get(`${n}|${c.type}`)!;
        if (b.status !== c.status) continue;
        held += 1;
        assert.equal(c.lastTransitionTime, b.lastTransitionTime, `${n} ${c.type}`);
      }
    }
    assert.ok(held >= before.size - 3, `statuses held across the restart: ${held} of ${before.size}`);
  });

  test('NeedsHuman is visible on the Node: NodekeeperManaged keeps True with reason NeedsHuman and the story', async () => {
    // A ladder that goes straight to a human, so the test need not wait for restarts to fail.
    const rule = path.join(dir, 'rule.json');
    await writeFile(rule, JSON.stringify({
      apiVersion: 'nodekeeper.io/v1alpha1', kind: 'RemediationRule', metadata: { name: 'kubelet-to-human' },
      spec: { fault: 'KubeletUnhealthy', forSeconds: 1, ladder: [{ action: 'CordonAndNotify' }] },
    }));
    await nkctlOk(coord.nkctlConfig, ['apply', '-f', rule]);
    await nodes[1]!.services.stop('kubelet.service');
    await waitFor('NodekeeperManaged NeedsHuman on node-b', () => cond('node-b', 'NodekeeperManaged')?.reason === 'NeedsHuman', 60_000, 250).catch(failWithLog);
    const c = cond('node-b', 'NodekeeperManaged')!;
    assert.equal(c.status, 'True', 'the agent is still connected and reporting');
    assert.match(c.message!, /remediation NeedsHuman: /);
    assert.equal(cond('node-b', 'KubeletUnhealthy')?.status, 'True');
    assert.equal(getNode('node-b').spec?.unschedulable, true, 'CordonAndNotify cordoned the Node');
    assert.equal(cond('node-a', 'NodekeeperManaged')?.reason, 'Idle');
    await nodes[1]!.services.restart('kubelet.service');
  });

  test('a deleted machine: its Node loses our conditions, and only ours', async () => {
    const kubeletBefore = foreign(getNode('node-c'));
    assert.ok(allOurs('node-c'));
    await nkctlOk(coord.nkctlConfig, ['machine', 'delete', 'node-c']);
    await waitFor('our conditions gone from node-c', () => !(getNode('node-c').status.conditions ?? []).some((c) => OURS.includes(c.type)), 30_000, 250).catch(failWithLog);
    assert.equal(foreign(getNode('node-c')), kubeletBefore, "the kubelet's conditions are untouched");
    assert.ok(allOurs('node-a') && allOurs('node-b'), 'the other Nodes keep theirs');
    // Logged once the patch was answered, which can be after the test already saw the Node change.
    await waitFor('the removal logged', () => /machine deleted: its Node conditions removed/.test(coord.log()), 15_000, 100);
  });
});
