/**
 * The nodekeeper demo (run it with scripts/demo): a coordinator, four nodes on this one
 * machine (each with its own host root, supervised kubelet stand-in and real CNI
 * config), one real containerd shared by them, and the real nkctl. Enrolls the nodes
 * with a bootstrap token, shows their real versions, breaks two nodes one after the
 * other and shows the coordinator notice within seconds, with the reasons, and repair
 * them by itself (two at once on four nodes would be a storm: it would wait); registers
 * the member cluster with a host Kubernetes cluster in pull mode (real kube-apiservers
 * built from the Go modules: a host and the member); then rolls a new kubelet out
 * canary-first, draining each node through the member API first, and rolls a bad one
 * back by itself when its canary fails; shows the Node conditions and Events a broken node
 * gets, a drain refused for a pod with emptyDir data, and a reboot rollout of the two nodes
 * that have a newer kernel installed.
 *
 *   scripts/demo          the story, then clean up and exit 0
 *   scripts/demo --keep   the story, then keep the fleet running until Ctrl-C
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, unlink, writeFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startContainerdWithNetwork, type RunningContainerd } from '../test/harness/containerd.ts';
import { CNI_CONFIG_NAME, bridgeConflist } from '../test/harness/host-root.ts';
import { cniPluginsArtifact, kubeletArtifact } from '../test/harness/artifacts.ts';
import { startApiServer, startEtcd, type ApiServer, type Etcd } from '../test/harness/kube.ts';
import { startTestKubelet, type TestKubelet } from '../test/harness/test-kubelet.ts';
import { BIN, REPO, createToken, nkctl, startCoordinator, waitFor, type CoordinatorProc } from '../test/harness/processes.ts';
import { makeRuntimeDir } from '../test/harness/runtime-dir.ts';
import { makeSupervisedNode, startNodeAgent, stopNode, type SupervisedNode } from '../test/harness/supervised-node.ts';
import { bootFacts, rebootAdapter, type RebootAdapter } from '../test/harness/reboot-node.ts';

const { values: flags } = parseArgs({ options: { keep: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
if (flags.help) {
  process.stdout.write('Usage: scripts/demo [--keep]\n  --keep  leave the fleet running (until Ctrl-C) and print how to use nkctl against it\n');
  process.exit(0);
}

const NODES = [
  { name: 'node-a', kubelet: 'v1.35.2', zone: 'zone-1' },
  { name: 'node-b', kubelet: 'v1.35.2', zone: 'zone-1' },
  { name: 'node-c', kubelet: 'v1.35.2', zone: 'zone-2' },
  { name: 'node-d', kubelet: 'v1.35.2', zone: 'zone-2' },
] as const;
// Everything lives in a fresh short dir (/tmp/nk-demo-XXXXXX; see runtime-dir.ts),
// not in the checkout: the agents dial containerd at <host root>/run/containerd/containerd.sock,
// which must fit a unix socket path (~104 bytes) wherever the checkout is. Removed at
// the end; kept when the demo fails, for its logs.
const runtime = makeRuntimeDir('demo');
const DIR = runtime.dir;
const color = process.stdout.isTTY ? (c: number, s: string) => `\x1b[${c}m${s}\x1b[0m` : (_: number, s: string) => s;
let step = 0;
const say = (s: string) => process.stdout.write(`\n${color(1, `[${++step}] ${s}`)}\n`);
const show = (s: string) => process.stdout.write(s.replace(/^/gm, '    ').replace(/ +$/gm, '') + (s.endsWith('\n') ? '' : '\n'));

let containerd: RunningContainerd | undefined;
let coord: CoordinatorProc | undefined;
let etcd: Etcd | undefined;
let host: ApiServer | undefined;
let member: ApiServer | undefined;
const nodes: SupervisedNode[] = [];
let podDeleter: TestKubelet | undefined;
const rebooters: RebootAdapter[] = [];
/** The kernels of the reboot story: every node runs the old one; node-c and node-d have the new one installed. */
const KERNEL = { running: '6.1.0-25-amd64', installed: '6.1.0-26-amd64' } as const;
/** The demo's pods belong to a ReplicaSet, as most do: a drain may evict them (kubectl drain's rules). */
const ownedByWeb = { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: '6b1f7c8e-0000-4000-8000-000000000001', controller: true }] };

