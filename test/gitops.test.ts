/**
 * GitOps from the host (issue 13, item 3), against a real kube-apiserver and the real
 * kubectl: a directory of host objects (a ClusterPackageVersion with an updateStrategy,
 * a Rollout, a RemediationRule) applied with `kubectl apply -f dir/` twice. The member
 * coordinator (scripted agents over real WebSockets) pulls them, the Rollout completes
 * and its status comes back to the host; the second apply is `unchanged` for each
 * object, moves no resourceVersion on the host and changes nothing in the member's
 * store. Also: the CRDs' CEL rules, the member's least privilege on host Rollouts, and a
 * host object that clashes with a local one refused with nothing changed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { WebSocket } from 'ws';
import { stringify } from 'yaml';
import type { MachineIdentity } from '@nodekeeper/protocol';
import { sampleReport } from '@nodekeeper/protocol/testing';
import { kubeletArtifact } from './harness/artifacts.ts';
import { startControlPlane, type ApiServer } from './harness/kube.ts';
import { newMachinePublicKey } from './harness/machine-key.ts';
import { nkctl, nkctlOk, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';

const NS = 'nodekeeper-gamma';
const API = 'nodekeeper.io/v1alpha1';
type Json = Record<string, any>;

/** A scripted agent: reports kubelet and containerd versions, and answers every install with success. */
class ScriptedAgent {
  private seq = 0;
  readonly versions: Record<string, string> = { kubelet: '1.36.0', containerd: '2.0.0' };
  private ws!: WebSocket;
  readonly identity: MachineIdentity;
  constructor(identity: MachineIdentity) {
    this.identity = identity;
  }

  async connect(coordUrl: string, ca: string, token: string): Promise<void> {
    const { credential } = await post(coordUrl, ca, '/v1/enroll', { token, identity: this.identity, agentVersion: 'test', publicKey: newMachinePublicKey() });
    this.ws = new WebSocket(`${coordUrl.replace('https', 'wss')}/v1/agent/connect`, { ca, headers: { Authorization: `Bearer ${credential}` } });
    this.ws.on('message', (d) => this.onFrame(JSON.parse(String(d))));
    await new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
    });
    this.ws.send(JSON.stringify({ type: 'hello', minProtocolVersion: 1, maxProtocolVersion: 1, agentVersion: 'test', identity: this.identity }));
    this.report();
  }

  private report(): void {
    const v = (s: string, raw: string) => ({ raw, semver: s, source: 'binary' as const });
    this.ws.send(JSON.stringify({
      type: 'report', seq: ++this.seq, full: true,
      report: {
        ...sampleReport, identity: this.identity,
        kubelet: { ...sampleReport.kubelet, version: v(this.versions['kubelet']!, `Kubernetes v${this.versions['kubelet']}`) },
        runtime: { ...sampleReport.runtime, version: v(this.versions['containerd']!, this.versions['containerd']!) },
      },
    }));
  }

  private onFrame(f: Json): void {
    if (f['type'] !== 'command' || f['kind'] !== 'package.install') return;
    const { package: pkg, version } = f['params'] as { package: string; version: string };
    this.versions[pkg] = version;
    this.ws.send(JSON.stringify({ type: 'command.result', commandId: f['commandId'], ok: true, result: { outcome: 'installed', activeVersion: version, message: 'scripted' } }));
    this.report();
  }

  close(): void {
    this.ws?.close();
  }
}

