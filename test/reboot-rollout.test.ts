/**
 * Reboot rollouts against a real kube-apiserver (member cluster), a real coordinator and
 * real agents under the supervisor, each node with the reboot adapter
 * (harness/reboot-node.ts): an agent's node.reboot kills the node's processes, gives it
 * a new boot id (or not, or another kernel) and starts it again. Shown: two nodes go one
 * at a time (cordon, drain, reboot, new boot on the expected kernel, Ready, uncordon);
 * a node back on the old boot id or the old kernel halts the rollout (RebootFailed) and
 * is never rebooted again by itself; blocking pods and firing alerts hold and releasing
 * them lets it go on; an unknown time zone is refused; a coordinator killed with -9
 * mid-reboot resumes without a second reboot.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startContainerdWithNetwork, type RunningContainerd } from './harness/containerd.ts';
import { startApiServer, startEtcd, type ApiServer, type Etcd } from './harness/kube.ts';
import { createToken, nkctl, nkctlOk, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { bootFacts, rebootAdapter, type RebootAdapter } from './harness/reboot-node.ts';
import { makeSupervisedNode, startNodeAgent, stopNode, type SupervisedNode } from './harness/supervised-node.ts';
import { startTestKubelet, type TestKubelet } from './harness/test-kubelet.ts';

type Obj = { metadata: { name: string }; status: Record<string, any> };
const OLD = '6.1.0-25-amd64';
/**
 * The soak of the reboots that must complete. After a node is back (new boot, Node
 * Ready), its agent's next probe (1 s apart) must report it healthy within the soak; a
 * 1 s soak missed it in a loaded CI run (UnhealthyDuringSoak), as rollout-drain's did.
 */
const SOAK = '5s';
const NEW = '6.1.0-26-amd64';

