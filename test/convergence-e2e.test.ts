/**
 * Convergence end to end (docs/declarative.md, Convergence): one real coordinator, the
 * real nkctl, three scripted agents over real WebSockets that install what they are sent.
 * A ClusterPackageVersion with an updateStrategy converges with no rollout command; a
 * newer generation supersedes the running rollout; paused stops it; a pin converges its
 * machine; a coordinator killed mid-convergence makes no second rollout on restart.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { WebSocket } from 'ws';
import type { MachineIdentity } from '@nodekeeper/protocol';
import { sampleReport } from '@nodekeeper/protocol/testing';
import { enrollByHand } from './harness/machine-key.ts';
import { nkctl, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';

const ARGS = ['--flush-interval', '100', '--liveness-grace', '600000', '--control-plane-version', 'v1.32.1', '--max-unavailable', '2'];
const NAMES = ['node-1', 'node-2', 'node-3'];
const VERSIONS = ['1.31.3', '1.31.4', '1.31.5', '1.31.6', '1.31.7'];
const STRATEGY = { canary: { count: 1 }, soakSeconds: 1, batches: [100], maxUnavailable: 2 };

/** An agent that installs what it is sent (after `hold` lets it), and reports the new version. */
class ScriptedAgent {
  version = '1.31.2';
  hold: (version: string) => boolean = () => false;
  readonly installs: string[] = [];
  private ws: WebSocket | null = null;
  private seq = 0;
  private readonly held: any[] = [];
  private readonly identity: MachineIdentity;
  private readonly url: string;
  private readonly ca: string;
  private readonly credential: string;

  constructor(name: string, i: number, url: string, ca: string, credential: string) {
    this.identity = { machineId: `${i + 1}`.repeat(32), hostname: name, addresses: [], zone: null, labels: {} };
    this.url = url;
    this.ca = ca;
    this.credential = credential;
  }

  static identity(name: string, i: number): MachineIdentity {
    return { machineId: `${i + 1}`.repeat(32), hostname: name, addresses: [], zone: null, labels: {} };
  }

  async connect(): Promise<void> {
    const ws = new WebSocket(`${this.url.replace('https', 'wss')}/v1/agent/connect`, { ca: this.ca, headers: { Authorization: `Bearer ${this.credential}` } });
    ws.on('message', (d) => this.frame(JSON.parse(String(d))));
    ws.on('error', () => {});
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    this.ws = ws;
    ws.send(JSON.stringify({ type: 'hello', minProtocolVersion: 1, maxProtocolVersion: 1, agentVersion: 'test', identity: this.identity }));
    this.report();
  }

  close(): void {
    this.ws?.close();
    this.ws = null;
  }

  report(): void {
    this.ws?.send(JSON.stringify({
      type: 'report', seq: ++this.seq, full: true,
      report: { ...sampleReport, identity: this.identity, kubelet: { ...sampleReport.kubelet, health: 'healthy', reason: 'HealthzOk', version: { raw: `Kubernetes v${this.version}`, semver: this.version, source: 'binary' } } },
    }));
  }

  /** Answers the installs `hold` kept back. */
  release(): void {
    for (const f of this.held.splice(0)) this.answer(f);
  }

  private frame(f: any): void {
    if (f.type !== 'command' || f.kind !== 'package.install') return;
    this.installs.push(f.params.version);
    if (this.hold(f.params.version)) this.held.push(f);
    else this.answer(f);
  }

  private answer(f: any): void {
    const previous = this.version;
    this.version = f.params.version;
    this.ws?.send(JSON.stringify({ type: 'command.result', commandId: f.commandId, ok: true, result: { package: 'kubelet', outcome: 'installed', activeVersion: this.version, previousVersion: previous, message: 'done' } }));
    this.report();
  }
}