function post(base: string, ca: string, route: string, body: unknown): Promise<Json> {
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(route, base), { method: 'POST', ca, headers: { 'Content-Type': 'application/json' } }, (res) => {
      let t = '';
      res.on('data', (c: Buffer) => (t += c));
      res.on('end', () => (res.statusCode === 201 || res.statusCode === 200 ? resolve(JSON.parse(t)) : reject(new Error(`${route}: ${res.statusCode} ${t}`))));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe('GitOps from the host: kubectl apply -f dir/, twice', { timeout: 180_000 }, () => {
  let dir: string;
  let objectsDir: string;
  let cp: Awaited<ReturnType<typeof startControlPlane>>;
  let host: ApiServer;
  let coord: CoordinatorProc;
  const agents: ScriptedAgent[] = [];
  const nk = (args: string[]) => nkctlOk(coord.nkctlConfig, args);
  const kubectl = (args: string[], opts: { kubeconfig?: string; input?: string } = {}) => host.kubectl(args, opts);
  const hostGet = (kind: string, name: string): Json => JSON.parse(kubectl(['get', `${kind}.nodekeeper.io`, '-n', NS, name, '-o', 'json']));
  let ca = '';
  let admin = '';
  /** The member's host sync state, straight from its API (nkctl would cost a process per poll). */
  const hostStatus = () => new Promise<{ lastSyncTime: string | null; objectStatusWrites: number }>((resolve, reject) => {
    https.get(new URL('/v1/host', coord.url), { ca, headers: { Authorization: `Bearer ${admin}` } }, (res) => {
      let t = '';
      res.on('data', (c: Buffer) => (t += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(t)) : reject(new Error(`GET /v1/host: ${res.statusCode} ${t}`))));
    }).on('error', reject);
  });
  const syncs = async () => (await hostStatus()).lastSyncTime;
  /** Waits until the member has finished `n` whole host syncs from now. */
  const afterSyncs = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const at = await syncs();
      await waitFor('a host sync', async () => (await syncs()) !== at, 20_000, 50);
    }
  };
  /** What the member keeps of these objects, read from its SQLite file. */
  const memberStore = () => {
    const d = new Database(path.join(coord.dataDir, 'state.db'), { readonly: true, fileMustExist: true });
    try {
      return {
        rollouts: d.prepare('SELECT name, spec, state, created_at FROM rollouts ORDER BY name').all(),
        rules: d.prepare('SELECT name, object FROM remediation_rules ORDER BY name').all(),
        cpv: d.prepare('SELECT * FROM cluster_package_version').all(),
        links: d.prepare('SELECT kind, name, host_uid, generation, spec FROM host_objects ORDER BY kind, name').all(),
        events: d.prepare(`SELECT id, object, reason, message FROM events WHERE object NOT LIKE 'machine/%' ORDER BY id`).all(),
      };
    } finally {
      d.close();
    }
  };

  /** Rollouts (not their progress), rules and host links: what a host object could make or change. */
  const madeOrChanged = (m: ReturnType<typeof memberStore>) => [m.rollouts.map((r: any) => [r.name, r.spec, r.created_at]), m.rules, m.links];

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-gitops-'));
    cp = await startControlPlane(dir);
    host = cp.api;
    coord = await startCoordinator(path.join(dir, 'coordinator'), ['--host-sync-interval', '400', '--liveness-grace', '600000', '--control-plane-version', 'v1.36.3']);
    ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
    admin = (await readFile(path.join(coord.dataDir, 'admin.credential'), 'utf8')).trim();
    const install = await nk(['host', 'install', '--kubeconfig', host.adminKubeconfig]);
    const caHash = /--discovery-ca-hash (sha256:[0-9a-f]{64})/.exec(install)![1]!;
    const t = JSON.parse(await nk(['host', 'token', 'create', '--cluster', 'gamma', '--kubeconfig', host.adminKubeconfig, '-o', 'json']));
    await nk(['register', '--cluster', 'gamma', '--host-server', host.url, '--host-token', t.token, '--discovery-ca-hash', caHash]);
    const { token } = JSON.parse(await nk(['token', 'create', '--uses', '2', '-o', 'json']));
    for (const i of [1, 2]) {
      const a = new ScriptedAgent({ machineId: `${i}`.repeat(32), hostname: `node-${i}`, addresses: [], zone: null, labels: {} });
      await a.connect(coord.url, ca, token);
      agents.push(a);
    }
    const kubelet = await kubeletArtifact(path.join(dir, 'artifacts'), { version: 'v1.36.1' });
    await nk(['artifact', 'push', kubelet.file, '--package', 'kubelet', '--version', '1.36.1']);
    await waitFor('two Ready machines', async () => {
      const items = JSON.parse(await nk(['get', 'machines', '-o', 'json'])).items as Json[];
      return items.length === 2 && items.every((m) => m['status']['phase'] === 'Ready');
    }, 30_000);
    // The directory kept in Git: desired versions (with an updateStrategy), a rollout, a rule.
    objectsDir = path.join(dir, 'gitops');
    await mkdir(objectsDir);
    await writeFile(path.join(objectsDir, 'cpv.yaml'), stringify({
      apiVersion: API, kind: 'ClusterPackageVersion', metadata: { name: 'runtime', namespace: NS },
      spec: {
        updateStrategy: { canary: { count: 1 }, soakSeconds: 1, maxUnavailable: 1, onSupersede: 'Keep' },
        packages: [{ name: 'containerd', version: '2.0.1', artifact: { url: 'https://artifacts.invalid/containerd-2.0.1.tgz', sha256: 'c'.repeat(64), size: 1 } }],
      },
    }));
    await writeFile(path.join(objectsDir, 'rollout.yaml'), stringify({
      apiVersion: API, kind: 'Rollout', metadata: { name: 'kubelet-1-36-1', namespace: NS },
      spec: { packages: [{ package: 'kubelet', version: '1.36.1' }], strategy: { canary: { count: 1 }, soakSeconds: 1, batches: [100], maxUnavailable: 1 } },
    }));
    await writeFile(path.join(objectsDir, 'rule.yaml'), stringify({
      apiVersion: API, kind: 'RemediationRule', metadata: { name: 'kubelet-unhealthy-gitops', namespace: NS },
      spec: { fault: 'KubeletUnhealthy', forSeconds: 120, ladder: [{ action: 'RestartService' }, { action: 'CordonAndNotify' }], maxAttemptsPerMachine: 2 },
    }));
  });

  after(async () => {
    for (const a of agents) a.close();
    await coord?.stop();
    await cp?.stop();
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined && dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  test('the directory applied: the member converges, and the status on the host says so', async () => {
    const out = kubectl(['apply', '-f', objectsDir]);
    for (const o of ['clusterpackageversion.nodekeeper.io/runtime', 'rollout.nodekeeper.io/kubelet-1-36-1', 'remediationrule.nodekeeper.io/kubelet-unhealthy-gitops']) assert.match(out, new RegExp(`${o} created`));
    const status = await waitFor('the host Rollout Completed', () => {
      const s = hostGet('rollouts', 'kubelet-1-36-1').status;
      return s?.phase === 'Completed' && s;
    }, 60_000);
    assert.equal(status.progress, '2/2');
    assert.equal(status.counts.succeeded, 2);
    assert.equal(status.observedGeneration, 1);
    const cond = Object.fromEntries((status.conditions as Json[]).map((c) => [c['type'], c['status']]));
    assert.deepEqual(cond, { Accepted: 'True', Progressing: 'False', Paused: 'False', Failed: 'False', Complete: 'True' });
    assert.deepEqual(agents.map((a) => a.versions['kubelet']), ['1.36.1', '1.36.1']);
    assert.match(kubectl(['get', 'rollouts.nodekeeper.io', '-n', NS]), /kubelet-1-36-1\s+Completed\s+kubelet\s+2\/2\s+/);
    // The member's own rollout is the one the host asked for, made through its controller.
    const local = JSON.parse(await nk(['rollout', 'list', '-o', 'json'])).items as Json[];
    assert.deepEqual(local.map((r) => r['metadata']['name']).filter((n) => !/^containerd-g\d+$/.test(n)), ['kubelet-1-36-1'], 'besides the converger\'s own');
    // The rule is in force on the member, and says so on the host.
    assert.match(await nk(['get', 'remediationrules']), /kubelet-unhealthy-gitops\s+KubeletUnhealthy\s.*applied/);
    const rule = await waitFor('the rule status', () => hostGet('remediationrules', 'kubelet-unhealthy-gitops').status?.enabled === true);
    assert.ok(rule);
    assert.match(kubectl(['get', 'remediationrules.nodekeeper.io', '-n', NS]), /kubelet-unhealthy-gitops\s+KubeletUnhealthy\s+true/);
    // The desired versions with their updateStrategy are accepted and applied.
    const cpv = await waitFor('the CPV accepted', () => hostGet('clusterpackageversions', 'runtime').status?.conditions?.find((c: Json) => c['type'] === 'Accepted'));
    assert.equal(cpv.status, 'True', cpv.message);
    const desired = JSON.parse(await nk(['get', 'clusterpackageversion', '-o', 'json'])).spec.packages as Json[];
    assert.ok(desired.some((p) => p['name'] === 'containerd' && p['version'] === '2.0.1'));
    // The desired version converges by itself: the converger's rollout completes, with no rollout command.
    const generated = await waitFor('the converger rollout of containerd Completed', async () => {
      const items = JSON.parse(await nk(['rollout', 'list', '-o', 'json'])).items as Json[];
      const r = items.find((x) => /^containerd-g\d+$/.test(x['metadata']['name']));
      return r?.['status']['phase'] === 'Completed' && r;
    }, 90_000);
    assert.equal(generated['status']['counts']['succeeded'], 2, JSON.stringify(generated['status']));
    assert.deepEqual(agents.map((a) => a.versions['containerd']), ['2.0.1', '2.0.1']);
  });

  test('applied again: kubectl says unchanged, no resourceVersion moves, the member changes nothing', async () => {
    // Let the last progress write land first (it is written only when it changes).
    await afterSyncs(1);
    const kinds = [['clusterpackageversions', 'runtime'], ['rollouts', 'kubelet-1-36-1'], ['remediationrules', 'kubelet-unhealthy-gitops']] as const;
    const versions = () => kinds.map(([k, n]) => hostGet(k, n).metadata.resourceVersion as string);
    const before = versions();
    const stored = memberStore();
    const writes = (await hostStatus()).objectStatusWrites;
    const out = kubectl(['apply', '-f', objectsDir]);
    for (const o of ['clusterpackageversion.nodekeeper.io/runtime', 'rollout.nodekeeper.io/kubelet-1-36-1', 'remediationrule.nodekeeper.io/kubelet-unhealthy-gitops']) assert.match(out, new RegExp(`${o} unchanged`));
    await afterSyncs(2);
    assert.deepEqual(versions(), before, 'no host object changed');
    // The API server would skip an identical write, so count them: none was even sent.
    assert.equal((await hostStatus()).objectStatusWrites, writes, 'no status write to the host');
    assert.deepEqual(memberStore(), stored, 'no new rollout, no changed rule or link, no new event');
  });

  test('the CRDs refuse what the member would refuse (CEL), before it gets there', () => {
    const refused = (spec: Json, pattern: RegExp) => assert.throws(
      () => kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: API, kind: 'Rollout', metadata: { name: 'bad', namespace: NS }, spec }) }),
      (err: { stderr?: string }) => pattern.test(String(err.stderr)), JSON.stringify(spec),
    );
    refused({ packages: [{ package: 'kubelet', version: '1.36.1' }], reboot: {} }, /exactly one/);
    refused({ packages: [{ package: 'kubelet', version: '1.36.1' }], strategy: { canary: { count: 1, percent: 10 } } }, /count or percent, not both/);
    refused({ reboot: {}, strategy: { window: { start: '02:00', end: '02:00' } } }, /window would never be open/);
    refused({ packages: [{ package: 'kubelet', version: '1.36.1' }], strategy: { maxUnavailable: '50 percent' } }, /maxUnavailable/);
    assert.throws(() => kubectl(['patch', 'rollouts.nodekeeper.io', '-n', NS, 'kubelet-1-36-1', '--type=merge', '-p', JSON.stringify({ spec: { packages: [{ package: 'kubelet', version: '1.36.2' }] } })]), /packages are immutable/);
  });

  test("a member reads its host Rollouts and writes their status only; the viewer reads them", async () => {
    const reg = JSON.parse(await readFile(path.join(coord.dataDir, 'host-registration.json'), 'utf8'));
    const member = host.kubeconfig(path.join(dir, 'member.kubeconfig'), reg.token);
    kubectl(['get', 'rollouts.nodekeeper.io,remediationrules.nodekeeper.io', '-n', NS], { kubeconfig: member });
    const denied = (args: string[], input?: string) => assert.throws(() => kubectl(args, { kubeconfig: member, ...(input === undefined ? {} : { input }) }), (err: { stderr?: string }) => /forbidden/i.test(String(err.stderr)), args.join(' '));
    denied(['create', '-f', '-'], JSON.stringify({ apiVersion: API, kind: 'Rollout', metadata: { name: 'by-member', namespace: NS }, spec: { packages: [{ package: 'kubelet', version: '1.36.1' }] } }));
    denied(['patch', 'rollouts.nodekeeper.io', '-n', NS, 'kubelet-1-36-1', '--type=merge', '-p', '{"spec":{"allowDowngrade":true}}']);
    denied(['patch', 'remediationrules.nodekeeper.io', '-n', NS, 'kubelet-unhealthy-gitops', '--type=merge', '-p', '{"spec":{"dryRun":true}}']);
    denied(['delete', 'rollouts.nodekeeper.io', '-n', NS, 'kubelet-1-36-1']);
    kubectl(['patch', 'rollouts.nodekeeper.io', '-n', NS, 'kubelet-1-36-1', '--subresource=status', '--type=merge', '-p', '{"status":{"reason":"AllSucceeded"}}'], { kubeconfig: member });
    const viewer = JSON.parse(kubectl(['get', 'clusterrole', 'nodekeeper:viewer', '-o', 'json'])).rules[0].resources as string[];
    assert.ok(viewer.includes('rollouts') && viewer.includes('remediationrules'), viewer.join(','));
  });

  test('a host Rollout that clashes with a local one is refused (Conflict, event), and nothing changes locally', async () => {
    await nk(['rollout', 'create', 'mine', '--package', 'kubelet=1.36.1', '--canary', '0', '--batches', '100']);
    const stored = memberStore().rollouts;
    kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: API, kind: 'Rollout', metadata: { name: 'mine', namespace: NS }, spec: { packages: [{ package: 'kubelet', version: '1.36.1' }], allowDowngrade: true } }) });
    const accepted = await waitFor('the verdict on the host', () => hostGet('rollouts', 'mine').status?.conditions?.find((c: Json) => c['type'] === 'Accepted'), 30_000);
    assert.equal(accepted.status, 'False');
    assert.equal(accepted.reason, 'Conflict');
    assert.match(accepted.message, /local Rollout "mine" exists that was not made from the host/);
    assert.equal(hostGet('rollouts', 'mine').status.phase, undefined, "the local rollout's progress is not shown as the host's");
    const events = memberStore().events.filter((e: any) => e.reason === 'HostObjectRefused');
    assert.equal(events.length, 1);
    assert.match((events[0] as any).message, /host Rollout nodekeeper-gamma\/mine generation 1: Conflict/);
    const now = memberStore();
    assert.deepEqual(now.rollouts.map((r: any) => [r.name, r.spec, r.created_at]), stored.map((r: any) => [r.name, r.spec, r.created_at]), 'no rollout made or changed');
    assert.equal(now.links.some((l: any) => l.name === 'mine'), false, 'the local rollout is not linked to the host one');
  });

  test("what the member's controller refuses is NotAllowed with its code; a refused change leaves the running rollout as it was", async () => {
    const stored = memberStore();
    kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: API, kind: 'Rollout', metadata: { name: 'no-artifact', namespace: NS }, spec: { packages: [{ package: 'kubelet', version: '1.36.2' }] } }) });
    // The host's CEL keeps packages and reboot; the selector (too costly for CEL) is the member's to refuse.
    kubectl(['patch', 'rollouts.nodekeeper.io', '-n', NS, 'kubelet-1-36-1', '--type=merge', '-p', JSON.stringify({ spec: { selector: { names: ['node-1'] } } })]);
    const verdict = (name: string) => waitFor(`the verdict on ${name}`, () => {
      const o = hostGet('rollouts', name);
      return o.status?.observedGeneration === o.metadata.generation && o.status;
    }, 30_000);
    const missing = (await verdict('no-artifact')).conditions.find((c: Json) => c['type'] === 'Accepted');
    assert.deepEqual([missing.status, missing.reason], ['False', 'NotAllowed']);
    assert.match(missing.message, /^NK_ROLLOUT_UNKNOWN_PACKAGE: no artifact for kubelet 1\.36\.2/);
    const changed = await verdict('kubelet-1-36-1');
    const accepted = changed.conditions.find((c: Json) => c['type'] === 'Accepted');
    assert.deepEqual([accepted.status, accepted.reason], ['False', 'NotAllowed']);
    assert.match(accepted.message, /NK_ROLLOUT_FIELD_IMMUTABLE: .*spec\.selector/);
    assert.equal(changed.phase, 'Completed', 'the progress of the rollout the host made earlier is still shown');
    const now = memberStore();
    assert.deepEqual(madeOrChanged(now), madeOrChanged(stored), 'nothing made or changed on the member');
  });

  test('hostile Rollouts past a lax CRD (wrong types, a huge array) are refused Invalid, and nothing changes', async () => {
    // A host whose Rollout CRD keeps any spec (an old or hand-made CRD): the member's own validation is what stands.
    const crd = JSON.parse(kubectl(['get', 'crd', 'rollouts.nodekeeper.io', '-o', 'json']));
    crd.spec.versions[0].schema.openAPIV3Schema.properties.spec = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
    delete crd.metadata.resourceVersion;
    delete crd.metadata.managedFields;
    kubectl(['replace', '-f', '-'], { input: JSON.stringify(crd) });
    const stored = memberStore();
    const hostile = [
      { name: 'wrong-types', spec: { packages: 'kubelet=1.36.1', strategy: { canary: { count: 'one' } } } },
      { name: 'huge', spec: { packages: [{ package: 'kubelet', version: '1.36.1' }], selector: { names: Array.from({ length: 20_000 }, (_, i) => `node-${i}-padding`) } } },
    ];
    for (const h of hostile) {
      await waitFor(`the lax CRD to take ${h.name}`, () => {
        try {
          kubectl(['create', '-f', '-'], { input: JSON.stringify({ apiVersion: API, kind: 'Rollout', metadata: { name: h.name, namespace: NS }, spec: h.spec }) });
          return true;
        } catch (err) {
          if (/AlreadyExists/.test(String((err as { stderr?: string }).stderr))) return true;
          throw err;
        }
      }, 20_000, 250);
    }
    for (const h of hostile) {
      const c = await waitFor(`the verdict on ${h.name}`, () => hostGet('rollouts', h.name).status?.conditions?.find((x: Json) => x['type'] === 'Accepted'), 30_000);
      assert.equal(c.status, 'False');
      assert.equal(c.reason, 'Invalid', c.message);
    }
    assert.match(hostGet('rollouts', 'huge').status.conditions[0].message, /spec is \d+ bytes; at most 262144/);
    const now = memberStore();
    assert.deepEqual(madeOrChanged(now), madeOrChanged(stored), 'nothing made or changed on the member');
    assert.equal(now.events.filter((e: any) => e.reason === 'HostObjectRefused').length - stored.events.filter((e: any) => e.reason === 'HostObjectRefused').length, 2);
  });

  test('a rule deleted on the host is removed on the member; a host-made rollout is left as it is', async () => {
    kubectl(['delete', '-f', path.join(objectsDir, 'rule.yaml')]);
    kubectl(['delete', '-f', path.join(objectsDir, 'rollout.yaml')]);
    await waitFor('the rule gone on the member', async () => !(await nk(['get', 'remediationrules'])).includes('kubelet-unhealthy-gitops'), 30_000);
    await waitFor('the rollout unlinked', () => !memberStore().links.some((l: any) => l.name === 'kubelet-1-36-1'), 30_000);
    assert.ok(memberStore().rollouts.some((r: any) => r.name === 'kubelet-1-36-1'), 'the rollout stays');
    const r = await nkctl(coord.nkctlConfig, ['rollout', 'describe', 'kubelet-1-36-1']);
    assert.equal(r.code, 0, r.stderr);
  });
});