describe('reboot rollouts', { timeout: 600_000 }, () => {
  let dir: string;
  let etcd: Etcd;
  let member: ApiServer;
  let podDeleter: TestKubelet;
  let containerd: RunningContainerd;
  let coord: CoordinatorProc;
  let prom: Server;
  let promUrl = '';
  let firing: { labels: Record<string, string>; state: string }[] = [];
  let caHash: string | null = null;
  const nodes = new Map<string, SupervisedNode>();
  const adapters = new Map<string, RebootAdapter>();

  const nk = (args: string[]) => nkctlOk(coord.nkctlConfig, args);
  const k = (args: string[], input?: string) => member.kubectl(args, input === undefined ? {} : { input });
  const json = (args: string[]) => JSON.parse(k([...args, '-o', 'json']));
  const now = () => new Date().toISOString();
  const unschedulable = (name: string) => json(['get', 'node', name]).spec.unschedulable === true;
  const rollout = async (name: string) => (JSON.parse(await nk(['rollout', 'list', '-o', 'json'])) as { items: Obj[] }).items.find((r) => r.metadata.name === name);
  const phaseOf = async (name: string) => (await rollout(name))?.status['phase'] as string | undefined;
  /** A ReplicaSet's pod (a drain may evict it, by kubectl drain's rules), Running on `node`. */
  const pod = (name: string, node: string, labels: Record<string, string>) => {
    const owner = { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'app', uid: '00000000-0000-4000-8000-0000000000a1', controller: true };
    k(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', labels, ownerReferences: [owner] }, spec: { nodeName: node, containers: [{ name: 'app', image: 'registry.invalid/app:1' }], terminationGracePeriodSeconds: 1 } }));
    k(['patch', 'pod', name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { phase: 'Running' } })]);
  };
  /** The coordinator's own event log (reasons of one object, oldest first), read from its store. */
  const events = (object: string, since = 0): { reason: string; message: string; id: number }[] => {
    const db = new Database(path.join(coord.dataDir, 'state.db'), { readonly: true, fileMustExist: true });
    try {
      return db.prepare('SELECT id, reason, message FROM events WHERE object = ? AND id > ? ORDER BY id').all(object, since) as { reason: string; message: string; id: number }[];
    } finally {
      db.close();
    }
  };
  const lastEventId = () => {
    const db = new Database(path.join(coord.dataDir, 'state.db'), { readonly: true, fileMustExist: true });
    try {
      return (db.prepare('SELECT max(id) AS id FROM events').get() as { id: number | null }).id ?? 0;
    } finally {
      db.close();
    }
  };
  // --storm-cooldown 3: on a loaded machine both agents' heartbeats can lag at once, which the
  // partition guard rightly takes for a partition and holds rollouts for; not for 10 minutes here.
  const coordArgs = () => ['--heartbeat-interval', '500', '--liveness-grace', '5000', '--liveness-recover', '500', '--member-kubeconfig', member.adminKubeconfig, '--drain-timeout', '20000', '--max-unavailable', '2', '--storm-cooldown', '3'];
  const startAgentOf = (n: SupervisedNode, token?: string) => startNodeAgent(n, { server: coord.url, caHash, ...(token === undefined ? {} : { token }), extraArgs: ['--allow-reboot'] });
  const completed = async (name: string, timeoutMs = 90_000) => waitFor(`${name} Completed`, async () => (await phaseOf(name)) === 'Completed', timeoutMs).catch(async (err: Error) => {
    throw new Error(`${err.message}\n${await nk(['rollout', 'describe', name]).catch((e: Error) => e.message)}\ncoordinator log (tail):\n${coord.log().split('\n').filter((l) => /"level":(40|50)|reboot/.test(l)).slice(-30).join('\n')}`);
  });

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-reboot-'));
    etcd = await startEtcd(path.join(dir, 'etcd'));
    member = await startApiServer({ etcd, name: 'member', dir: path.join(dir, 'member') });
    // The Nodes have no kubelet: this loop confirms evicted pods gone, so drains can finish.
    podDeleter = startTestKubelet(member, { delayMs: 500 });
    containerd = await startContainerdWithNetwork(path.join(dir, 'containerd'));
    prom = createServer((req, res) => {
      if (req.url !== '/api/v1/alerts') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'success', data: { alerts: firing } }));
    });
    await new Promise<void>((r) => prom.listen(0, '127.0.0.1', r));
    promUrl = `http://127.0.0.1:${(prom.address() as { port: number }).port}`;
    coord = await startCoordinator(path.join(dir, 'coordinator'), coordArgs());
    const t = await createToken(coord.nkctlConfig, 2);
    caHash = t.caCertHash;
    for (const [i, name] of ['node-a', 'node-b'].entries()) {
      const n = await makeSupervisedNode(dir, { name, machineId: `${i + 1}`.repeat(32), kubeletVersion: 'v1.35.2', runtimeSocket: containerd.socket });
      // Running the old kernel with a newer one installed: the expected kernel after a reboot is NEW.
      await bootFacts(n, { kernel: OLD, installed: [OLD, NEW] });
      nodes.set(name, n);
      startAgentOf(n, t.token);
      adapters.set(name, rebootAdapter(n, () => startAgentOf(n), { kernel: NEW }));
      k(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name } }));
      k(['patch', 'node', name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', lastHeartbeatTime: now(), lastTransitionTime: now() }] } })]);
    }
    await waitFor('two healthy machines reporting their boot', async () => {
      const items = (JSON.parse(await nk(['get', 'machines', '-o', 'json'])) as { items: Obj[] }).items;
      return items.length === 2 && items.every((m) => m.status['phase'] === 'Ready');
    }, 60_000);
  });

  after(async () => {
    for (const a of adapters.values()) a.stop();
    await podDeleter?.stop();
    for (const n of nodes.values()) await stopNode(n);
    await coord?.stop();
    await new Promise((r) => prom?.close(r));
    await containerd?.stop();
    await member?.stop();
    await etcd?.stop();
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(dir, { recursive: true, force: true });
  });

  test('two nodes reboot one at a time: cordon, drain, reboot, new boot on the expected kernel, Ready, uncordon', async () => {
    pod('web-a', 'node-a', { app: 'web' });
    pod('web-b', 'node-b', { app: 'web' });
    const from = lastEventId();
    await nk(['reboot', 'create', 'kernel', '--names', 'node-a,node-b', '--soak', SOAK]);
    // Never both nodes cordoned (or rebooting) at once.
    let both = false;
    const sampler = setInterval(() => {
      try {
        if (unschedulable('node-a') && unschedulable('node-b')) both = true;
      } catch {
        // a kubectl hiccup: the next sample counts
      }
    }, 200);
    try {
      // Generous: each node's agent and kubelet start again from cold, on a machine shared with other tests.
      await completed('kernel', 240_000);
    } finally {
      clearInterval(sampler);
    }
    assert.equal(both, false, 'the two nodes were cordoned at the same time');
    assert.equal(adapters.get('node-a')!.reboots.length, 1);
    assert.equal(adapters.get('node-b')!.reboots.length, 1);
    for (const name of ['node-a', 'node-b']) {
      const node = new Set(['RebootRequested', 'Cordoned', 'Drained', 'RebootStarted', 'RebootSucceeded', 'RebootFailed', 'Uncordoned']);
      const reasons = events(`machine/${name}`, from).map((e) => e.reason).filter((r) => node.has(r));
      assert.deepEqual(reasons, ['RebootRequested', 'Cordoned', 'Drained', 'RebootStarted', 'RebootSucceeded', 'Uncordoned'], name);
      assert.equal(unschedulable(name), false);
      const ok = events(`machine/${name}`, from).find((e) => e.reason === 'RebootSucceeded')!;
      assert.match(ok.message, new RegExp(`came back on a new boot .*kernel ${NEW}\\), Node Ready`));
    }
    // One at a time: the second node's reboot started after the first was uncordoned.
    const all = [...events('machine/node-a', from), ...events('machine/node-b', from)].sort((x, y) => x.id - y.id);
    const order = all.filter((e) => e.reason === 'RebootStarted' || e.reason === 'Uncordoned').map((e) => e.reason);
    assert.deepEqual(order, ['RebootStarted', 'Uncordoned', 'RebootStarted', 'Uncordoned']);
    assert.ok(podDeleter.terminating.get('default/web-a')?.goneAt != null, 'web-a was evicted by the drain, and waited for');
  });

  test('an unknown time zone is refused with NK_WINDOW_UNKNOWN_TIME_ZONE; nothing is created', async () => {
    const r = await nkctl(coord.nkctlConfig, ['reboot', 'create', 'tz', '--names', 'node-a', '--window', 'Mon-Fri 02:00-05:00', '--time-zone', 'Mars/Olympus_Mons']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /NK_WINDOW_UNKNOWN_TIME_ZONE/);
    assert.match(r.stderr, /unknown time zone "Mars\/Olympus_Mons"/);
    assert.equal(await rollout('tz'), undefined);
  });

  test('blocking pods on a Node hold its reboot (RebootHeld); deleting them releases it', async () => {
    adapters.get('node-a')!.behaviour = {};
    pod('backup-a', 'node-a', { 'reboot-blocker': 'true' });
    const from = lastEventId();
    await nk(['reboot', 'create', 'blocked', '--names', 'node-a', '--soak', SOAK, '--blocking-pods', 'reboot-blocker=true']);
    await waitFor('held by the blocking pod', async () => /waiting: blocking pods \(reboot-blocker=true\) on Node node-a: default\/backup-a/.test((await rollout('blocked'))?.status['message'] ?? ''), 30_000);
    assert.match(await nk(['rollout', 'describe', 'blocked']), /blocking pods/);
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(adapters.get('node-a')!.reboots.length, 1, 'not rebooted while held');
    assert.equal(unschedulable('node-a'), false, 'not even cordoned');
    assert.ok(events('machine/node-a', from).some((e) => e.reason === 'RebootHeld' && /backup-a/.test(e.message)));
    k(['delete', 'pod', 'backup-a', '--grace-period=0', '--force']);
    await completed('blocked');
    assert.equal(adapters.get('node-a')!.reboots.length, 2);
  });

  test('a firing alert holds the rollout; an ignored one does not; clearing it releases; an unreachable Prometheus holds', async () => {
    firing = [{ labels: { alertname: 'NodeDown' }, state: 'firing' }, { labels: { alertname: 'Watchdog' }, state: 'firing' }];
    await nk(['reboot', 'create', 'alerting', '--names', 'node-b', '--soak', SOAK, '--prometheus', promUrl, '--alert-filter', '^Watchdog$']);
    await waitFor('held by NodeDown', async () => /waiting: 1 alert\(s\) firing in Prometheus at .*: NodeDown$/.test((await rollout('alerting'))?.status['message'] ?? ''), 30_000);
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(adapters.get('node-b')!.reboots.length, 1, 'not rebooted while the alert fires');
    firing = [{ labels: { alertname: 'Watchdog' }, state: 'firing' }];
    await completed('alerting');
    assert.equal(adapters.get('node-b')!.reboots.length, 2);

    await nk(['reboot', 'create', 'prom-down', '--names', 'node-b', '--prometheus', 'http://127.0.0.1:9', '--soak', '1s']);
    await waitFor('held: Prometheus unreachable', async () => /Prometheus at http:\/\/127.0.0.1:9 is unreachable/.test((await rollout('prom-down'))?.status['message'] ?? ''), 30_000);
    await nk(['rollout', 'abort', 'prom-down']);
    assert.equal(adapters.get('node-b')!.reboots.length, 2);
  });

  test('a node back on the OLD boot id halts the rollout (RebootFailed); it is never rebooted again, nor is the next node', async () => {
    const a = adapters.get('node-a')!;
    a.behaviour = { sameBoot: true };
    const before = { a: a.reboots.length, b: adapters.get('node-b')!.reboots.length };
    const from = lastEventId();
    // node-a first (its turn is by hash order: names pick it and node-b; assert on whichever went first).
    await nk(['reboot', 'create', 'oldboot', '--names', 'node-a', '--soak', '1s']);
    await waitFor('Paused RebootFailed', async () => {
      const r = await rollout('oldboot');
      return r?.status['phase'] === 'Paused' && r.status['reason'] === 'RebootFailed';
    }, 60_000);
    const r = await rollout('oldboot');
    assert.match(r!.status['message'], /node-a reconnected on the old boot id .*: the node did not reboot.*nkctl rollout resume oldboot/);
    assert.equal(r!.status['continueWith'], 'nkctl rollout resume oldboot');
    await new Promise((res) => setTimeout(res, 5000));
    assert.equal(a.reboots.length, before.a + 1, 'exactly one reboot: never sent again');
    assert.equal(adapters.get('node-b')!.reboots.length, before.b);
    const reasons = events('machine/node-a', from).map((e) => e.reason);
    assert.equal(reasons.filter((x) => x === 'RebootStarted').length, 1);
    assert.ok(reasons.includes('RebootFailed'));
    await waitFor('node-a uncordoned', () => !unschedulable('node-a'), 20_000, 200);
    await nk(['rollout', 'abort', 'oldboot']);
    a.behaviour = { kernel: NEW };
  });

  test('a node back on a new boot but the OLD kernel halts the rollout (RebootFailed, omni#1552)', async () => {
    const b = adapters.get('node-b')!;
    // node-b now runs NEW; install a newer one it will fail to boot into.
    await bootFacts(nodes.get('node-b')!, { kernel: NEW, installed: [OLD, NEW, '6.1.0-27-amd64'] });
    b.behaviour = {};
    await waitFor('node-b reports the newer kernel installed', () => {
      const db = new Database(path.join(coord.dataDir, 'state.db'), { readonly: true, fileMustExist: true });
      try {
        return ((db.prepare("SELECT report FROM machines WHERE name = 'node-b'").get() as { report: string | null }).report ?? '').includes('"newestKernel":"6.1.0-27-amd64"');
      } finally {
        db.close();
      }
    }, 90_000, 500);
    const before = b.reboots.length;
    await nk(['reboot', 'create', 'oldkernel', '--names', 'node-b', '--soak', '1s']);
    await waitFor('Paused RebootFailed', async () => (await rollout('oldkernel'))?.status['reason'] === 'RebootFailed', 60_000);
    assert.match((await rollout('oldkernel'))!.status['message'], new RegExp(`node-b came back on a new boot .* but on kernel ${NEW}, not 6.1.0-27-amd64`));
    await new Promise((res) => setTimeout(res, 3000));
    assert.equal(b.reboots.length, before + 1);
    await nk(['rollout', 'abort', 'oldkernel']);
  });

  test('a coordinator killed with -9 while the node is down resumes the reboot without sending it again', async () => {
    const a = adapters.get('node-a')!;
    a.behaviour = { kernel: NEW, downMs: 6000 };
    const before = a.reboots.length;
    const from = lastEventId();
    await nk(['reboot', 'create', 'killed', '--names', 'node-a', '--soak', SOAK]);
    await waitFor('the reboot sent', () => events('machine/node-a', from).some((e) => e.reason === 'RebootStarted'), 30_000, 100);
    await coord.stop('SIGKILL');
    coord = await startCoordinator(coord.dataDir, [...coordArgs(), '--port', String(coord.port)]);
    await completed('killed', 120_000);
    assert.equal(a.reboots.length, before + 1, 'one reboot');
    const reasons = events('machine/node-a', from).map((e) => e.reason);
    assert.equal(reasons.filter((x) => x === 'RebootStarted').length, 1, reasons.join(','));
    assert.equal(reasons.filter((x) => x === 'RebootSucceeded').length, 1);
    assert.equal(unschedulable('node-a'), false);
  });

  test('--only-required selects the machines whose agent reports a reboot is required; a closed window holds them (RebootHeld)', async () => {
    // node-b runs 6.1.0-26 with 6.1.0-27 installed (required); node-a runs the newest it has (not required).
    const h = new Date().getUTCHours();
    const hh = (x: number) => `${String(x % 24).padStart(2, '0')}:00`;
    const from = lastEventId();
    await nk(['reboot', 'create', 'required', '--names', 'node-a,node-b', '--only-required', '--window', `${hh(h + 2)}-${hh(h + 3)}`, '--time-zone', 'UTC']);
    const r = await rollout('required');
    assert.deepEqual(r!.status['machines'].map((m: { name: string }) => m.name), ['node-b']);
    await waitFor('held outside its window', async () => /waiting: outside the maintenance window \(every day \d\d:00-\d\d:00 UTC\)/.test((await rollout('required'))?.status['message'] ?? ''), 20_000);
    assert.ok(events('machine/node-b', from).some((e) => e.reason === 'RebootHeld' && /outside the maintenance window/.test(e.message)));
    await nk(['rollout', 'abort', 'required']);
    assert.equal(unschedulable('node-b'), false);
  });

  test('the remediation Reboot rung goes the same way: cordon, drain, reboot, new boot, uncordon', async () => {
    await coord.stop();
    coord = await startCoordinator(coord.dataDir, [...coordArgs(), '--port', String(coord.port), '--fault-hold', '1', '--fault-clear', '2']);
    const file = path.join(dir, 'rule.json');
    await writeFile(file, JSON.stringify({
      apiVersion: 'nodekeeper.io/v1alpha1', kind: 'RemediationRule', metadata: { name: 'kubelet-reboot' },
      // The default rule of this fault restarts the kubelet; an applied rule of the same fault replaces it.
      spec: { fault: 'KubeletUnhealthy', forSeconds: 1, ladder: [{ action: 'Reboot', timeoutSeconds: 120, successWithinSeconds: 60 }], maxAttemptsPerMachine: 1, cooldownSeconds: 2 },
    }));
    await nk(['apply', '-f', file]);
    const n = nodes.get('node-b')!;
    const b = adapters.get('node-b')!;
    b.behaviour = { kernel: '6.1.0-27-amd64' };
    await waitFor('node-b Ready again', async () => JSON.parse(await nk(['get', 'machine', 'node-b', '-o', 'json'])).status.phase === 'Ready', 60_000);
    const before = b.reboots.length;
    const from = lastEventId();
    await n.services.stop('kubelet.service');
    await waitFor('the rung rebooted node-b and it came back', () => events('machine/node-b', from).some((e) => e.reason === 'RebootSucceeded'), 120_000, 250);
    await waitFor('node-b uncordoned', () => events('machine/node-b', from).some((e) => e.reason === 'Uncordoned'), 30_000, 250);
    const node = new Set(['RebootRequested', 'Cordoned', 'Drained', 'RebootStarted', 'RebootSucceeded', 'RebootFailed', 'Uncordoned']);
    const seen = events('machine/node-b', from).filter((e) => node.has(e.reason));
    assert.deepEqual(seen.map((e) => e.reason), ['RebootRequested', 'Cordoned', 'Drained', 'RebootStarted', 'RebootSucceeded', 'Uncordoned']);
    assert.match(seen[0]!.message, /^remediation: remediation rule kubelet-reboot, step/);
    assert.equal(b.reboots.length, before + 1);
    assert.equal(unschedulable('node-b'), false);
  });
});