describe('desired versions converge by themselves', { timeout: 150_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc;
  let ca: string;
  let admin: string;
  const agents: ScriptedAgent[] = [];
  const artifacts = new Map<string, { url: string; sha256: string; size: number }>();

  const nk = async (args: string[]) => {
    const r = await nkctl(coord.nkctlConfig, args);
    assert.equal(r.code, 0, `nkctl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const db = <T>(sql: string, ...params: unknown[]): T[] => {
    const d = new Database(path.join(coord.dataDir, 'state.db'), { readonly: true, fileMustExist: true });
    try {
      return d.prepare(sql).all(...params) as T[];
    } finally {
      d.close();
    }
  };
  const rollouts = () => db<{ name: string; phase: string; reason: string }>("SELECT name, json_extract(state, '$.phase') AS phase, json_extract(state, '$.reason') AS reason FROM rollouts ORDER BY created_at, name");
  const phaseOf = (name: string) => rollouts().find((r) => r.name === name)?.phase;
  const events = (reason: string) => db<{ object: string; message: string }>('SELECT object, message FROM events WHERE reason = ? ORDER BY id', reason);
  const apply = async (kubelet: string, extra: Record<string, unknown> = {}) => {
    const cpv = {
      apiVersion: 'nodekeeper.io/v1alpha1', kind: 'ClusterPackageVersion', metadata: { name: 'cluster' },
      spec: { updateStrategy: { ...STRATEGY, ...extra }, packages: [{ name: 'kubelet', version: kubelet, artifact: artifacts.get(kubelet) }] },
    };
    await writeFile(path.join(dir, 'cpv.json'), JSON.stringify(cpv));
    await nk(['apply', '-f', path.join(dir, 'cpv.json')]);
  };
  /** The API directly (no nkctl process per poll: cheaper on a busy machine). */
  const api = (method: string, pathname: string, body?: unknown) => new Promise<{ status: number; json: any }>((resolve, reject) => {
    const req = https.request(new URL(pathname, coord.url), { method, ca, headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' } }, (res) => {
      let t = '';
      res.on('data', (c: Buffer) => (t += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(t) }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
  const getCpv = async () => (await api('GET', '/v1/clusterpackageversion')).json;
  const all = (version: string) => agents.every((a) => a.version === version);

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-converge-'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), ARGS);
    ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
    admin = (await readFile(path.join(coord.dataDir, 'admin.credential'), 'utf8')).trim();
    const { token } = JSON.parse(await nk(['token', 'create', '--uses', '3', '-o', 'json']));
    for (const [i, name] of NAMES.entries()) {
      const enrolled = await enrollByHand(coord.url, ca, token, ScriptedAgent.identity(name, i));
      assert.equal(enrolled.status, 201, JSON.stringify(enrolled.body));
      const a = new ScriptedAgent(name, i, coord.url, ca, enrolled.body.credential!);
      await a.connect();
      agents.push(a);
    }
    // The agents are scripted: an artifact only has to exist for a rollout to be made.
    for (const v of VERSIONS) {
      const file = path.join(dir, `kubelet-${v}.tar.gz`);
      await writeFile(file, `kubelet ${v}\n`);
      const pushed = JSON.parse(await nk(['artifact', 'push', file, '--package', 'kubelet', '--version', v, '-o', 'json']));
      artifacts.set(v, { url: pushed.url, sha256: pushed.sha256, size: pushed.size });
    }
    await waitFor('three Ready machines', async () => ((await api('GET', '/v1/machines')).json.items as any[]).filter((m) => m.status.phase === 'Ready').length === 3, 30_000);
  });

  after(async () => {
    for (const a of agents) a.close();
    await coord?.stop();
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(dir, { recursive: true, force: true });
  });

  test('a changed desired version converges with no rollout command', async () => {
    await apply('1.31.3');
    await waitFor('every machine at 1.31.3 and kubelet-g1 Completed', () => all('1.31.3') && phaseOf('kubelet-g1') === 'Completed', 30_000);
    assert.deepEqual(rollouts().map((r) => r.name), ['kubelet-g1']);
    assert.match(events('RolloutCreated').map((e) => e.message).join('\n'), /generation 1: kubelet=1\.31\.3 on 3 machine/);
    await waitFor('Converged on the CPV', async () => (await getCpv()).status.converged === 'converged', 10_000);
    const cpv = (await getCpv());
    assert.equal(cpv.spec.updateStrategy.soakSeconds, 1);
    assert.match(events('Converged').map((e) => e.message).join('\n'), /kubelet: 3\/3 machine\(s\) at 1\.31\.3/);
    assert.equal(cpv.status.conditions.find((c: any) => c.type === 'Converged').status, 'True');
    const table = await nk(['get', 'machines']);
    assert.match(table.split('\n')[0] ?? '', / CONVERGED$/);
    for (const name of NAMES) assert.match(table, new RegExp(`^${name} .* converged$`, 'm'));
    const m = (await api('GET', '/v1/machines/node-1')).json;
    assert.deepEqual(m.status.packages, [{ name: 'kubelet', current: 'Kubernetes v1.31.3', desired: '1.31.3', state: 'Converged', reason: '' }]);
    assert.match(await nk(['describe', 'machine', 'node-1']), /Packages:\n.*\n.*\n\s+kubelet\s+Kubernetes v1\.31\.3\s+1\.31\.3\s+Converged/);
  });

  test('a bad updateStrategy is refused with its path and changes nothing', async () => {
    const before = (await getCpv());
    const count = rollouts().length;
    for (const [bad, where] of [[{ onSupersede: 'Sideways' }, '/spec/updateStrategy/onSupersede'], [{ batches: [60, 30, 100] }, '/spec/updateStrategy/batches/1'], [{ paused: 'yes' }, '/spec/updateStrategy/paused'], [{ selector: { names: ['node-1'] } }, '/spec/updateStrategy/selector']] as const) {
      const cpv = { apiVersion: 'nodekeeper.io/v1alpha1', kind: 'ClusterPackageVersion', metadata: { name: 'cluster' }, spec: { updateStrategy: bad, packages: [{ name: 'kubelet', version: '1.31.4', artifact: artifacts.get('1.31.4') }] } };
      const r = await api('PUT', '/v1/clusterpackageversion', cpv);
      assert.equal(r.status, 400);
      assert.equal(r.json.code, 'NK_CPV_INVALID');
      assert.ok(String(r.json.message).includes(where), r.json.message);
    }
    // nkctl says the same, exit 5.
    await writeFile(path.join(dir, 'bad.json'), JSON.stringify({ apiVersion: 'nodekeeper.io/v1alpha1', kind: 'ClusterPackageVersion', metadata: { name: 'cluster' }, spec: { updateStrategy: { onSupersede: 'Sideways' }, packages: [] } }));
    const r = await nkctl(coord.nkctlConfig, ['apply', '-f', path.join(dir, 'bad.json')]);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /NK_CPV_INVALID/);
    assert.match(r.stderr, /\/spec\/updateStrategy\/onSupersede/);
    const now = (await getCpv());
    assert.equal(now.metadata.generation, before.metadata.generation);
    assert.deepEqual(now.spec, before.spec);
    assert.equal(rollouts().length, count);
  });

  test('a newer generation mid-rollout supersedes it (Keep), and the new target takes over', async () => {
    for (const a of agents) a.hold = (v) => v === '1.31.4';
    await apply('1.31.4');
    await waitFor('kubelet-g2 sent its canary install', () => agents.some((a) => a.installs.includes('1.31.4')), 30_000);
    assert.match((await nk(['get', 'machines'])), / updating$/m);
    await apply('1.31.5');
    await waitFor('kubelet-g2 aborted as superseded', () => phaseOf('kubelet-g2') === 'Failed' && events('RolloutSuperseded').length > 0, 30_000);
    assert.equal(rollouts().find((r) => r.name === 'kubelet-g2')?.reason, 'Aborted');
    for (const a of agents) a.release();
    await waitFor('every machine at 1.31.5 through kubelet-g3', () => all('1.31.5') && phaseOf('kubelet-g3') === 'Completed', 30_000);
    assert.ok(!agents.some((a) => a.installs.filter((v) => v === '1.31.4').length > 1), 'nothing installed twice');
  });

  test('a pin converges the pinned machine through pin-<machine>-kubelet-1', async () => {
    await nk(['machine', 'pin', 'node-1', 'kubelet=1.31.6']);
    await waitFor('node-1 at 1.31.6', () => agents[0]!.version === '1.31.6' && phaseOf('pin-node-1-kubelet-1') === 'Completed', 30_000);
    assert.equal(agents[1]!.version, '1.31.5');
    const m = (await api('GET', '/v1/machines/node-1')).json;
    assert.equal(m.status.packages[0].desired, '1.31.6');
    assert.equal(m.status.packages[0].state, 'Converged');
    await nk(['machine', 'unpin', 'node-1', 'kubelet']);
  });

  test('paused: true stops new steps; false resumes', async () => {
    await apply('1.31.6', { paused: true });
    await waitFor('the CPV reports Paused', async () => (await getCpv()).status.conditions.find((c: any) => c.type === 'Paused')?.status === 'True', 10_000);
    assert.ok(events('ConvergencePaused').length > 0);
    assert.ok(!rollouts().some((r) => r.name.startsWith('kubelet-g4')), 'nothing created while paused');
    assert.equal(agents[1]!.version, '1.31.5');
    await apply('1.31.6');
    await waitFor('every machine at 1.31.6 through kubelet-g5', () => all('1.31.6') && phaseOf('kubelet-g5') === 'Completed', 30_000);
    assert.ok(!rollouts().some((r) => r.name.startsWith('kubelet-g4')));
  });

  test('a coordinator killed mid-convergence makes no second rollout when it restarts', async () => {
    for (const a of agents) a.hold = (v) => v === '1.31.7';
    await apply('1.31.7');
    await waitFor('kubelet-g6 sent its canary install', () => agents.some((a) => a.installs.includes('1.31.7')), 30_000);
    await coord.stop('SIGKILL');
    for (const a of agents) a.close();
    coord = await startCoordinator(coord.dataDir, [...ARGS, '--port', String(coord.port)]);
    for (const a of agents) {
      a.hold = () => false;
      await a.connect();
      a.release(); // the install sent before the kill finishes now, over the new connection
    }
    await waitFor('every machine at 1.31.7', () => all('1.31.7') && phaseOf('kubelet-g6') === 'Completed', 40_000);
    assert.deepEqual(rollouts().filter((r) => r.name.startsWith('kubelet-g6')).map((r) => r.name), ['kubelet-g6']);
    assert.equal(events('RolloutCreated').filter((e) => e.object === 'rollout/kubelet-g6').length, 1);
  });
});