async function cleanup(): Promise<void> {
  for (const r of rebooters) r.stop();
  await podDeleter?.stop();
  await Promise.all(nodes.map((n) => stopNode(n)));
  await coord?.stop();
  await containerd?.stop();
  await Promise.all([host?.stop(), member?.stop()]);
  await etcd?.stop();
}

async function nk(args: string[]): Promise<string> {
  const r = await nkctl(coord!.nkctlConfig, args);
  if (r.code !== 0) throw new Error(`nkctl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

type Machine = { metadata: { name: string }; status: { phase: string; conditions: Array<{ type: string; status: string; reason: string; message: string }> } };
const getMachine = async (name: string) => JSON.parse(await nk(['get', 'machine', name, '-o', 'json'])) as Machine;

async function main(): Promise<void> {
  process.stdout.write(`demo dir ${DIR} (state, host roots, logs)\n`);

  say('Starting a real containerd (Debian package) with its own root, state and socket');
  containerd = await startContainerdWithNetwork(path.join(DIR, 'containerd'));
  show(`socket ${containerd.socket}`);

  say('Starting two Kubernetes API servers (kube-apiserver and etcd built from the published Go modules): a host cluster, and the member cluster these nodes belong to');
  etcd = await startEtcd(path.join(DIR, 'etcd'));
  [host, member] = await Promise.all([
    startApiServer({ etcd, name: 'host', dir: path.join(DIR, 'host') }),
    startApiServer({ etcd, name: 'member', dir: path.join(DIR, 'member') }),
  ]);
  show(`host ${host.url}, member ${member.url} (${member.kubectl(['version', '-o', 'json']).match(/"gitVersion": "([^"]+)"/)?.[1] ?? '?'})`);

  // These Nodes have no kubelet: this loop plays its part of a pod's deletion (the
  // containers stopped, the pod confirmed gone, a second after its eviction), so a drain
  // that waits for evicted pods to go can finish.
  podDeleter = startTestKubelet(member, { delayMs: 1000, intervalMs: 500 });

  say('Starting the coordinator (https/wss with its own CA, SQLite state in <demo dir>/coordinator; the member API for its version, Nodes, cordon and drain)');
  coord = await startCoordinator(path.join(DIR, 'coordinator'), ['--heartbeat-interval', '2000', '--liveness-grace', '8000', '--liveness-recover', '2000', '--member-kubeconfig', member.adminKubeconfig, '--host-sync-interval', '2000', '--max-unavailable', '2', '--fault-hold', '2', '--fault-clear', '3', '--storm-cooldown', '10', '--node-condition-interval', '1000']);
  show(`listening on ${coord.url}\nCA pin ${coord.caHash}\nfleet page ${coord.url}/ui/ (sign in with the credential in ${path.join(DIR, 'coordinator', 'admin.credential')}; the browser must trust the demo CA, ${path.join(DIR, 'coordinator', 'ca.crt')})`);

  say('A signing key for install metadata: agents trust its public key (--trusted-key) and install only what it signed');
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const signingKey = path.join(DIR, 'signing-key.pem');
  const trustedKey = path.join(DIR, 'signing-key.pub.pem');
  await writeFile(signingKey, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  await writeFile(trustedKey, publicKey.export({ type: 'spki', format: 'pem' }));
  show(`private ${signingKey} (nkctl apply --sign-key, artifact push --sign), public ${trustedKey}`);

  say('Creating a bootstrap token: nkctl token create --uses 4 --ttl 1h');
  const token = await createToken(coord.nkctlConfig, NODES.length);
  show(`token ${token.token.slice(0, 7)}… (printed in full by nkctl; agents trade it for a per-machine credential)`);

  say(`Starting ${NODES.length} nodes: own host root, supervised kubelet stand-in, real CNI config and plugins, one agent each`);
  for (const [i, n] of NODES.entries()) {
    const node = await makeSupervisedNode(DIR, { name: n.name, machineId: `${i + 1}${'0'.repeat(31)}`, kubeletVersion: n.kubelet, runtimeSocket: containerd.socket, podSubnet: `10.88.${i + 1}.0/24` });
    // Its own boot id and kernel (the agent reads them from its host root), so a reboot can
    // be told from a reconnect; node-c and node-d have a newer kernel installed.
    const newKernel = n.name === 'node-c' || n.name === 'node-d';
    await bootFacts(node, { kernel: KERNEL.running, installed: newKernel ? [KERNEL.running, KERNEL.installed] : [KERNEL.running] });
    const agentArgs = ['--zone', n.zone, '--label', `pool=${i < 2 ? 'general' : 'batch'}`, '--trusted-key', trustedKey, '--allow-reboot'];
    startNodeAgent(node, { server: coord.url, token: token.token, caHash: token.caCertHash, extraArgs: agentArgs });
    // A reboot here kills the node's processes, gives it a new boot id and the newest
    // kernel, and starts them again, as `systemctl reboot` would (test/harness/reboot-node.ts).
    rebooters.push(rebootAdapter(node, () => startNodeAgent(node, { server: coord!.url, caHash: token.caCertHash, extraArgs: agentArgs }), newKernel ? { kernel: KERNEL.installed, downMs: 1000 } : { downMs: 1000 }));
    nodes.push(node);
    // Its Node in the member cluster, Ready as its kubelet would report it, with one pod.
    const now = new Date().toISOString();
    member.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: n.name } }) });
    member.kubectl(['patch', 'node', n.name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', lastHeartbeatTime: now, lastTransitionTime: now }] } })]);
    member.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: `web-${n.name}`, namespace: 'default', ...ownedByWeb }, spec: { nodeName: n.name, containers: [{ name: 'web', image: 'registry.invalid/web:1' }], terminationGracePeriodSeconds: 2 } }) });
    show(`${n.name}: kubelet stand-in ${n.kubelet} on ${node.kubeletUrl}, host root ${node.root}, Node and pod web-${n.name} in the member cluster`);
  }

  say('Waiting for every machine to enroll and report Ready');
  const started = Date.now();
  await waitFor('all machines Ready', async () => {
    const list = JSON.parse(await nk(['get', 'machines', '-o', 'json'])) as { items: Machine[] };
    return list.items.length === NODES.length && list.items.every((m) => m.status.phase === 'Ready');
  }, 60_000, 250);
  show(`all ${NODES.length} Ready after ${((Date.now() - started) / 1000).toFixed(1)} s`);

  say('nkctl get machines');
  show(await nk(['get', 'machines']));
  say('nkctl get machines -o wide -l pool=batch');
  show(await nk(['get', 'machines', '-o', 'wide', '-l', 'pool=batch']));

  say("Desired state: Debian's CNI plugins pushed as cni-plugins 1.1.1, with the network config nodes should have");
  const artifacts = path.join(DIR, 'artifacts');
  const cni = await cniPluginsArtifact(artifacts);
  const cniPushed = JSON.parse(await nk(['artifact', 'push', cni.file, '--package', 'cni-plugins', '--version', '1.1.1', '-o', 'json'])) as { url: string; sha256: string; size: number };
  show(`cni-plugins 1.1.1: ${(cni.size / 1024 / 1024).toFixed(1)} MiB, sha256:${cniPushed.sha256.slice(0, 16)}…`);
  const cniEntry = { name: 'cni-plugins', version: '1.1.1', artifact: { url: cniPushed.url, sha256: cniPushed.sha256, size: cniPushed.size },
    parameters: { networkConfigPath: `/etc/cni/net.d/${CNI_CONFIG_NAME}`, networkConfig: bridgeConflist() } };
  const cpvFile = path.join(DIR, 'clusterpackageversion.json');
  const writeCpv = (packages: unknown[]) => writeFile(cpvFile, JSON.stringify({ apiVersion: 'nodekeeper.io/v1alpha1', kind: 'ClusterPackageVersion', metadata: { name: 'cluster' }, spec: { packages } }, null, 2));
  await writeCpv([cniEntry]);
  show(await nk(['apply', '-f', cpvFile, '--sign-key', signingKey]));

  say('Remediation rules with short holds for the demo (defaults wait 60 s): nkctl apply -f rules.json');
  const step = (action: string, target?: string) => ({ action, ...(target === undefined ? {} : { target }), timeoutSeconds: 30, successWithinSeconds: 10 });
  const rules = [
    { name: 'kubelet-unhealthy', fault: 'KubeletUnhealthy', ladder: [step('RestartService', 'kubelet.service'), step('CordonAndNotify')] },
    { name: 'network-not-ready', fault: 'NetworkNotReady', ladder: [step('RestoreConfig', 'cni-plugins'), step('CordonAndNotify')] },
  ].map((r) => ({ apiVersion: 'nodekeeper.io/v1alpha1', kind: 'RemediationRule', metadata: { name: r.name }, spec: { fault: r.fault, forSeconds: 2, ladder: r.ladder, maxAttemptsPerMachine: 3, cooldownSeconds: 10 } }));
  const rulesFile = path.join(DIR, 'rules.json');
  await writeFile(rulesFile, rules.map((r) => JSON.stringify(r)).join('\n---\n'));
  show(await nk(['apply', '-f', rulesFile]));
  show(await nk(['get', 'remediationrules']));

  const allReady = async () => (JSON.parse(await nk(['get', 'machines', '-o', 'json'])) as { items: Machine[] }).items.every((m) => m.status.phase === 'Ready');
  const seen = async (name: string, type: string, since: number) => {
    const m = await waitFor(`${name} ${type}=False`, async () => {
      const m = await getMachine(name);
      return m.status.conditions.find((c) => c.type === type)?.status === 'False' && m;
    }, 30_000, 100);
    const c = m.status.conditions.find((x) => x.type === type)!;
    show(`${name}: ${type}=False (${c.reason}: ${c.message}) seen after ${((Date.now() - since) / 1000).toFixed(1)} s`);
  };
  const repairedAfter = async (since: number) => {
    await waitFor('all machines Ready again', allReady, 60_000, 250);
    show(`repaired automatically: all Ready again ${((Date.now() - since) / 1000).toFixed(1)} s after the fault`);
  };

  say("Breaking node-b: deleting its CNI config");
  const cniBroken = Date.now();
  await unlink(path.join(DIR, 'node-b', 'etc/cni/net.d', CNI_CONFIG_NAME));
  await seen('node-b', 'NetworkReady', cniBroken);
  say('nkctl get machines');
  show(await nk(['get', 'machines']));
  await repairedAfter(cniBroken);

  say("Breaking node-c: stopping its kubelet");
  const kubeletBroken = Date.now();
  await nodes[2]!.services.stop('kubelet.service');
  await seen('node-c', 'KubeletHealthy', kubeletBroken);
  say('nkctl describe machine node-c (while it is down)');
  show(await nk(['describe', 'machine', 'node-c']));
  say("The same, as Kubernetes tools see it: node-c's Node conditions (kubectl get node node-c -o jsonpath=...)");
  const conditions = () => member!.kubectl(['get', 'node', 'node-c', '-o', 'jsonpath={range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\\n"}{end}']);
  await waitFor('KubeletUnhealthy=True on the Node', () => /KubeletUnhealthy=True/.test(conditions()), 30_000, 250);
  show(conditions());
  await repairedAfter(kubeletBroken);
  say('kubectl get events --field-selector involvedObject.name=node-c (what nodekeeper did, as Events on the Node)');
  await waitFor('Events on node-c', () => /StepStarted|Remediated/.test(member!.kubectl(['get', 'events', '--field-selector', 'involvedObject.name=node-c'])), 30_000, 250);
  show(member.kubectl(['get', 'events', '--field-selector', 'involvedObject.name=node-c', '--sort-by', '.metadata.creationTimestamp']));
  await waitFor('KubeletUnhealthy=False on the Node', () => /KubeletUnhealthy=False/.test(conditions()), 30_000, 250);
  show(conditions().split('\n').filter((l) => l.startsWith('KubeletUnhealthy') || l.startsWith('NodekeeperManaged')).join('\n'));

  say('nkctl remediation describe node-b');
  show(await nk(['remediation', 'describe', 'node-b']));

  say('Registering the member cluster with the host in pull mode: nkctl host install, nkctl host token create --cluster demo, nkctl register');
  show((await nk(['host', 'install', '--kubeconfig', host.adminKubeconfig])).trim());
  const hostToken = JSON.parse(await nk(['host', 'token', 'create', '--cluster', 'demo', '--kubeconfig', host.adminKubeconfig, '-o', 'json'])) as { token: string; caHash: string; server: string };
  show(await nk(['register', '--cluster', 'demo', '--host-server', hostToken.server, '--host-token', hostToken.token, '--discovery-ca-hash', hostToken.caHash, '--zone', 'eu-1']));
  await waitFor('the host to see 4 machines', () => /demo\s+True\s+MemberReady\s+\S+\s+4\s+4/.test(host!.kubectl(['get', 'clusters.nodekeeper.io'])), 30_000, 250);
  say('On the host: kubectl get clusters.nodekeeper.io, and the member\'s Machines in its namespace');
  show(host.kubectl(['get', 'clusters.nodekeeper.io']));
  show(host.kubectl(['get', 'machines.nodekeeper.io', '-n', 'nodekeeper-demo']));
  say('On the host: nkctl clusters');
  show(await nk(['clusters', '--kubeconfig', host.adminKubeconfig]));

  say('Pushing kubelet artifacts: 1.35.3, and a 1.35.4 whose healthz fails (nkctl artifact push)');
  const good = await kubeletArtifact(artifacts, { version: 'v1.35.3' });
  const bad = await kubeletArtifact(artifacts, { version: 'v1.35.4', healthz: 'fail' });
  // The statement a push signs names the manifest the install will use: the CPV's, with the demo's short health timeout.
  const kubeletManifest = { name: 'kubelet', format: 'tar.gz', links: [{ path: '/usr/bin/kubelet', target: 'kubelet' }], service: 'kubelet.service', healthProbe: 'kubelet', healthTimeoutMs: 5000 };
  const manifestFile = path.join(DIR, 'kubelet-manifest.json');
  await writeFile(manifestFile, JSON.stringify(kubeletManifest, null, 2));
  show(await nk(['artifact', 'push', good.file, '--package', 'kubelet', '--version', '1.35.3']));
  const pushed = JSON.parse(await nk(['artifact', 'push', bad.file, '--package', 'kubelet', '--version', '1.35.4', '--sign', signingKey, '--manifest', manifestFile, '-o', 'json'])) as { url: string; sha256: string; size: number };
  show(`kubelet 1.35.4 stored as sha256:${pushed.sha256.slice(0, 16)}…`);

  say('nkctl apply -f clusterpackageversion.json --sign-key signing-key.pem (the cluster default, with a 5 s health timeout for the demo, signed)');
  await writeCpv([cniEntry, { name: 'kubelet', version: '1.35.3', artifact: { url: `${coord.url}/v1/artifacts/sha256/${good.sha256}`, sha256: good.sha256, size: good.size }, manifest: kubeletManifest }]);
  show(await nk(['apply', '-f', cpvFile, '--sign-key', signingKey]));

  say('A pod with emptyDir data on node-a: nkctl machine drain node-a refuses, naming it, as kubectl drain does (nothing is evicted; node-a is uncordoned)');
  member.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'cache-node-a', namespace: 'default', ...ownedByWeb }, spec: { nodeName: 'node-a', containers: [{ name: 'cache', image: 'registry.invalid/cache:1', volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }] }], volumes: [{ name: 'scratch', emptyDir: {} }], terminationGracePeriodSeconds: 2 } }) });
  const refused = await nkctl(coord.nkctlConfig, ['machine', 'drain', 'node-a', '--timeout', '30s']);
  show(refused.stdout + refused.stderr);
  if (refused.code === 0) throw new Error('the drain of a node with emptyDir data was not refused');
  show(member.kubectl(['get', 'node', 'node-a']));

  say('nkctl rollout create kubelet-1-35-3 --package kubelet=1.35.3 --canary 1 --soak 3s --batches 50,100 --max-unavailable 2 --drain-delete-emptydir-data (each node is cordoned and drained first; the emptyDir pod may go)');
  show(await nk(['rollout', 'create', 'kubelet-1-35-3', '--package', 'kubelet=1.35.3', '--canary', '1', '--soak', '3s', '--batches', '50,100', '--max-unavailable', '2', '--drain-delete-emptydir-data']));
  say('nkctl rollout status kubelet-1-35-3 -w');
  const ok = await nkctl(coord.nkctlConfig, ['rollout', 'status', 'kubelet-1-35-3', '-w', '--interval', '1s']);
  show(ok.stdout + ok.stderr);
  if (ok.code !== 0) throw new Error(`the good rollout did not complete (exit ${ok.code})`);
  say('nkctl get packages');
  show(await nk(['get', 'packages']));
  say('What the drain did on node-a (nkctl describe machine node-a, events), and the member cluster now');
  show((await nk(['describe', 'machine', 'node-a'])).split('\n').filter((l) => /Drained|Uncordoned/.test(l)).join('\n'));
  show(member.kubectl(['get', 'nodes']) + member.kubectl(['get', 'pods']));

  say('nkctl rollout create kubelet-1-35-4 --package kubelet=1.35.4 --canary 1 --on-failure rollback (its healthz fails)');
  show(await nk(['rollout', 'create', 'kubelet-1-35-4', '--package', 'kubelet=1.35.4', '--canary', '1', '--soak', '3s', '--batches', '100', '--on-failure', 'rollback']));
  say('nkctl rollout status kubelet-1-35-4 -w');
  const bad4 = await nkctl(coord.nkctlConfig, ['rollout', 'status', 'kubelet-1-35-4', '-w', '--interval', '1s']);
  show(bad4.stdout + bad4.stderr);
  if (bad4.code === 0) throw new Error('the failing rollout was not stopped');
  say('nkctl rollout describe kubelet-1-35-4');
  show(await nk(['rollout', 'describe', 'kubelet-1-35-4']));
  say('nkctl get machines (every kubelet still at 1.35.3: the canary was rolled back in place)');
  show(await nk(['get', 'machines']));
  say('Alerts: what Prometheus scrapes from /metrics now, and the rule in deploy/prometheus/rules.yml that fires on it (NodekeeperRolloutStoppedByFailures)');
  show((await scrapeMetrics()).split('\n').filter((l) => /^nodekeeper_rollout_(failures_total|info)\{/.test(l)).join('\n'));
  show((await readFile(path.join(REPO, 'deploy/prometheus/rules.yml'), 'utf8')).split('\n').filter((l, i, all) => {
    const at = all.findIndex((x) => x.includes('alert: NodekeeperRolloutStoppedByFailures'));
    return i >= at && i < at + 3;
  }).join('\n'));
  const promtool = promtoolBinary();
  if (promtool !== null) show(`promtool test rules deploy/prometheus/rules.test.yml (unit tests of every alert):\n${execFileSync(promtool, ['test', 'rules', path.join(REPO, 'deploy/prometheus/rules.test.yml')], { encoding: 'utf8' })}`);
  else show('(promtool is not built here: scripts/test builds it, then this step runs the alerts\' unit tests too)');

  say('Declarative: the ClusterPackageVersion now wants kubelet 1.35.5, with an updateStrategy (canary 1, soak 2 s, two at a time); no rollout command');
  const next = await kubeletArtifact(artifacts, { version: 'v1.35.5' });
  show(await nk(['artifact', 'push', next.file, '--package', 'kubelet', '--version', '1.35.5']));
  const updateStrategy = { canary: { count: 1 }, soakSeconds: 2, batches: [100], maxUnavailable: 2 };
  await writeCpv([cniEntry, { name: 'kubelet', version: '1.35.5', artifact: { url: `${coord.url}/v1/artifacts/sha256/${next.sha256}`, sha256: next.sha256, size: next.size }, manifest: kubeletManifest, updateStrategy }]);
  show(await nk(['apply', '-f', cpvFile, '--sign-key', signingKey]));
  const generation = (JSON.parse(await nk(['get', 'clusterpackageversion', '-o', 'json'])) as { metadata: { generation: number } }).metadata.generation;
  const converging = `kubelet-g${generation}`;
  say(`The coordinator made rollout ${converging} from generation ${generation} by itself: nkctl rollout status ${converging} -w`);
  await waitFor(`rollout ${converging}`, async () => (JSON.parse(await nk(['rollout', 'list', '-o', 'json'])) as { items: { metadata: { name: string } }[] }).items.some((r) => r.metadata.name === converging), 30_000, 250);
  const converged = await nkctl(coord.nkctlConfig, ['rollout', 'status', converging, '-w', '--interval', '1s']);
  show(converged.stdout + converged.stderr);
  if (converged.code !== 0) throw new Error(`the converging rollout did not complete (exit ${converged.code})`);
  say('nkctl get machines (the CONVERGED column: every machine at the desired versions)');
  show(await nk(['get', 'machines']));
  say(`A newer kernel (${KERNEL.installed}) is installed on node-c and node-d: their Nodes say RebootRequired=True`);
  const rebootRequired = (n: string) => member!.kubectl(['get', 'node', n, '-o', 'jsonpath={range .status.conditions[?(@.type=="RebootRequired")]}{.status} {.reason}: {.message}{end}']);
  await waitFor('RebootRequired=True on node-c and node-d', () => ['node-c', 'node-d'].every((n) => rebootRequired(n).startsWith('True')), 30_000, 250);
  for (const n of ['node-a', 'node-c', 'node-d']) show(`${n}: RebootRequired=${rebootRequired(n)}`);

  say('nkctl reboot create kernel-update --only-required --soak 2s (one machine at a time: cordon, drain, reboot, back on a new boot with the new kernel and Ready, uncordon)');
  show(await nk(['reboot', 'create', 'kernel-update', '--only-required', '--soak', '2s', '--drain-timeout', '60s', '--reboot-timeout', '120s']));
  const rebooted = await nkctl(coord.nkctlConfig, ['rollout', 'status', 'kernel-update', '-w', '--interval', '1s']);
  show(rebooted.stdout + rebooted.stderr);
  if (rebooted.code !== 0) throw new Error(`the reboot rollout did not complete (exit ${rebooted.code})`);
  say('What the reboots did, as Events on node-c, and the kernels now');
  show(member.kubectl(['get', 'events', '--field-selector', 'involvedObject.name=node-c', '--sort-by', '.metadata.creationTimestamp']).split('\n').filter((l, i) => i === 0 || /Reboot|Cordon|Drain/.test(l)).join('\n'));
  await waitFor('RebootRequired=False on node-c and node-d', () => ['node-c', 'node-d'].every((n) => rebootRequired(n).startsWith('False')), 30_000, 250);
  for (const n of ['node-c', 'node-d']) show(`${n}: RebootRequired=${rebootRequired(n)}`);
  show(await nk(['get', 'machines', '-o', 'wide']));

  say('On the host: nkctl clusters -o wide (versions and rollouts as the member reported them)');
  await new Promise((r) => setTimeout(r, 3000));
  show(await nk(['clusters', '-o', 'wide', '--kubeconfig', host.adminKubeconfig]));

  if (flags.keep) {
    const env = `export PATH="${path.join(REPO, '.tools/node/bin')}:${path.dirname(BIN.nkctl)}:$PATH" NKCTL_CONFIG="${coord.nkctlConfig}"`;
    say('The fleet keeps running. In another shell:');
    show(`${env}\nnkctl get machines -o wide
nkctl describe machine node-b
nkctl get machine node-c -o yaml\nkubectl nodekeeper get machines   # nkctl as a kubectl plugin
nkctl clusters --kubeconfig ${host.adminKubeconfig}
# admin kubeconfigs: host ${host.adminKubeconfig}, member ${member.adminKubeconfig}\n\nLogs are in ${DIR}/*.log. Press Ctrl-C here to stop everything.`);
    keeping = true;
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
  }
  say('Stopping the fleet');
  await cleanup();
  runtime.remove();
  show('done');
}

// Ctrl-C (or a kill) in the middle of the story stops the fleet before exiting, as the
// end of the story does: the demo's containerd, API servers and agents run detached.
let keeping = false;
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (keeping || interrupted) return;
    interrupted = true;
    process.stderr.write(`\n${signal}: stopping the fleet (logs stay in ${DIR})\n`);
    void cleanup().finally(() => {
      runtime.keep();
      process.exit(130);
    });
  });
}

try {
  await main();
} catch (err) {
  // Interrupted: the story fails as its fleet goes away; the handler above is cleaning up.
  if (interrupted) await new Promise(() => {});
  process.stderr.write(`\ndemo failed: ${(err as Error).stack ?? String(err)}\nlogs: ${DIR}/*.log (the demo dir is kept; remove it when done)\n`);
  await cleanup();
  runtime.keep();
  process.exitCode = 1;
}

/** The coordinator's /metrics, as Prometheus scrapes it (no credential; its CA). */
async function scrapeMetrics(): Promise<string> {
  const ca = await readFile(path.join(coord!.dataDir, 'ca.crt'));
  return new Promise((resolve, reject) => {
    httpsGet(new URL('/metrics', coord!.url), { ca }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

/** promtool when scripts/test has built it (scripts/demo exports NK_PROMTOOL then), else null. */
function promtoolBinary(): string | null {
  const built = process.env['NK_PROMTOOL'];
  return built !== undefined && existsSync(built) ? built : null;
}
