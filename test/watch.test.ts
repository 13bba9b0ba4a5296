/**
 * Server-side watch end to end (docs/nkctl.md, "Watch"): one real coordinator on port 0
 * with a small watch history, scripted agents over real WebSockets, and HTTPS clients
 * reading the JSON lines. Covers every kind's ADDED/MODIFIED/DELETED, bookmarks, 410 at
 * the start, credentials, the watcher cap, a reader that never reads, a machine going
 * NotReady or Unknown with nothing asked of the API, and list-then-watch under writes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { WebSocket } from 'ws';
import type { MachineIdentity } from '@nodekeeper/protocol';
import { sampleReport } from '@nodekeeper/protocol/testing';
import { enrollByHand } from './harness/machine-key.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { BIN, nkctl, programEnv, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { apiRequest, openWatch, type WatchEvent, type WatchStream } from './harness/watch-client.ts';

const HISTORY = 10;
const MAX_WATCHERS = 8;
const ARGS = ['--flush-interval', '100', '--control-plane-version', 'v1.32.1', '--heartbeat-interval', '300', '--liveness-grace', '1500', '--liveness-recover', '100',
  '--watch-history', String(HISTORY), '--api-max-watchers', String(MAX_WATCHERS), '--watch-bookmark-interval', '300', '--watch-stall-timeout', '1000'];

/** An agent that says hello, reports, and sends heartbeats until stopped; it never answers commands. */
class ScriptedAgent {
  private ws: WebSocket | null = null;
  private seq = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly identity: MachineIdentity;
  private readonly url: string;
  private readonly ca: string;
  private readonly credential: string;
  constructor(identity: MachineIdentity, url: string, ca: string, credential: string) {
    this.identity = identity;
    this.url = url;
    this.ca = ca;
    this.credential = credential;
  }

  async connect(): Promise<void> {
    const ws = new WebSocket(`${this.url.replace('https', 'wss')}/v1/agent/connect`, { ca: this.ca, headers: { Authorization: `Bearer ${this.credential}` } });
    ws.on('error', () => {});
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    this.ws = ws;
    ws.send(JSON.stringify({ type: 'hello', minProtocolVersion: 1, maxProtocolVersion: 1, agentVersion: 'test', identity: this.identity }));
    this.report(true);
    this.timer = setInterval(() => this.ws?.send(JSON.stringify({ type: 'heartbeat', seq: ++this.seq })), 200);
  }

  report(healthy: boolean): void {
    const kubelet = { ...sampleReport.kubelet, health: healthy ? 'healthy' : 'unhealthy', reason: healthy ? 'HealthzOk' : 'HealthzFailed' };
    this.ws?.send(JSON.stringify({ type: 'report', seq: ++this.seq, full: true, report: { ...sampleReport, identity: this.identity, kubelet } }));
  }

  /** Goes silent (the connection stays open): the coordinator marks it Unknown after the grace. */
  silence(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  close(): void {
    this.silence();
    this.ws?.close();
    this.ws = null;
  }
}

const identity = (name: string, i: number): MachineIdentity => ({ machineId: `${(i % 9) + 1}`.repeat(32), hostname: name, addresses: [], zone: null, labels: { team: i % 2 === 0 ? 'blue' : 'red' } });

describe('server-side watch', { timeout: 180_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc;
  let ca: string;
  let admin: string;
  let reader: string;
  const agents = new Map<string, ScriptedAgent>();
  const opened: WatchStream[] = [];
  let token: string;

  const api = (method: string, pathname: string, body?: unknown) => apiRequest(coord.url, ca, method, pathname, admin, body);
  const watch = async (pathname: string, credential: string | null = reader) => {
    const w = await openWatch(coord.url, ca, pathname, credential);
    opened.push(w);
    return w;
  };
  const enroll = async (name: string, i: number) => {
    const enrolled = await enrollByHand(coord.url, ca, token, identity(name, i));
    assert.equal(enrolled.status, 201, JSON.stringify(enrolled.body));
    const a = new ScriptedAgent(identity(name, i), coord.url, ca, enrolled.body.credential!);
    await a.connect();
    agents.set(name, a);
    return a;
  };
  const named = (name: string, type?: WatchEvent['type']) => (e: WatchEvent) => (type === undefined || e.type === type) && (e.object?.metadata?.name === name || e.object?.machine === name);

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-watch-'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), ARGS);
    ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
    admin = (await readFile(path.join(coord.dataDir, 'admin.credential'), 'utf8')).trim();
    reader = (await readFile(path.join(coord.dataDir, 'read-only.credential'), 'utf8')).trim();
    const created = await api('POST', '/v1/tokens', { uses: 20 });
    token = created.json.token;
    for (const [i, name] of ['node-1', 'node-2', 'node-3'].entries()) await enroll(name, i);
    // The agents are scripted and never install: an artifact only has to exist for a rollout to be made.
    const file = path.join(dir, 'kubelet.tar.gz');
    await writeFile(file, 'kubelet\n');
    const r = await nkctl(coord.nkctlConfig, ['artifact', 'push', file, '--package', 'kubelet', '--version', '1.31.3']);
    assert.equal(r.code, 0, r.stderr);
    await waitFor('three Ready machines', async () => ((await api('GET', '/v1/machines')).json.items as any[]).filter((m) => m.status.phase === 'Ready').length === 3, 30_000);
  });

  const running: ChildProcess[] = [];
  /** The real nkctl, left running (a -w): its stdout so far, and its exit. */
  const nkctlRunning = (args: string[]) => {
    const child = spawn(process.execPath, [BIN.nkctl, ...args], { env: programEnv({ NKCTL_CONFIG: coord.nkctlConfig }), stdio: ['ignore', 'pipe', 'pipe'] });
    running.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const exited = new Promise<number>((resolve) => child.once('close', (code) => resolve(code ?? -1)));
    return { out: () => stdout, err: () => stderr, exited };
  };

  after(async () => {
    for (const c of running) c.kill();
    for (const w of opened) w.close();
    for (const a of agents.values()) a.close();
    await coord?.stop();
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(dir, { recursive: true, force: true });
  });

  test('every list answers with metadata.resourceVersion', async () => {
    for (const p of ['/v1/machines', '/v1/rollouts', '/v1/remediations', '/v1/events']) {
      const r = await apiRequest(coord.url, ca, 'GET', p, reader);
      assert.equal(r.status, 200, p);
      assert.match(r.json.metadata?.resourceVersion ?? '', /^\d+$/, p);
    }
    const events = (await api('GET', '/v1/events?limit=3')).json;
    assert.equal(events.items.length, 3);
    assert.ok(events.items[0].id < events.items[2].id, 'newest last');
  });

  test('machines: ADDED, MODIFIED (NotReady from a report) and DELETED, with a label selector', async () => {
    const all = await watch('/v1/machines?watch=1');
    const blue = await watch('/v1/machines?watch=1&labelSelector=team%3Dblue');
    assert.equal(all.status, 200);
    assert.equal(all.headers['content-type'], 'application/json; charset=utf-8');
    // Without a resourceVersion: the current machines first, as ADDED.
    for (const n of ['node-1', 'node-2', 'node-3']) await all.until(`ADDED ${n}`, named(n, 'ADDED'));
    await blue.until('ADDED node-1', named('node-1', 'ADDED'));
    await all.until('a bookmark', (e) => e.type === 'BOOKMARK' && /^\d+$/.test(e.object.metadata.resourceVersion));
    assert.ok(!blue.events.some(named('node-2')), 'node-2 is red: not on the blue watch');

    await enroll('node-4', 3);
    const added = await all.until('ADDED node-4', named('node-4', 'ADDED'));
    assert.equal(added.object.kind, 'Machine');
    agents.get('node-2')?.report(false);
    await all.until('node-2 NotReady', (e) => named('node-2', 'MODIFIED')(e) && e.object.status.phase === 'NotReady');
    agents.get('node-2')?.report(true);
    await all.until('node-2 Ready again', (e) => named('node-2', 'MODIFIED')(e) && e.object.status.phase === 'Ready' && all.events.indexOf(e) > all.events.findIndex((x) => x.object?.status?.phase === 'NotReady'));

    agents.get('node-4')?.close();
    assert.equal((await api('DELETE', '/v1/machines/node-4')).status, 200);
    const deleted = await all.until('DELETED node-4', named('node-4', 'DELETED'));
    assert.equal(deleted.object.kind, 'Machine');
    assert.ok(!blue.events.some(named('node-4')), 'node-4 is red');
  });

  test('a machine that goes silent turns Unknown on the watch with nothing written by the API', async () => {
    await enroll('node-5', 4);
    const w = await watch('/v1/machines?watch=1');
    await w.until('ADDED node-5 Ready', (e) => named('node-5', 'ADDED')(e) && e.object.status.phase === 'Ready', 10_000).catch(async () => {
      await w.until('node-5 Ready', (e) => named('node-5')(e) && e.object.status.phase === 'Ready');
    });
    agents.get('node-5')?.silence();
    const unknown = await w.until('node-5 Unknown', (e) => named('node-5', 'MODIFIED')(e) && e.object.status.phase === 'Unknown', 15_000);
    assert.match(unknown.object.status.phaseReason, /./);
  });

  test('rollouts: ADDED, MODIFIED and DELETED; name= filters', async () => {
    const all = await watch('/v1/rollouts?watch=1');
    const one = await watch('/v1/rollouts?watch=1&name=watched');
    await all.until('first bookmark', (e) => e.type === 'BOOKMARK');
    const spec = (name: string) => ({ apiVersion: 'nodekeeper.io/v1alpha1', kind: 'Rollout', metadata: { name }, spec: { packages: [{ package: 'kubelet', version: '1.31.3' }], selector: { names: ['node-1'] }, paused: true } });
    for (const name of ['watched', 'other']) {
      const r = await api('POST', '/v1/rollouts', spec(name));
      assert.equal(r.status, 201, JSON.stringify(r.json));
    }
    await all.until('ADDED watched', named('watched', 'ADDED'));
    await all.until('ADDED other', named('other', 'ADDED'));
    await one.until('ADDED watched', named('watched', 'ADDED'));
    for (const name of ['watched', 'other']) {
      const r = await api('POST', `/v1/rollouts/${name}/abort`);
      assert.equal(r.status, 200, JSON.stringify(r.json));
    }
    const aborted = await one.until('watched aborted', named('watched', 'MODIFIED'));
    assert.equal(aborted.object.kind, 'Rollout');
    for (const name of ['watched', 'other']) await waitFor(`${name} deleted`, async () => (await api('DELETE', `/v1/rollouts/${name}`)).status === 200, 15_000);
    await all.until('DELETED watched', named('watched', 'DELETED'));
    await one.until('DELETED watched', named('watched', 'DELETED'));
    assert.ok(!one.events.some(named('other')), 'the name filter leaves other out');
  });

  test('remediations: a fault makes a Remediation (ADDED), its end removes it (DELETED)', async () => {
    const w = await watch('/v1/remediations?watch=1');
    await w.until('first bookmark', (e) => e.type === 'BOOKMARK');
    agents.get('node-3')?.report(false);
    const added = await w.until('node-3 ADDED', named('node-3', 'ADDED'));
    assert.equal(added.object.kind, 'Remediation');
    assert.ok(added.object.faults.length > 0);
    agents.get('node-3')?.report(true);
    await w.until('node-3 DELETED', named('node-3', 'DELETED'), 20_000);
  });

  test('events: the log as a list and a watch that resumes after an id', async () => {
    const list = (await api('GET', '/v1/events?limit=5')).json;
    const rv = list.metadata.resourceVersion;
    const w = await watch(`/v1/events?watch=1&resourceVersion=${rv}`);
    await api('POST', '/v1/tokens', { uses: 1, description: 'watched token' });
    agents.get('node-1')?.report(false);
    const e = await w.until('a MachineNotReady event', (x) => x.type === 'ADDED' && x.object.object === 'machine/node-1' && x.object.reason === 'MachineNotReady');
    assert.ok(e.object.id > Number(rv));
    assert.ok(w.events.filter((x) => x.type === 'ADDED').every((x) => x.object.id > Number(rv)), 'nothing at or before the version');
    agents.get('node-1')?.report(true);
    await w.until('a bookmark with an event id', (x) => x.type === 'BOOKMARK' && Number(x.object.metadata.resourceVersion) >= e.object.id);
  });

  test('bad queries are 400 with a specific code and start nothing', async () => {
    const open = await watchers();
    for (const q of ['watch=2', 'watch=1&resourceVersion=abc', 'watch=1&resourceVersion=99999999999999999999', 'watch=1&resourceVersion=-1',
      'watch=1&watch=1', 'watch=1&labelSelector=%3D%3D', 'watch=1&timeoutSeconds=0', 'resourceVersion=5', 'watch=1&name=x', 'watch=1&allowWatchBookmarks=maybe']) {
      const r = await apiRequest(coord.url, ca, 'GET', `/v1/machines?${q}`, reader);
      assert.equal(r.status, 400, q);
      assert.equal(r.json.code, 'NK_WATCH_QUERY_INVALID', q);
    }
    const r = await apiRequest(coord.url, ca, 'GET', '/v1/rollouts?watch=1&labelSelector=a%3Db', reader);
    assert.equal(r.json.code, 'NK_WATCH_QUERY_INVALID');
    assert.equal(await watchers(), open);
  });

  test('credentials: none is 401; read-only may watch', async () => {
    const none = await watch('/v1/machines?watch=1', null);
    assert.equal(none.status, 401);
    assert.equal(none.body().code, 'NK_AUTH_CREDENTIAL_MISSING');
    const bad = await watch('/v1/events?watch=1', 'nka.not-a-credential');
    assert.equal(bad.status, 401);
    const ro = await watch('/v1/remediations?watch=1', reader);
    assert.equal(ro.status, 200);
    ro.close();
  });

  const metric = async (name: string) => {
    const text = (await apiRequest(coord.url, ca, 'GET', '/metrics', null)).json as string;
    return [...String(text).matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'gm'))].reduce((s, m) => s + Number(m[1]), 0);
  };
  const watchers = async () => metric('nodekeeper_api_watchers');

  test('the watcher cap: one over it is 429 NK_WATCH_TOO_MANY', async () => {
    for (const w of opened.splice(0)) w.close();
    await waitFor('no watchers', async () => (await watchers()) === 0);
    const open: WatchStream[] = [];
    for (let i = 0; i < MAX_WATCHERS; i++) open.push(await watch('/v1/rollouts?watch=1'));
    assert.ok(open.every((w) => w.status === 200));
    const over = await watch('/v1/machines?watch=1');
    assert.equal(over.status, 429);
    assert.equal(over.body().code, 'NK_WATCH_TOO_MANY');
    for (const w of open) w.close();
    await waitFor('watchers released', async () => (await watchers()) === 0);
    const again = await watch('/v1/machines?watch=1');
    assert.equal(again.status, 200);
    again.close();
  });

  test('a resourceVersion older than the history is 410 NK_WATCH_EXPIRED at the start', async () => {
    const rv = (await api('GET', '/v1/machines')).json.metadata.resourceVersion;
    const w = await watch(`/v1/machines?watch=1&resourceVersion=${rv}`);
    // Rounds of pins on every machine, each seen before the next: more changes than the history keeps.
    const names = ((await api('GET', '/v1/machines')).json.items as any[]).map((m) => m.metadata.name);
    for (let round = 0; round * names.length <= HISTORY; round++) {
      for (const n of names) assert.equal((await api('PUT', `/v1/machines/${n}/packages`, { packages: [{ name: 'containerd', version: `1.8.${round}` }] })).status, 200);
      await w.until(`round ${round}`, (e) => e.type === 'MODIFIED' && e.object.metadata.name === names.at(-1) && JSON.stringify(e.object.spec.packages ?? []).includes(`1.8.${round}"`));
    }
    const late = await watch(`/v1/machines?watch=1&resourceVersion=${rv}`);
    assert.equal(late.status, 410);
    assert.equal(late.body().code, 'NK_WATCH_EXPIRED');
    const future = await watch('/v1/rollouts?watch=1&resourceVersion=999999999');
    assert.equal(future.status, 410);
  });

  test('list then watch loses nothing while writes go on', async () => {
    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing) {
        written += 1;
        const r = await api('PUT', '/v1/machines/node-1/packages', { packages: [{ name: 'containerd', version: `1.7.${written}` }] });
        assert.equal(r.status, 200, JSON.stringify(r.json));
      }
    })();
    await waitFor('some writes', () => written > 3);
    const list = (await api('GET', '/v1/machines')).json;
    const w = await watch(`/v1/machines?watch=1&resourceVersion=${list.metadata.resourceVersion}`);
    assert.equal(w.status, 200);
    await waitFor('more writes', () => written > 15, 20_000);
    writing = false;
    await writer;
    const last = `1.7.${written}`;
    const pinOf = (o: any) => o.spec.packages?.find((p: any) => p.name === 'containerd')?.version;
    await w.until(`the last pin ${last}`, (e) => e.type === 'MODIFIED' && e.object.metadata.name === 'node-1' && pinOf(e.object) === last);
    // The state rebuilt from the list and the events is the state now.
    const state = new Map<string, any>(list.items.map((o: any) => [o.metadata.name, o]));
    for (const e of w.events) {
      if (e.type === 'ADDED' || e.type === 'MODIFIED') state.set(e.object.metadata.name, e.object);
      if (e.type === 'DELETED') state.delete(e.object.metadata.name);
    }
    const now = (await api('GET', '/v1/machines')).json;
    assert.deepEqual([...state.keys()].sort(), now.items.map((o: any) => o.metadata.name).sort());
    assert.equal(pinOf(state.get('node-1')), last);
    // Versions only go forward on the stream.
    const marks = w.events.filter((e) => e.type === 'BOOKMARK').map((e) => Number(e.object.metadata.resourceVersion));
    assert.deepEqual(marks, [...marks].sort((a, b) => a - b));
  });

  test('a reader that never reads is dropped; other watchers and the API go on', async () => {
    const before = await metric('nodekeeper_api_watchers_dropped_total');
    const good = await watch('/v1/events?watch=1&limit=1');
    await good.until('first bookmark', (e) => e.type === 'BOOKMARK');
    // A raw TLS client that sends the request and never reads a byte.
    const url = new URL(coord.url);
    const stuck = tls.connect({ host: url.hostname, port: Number(url.port), ca, servername: 'localhost' });
    stuck.on('error', () => {});
    await new Promise((resolve) => stuck.once('secureConnect', resolve));
    stuck.write(`GET /v1/events?watch=1&limit=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${reader}\r\n\r\n`);
    stuck.pause();
    let stuckClosed = false;
    stuck.once('close', () => (stuckClosed = true));
    await waitFor('two event watchers', async () => (await watchers()) >= 2);
    // A burst of big events straight into the store's log (the coordinator's other writers carry on).
    const db = new Database(path.join(coord.dataDir, 'state.db'));
    db.pragma('busy_timeout = 5000');
    const insert = db.prepare("INSERT INTO events (at, object, type, reason, message) VALUES (?, 'test/burst', 'Normal', 'Burst', ?)");
    const big = 'x'.repeat(8 * 1024);
    const burst = 2500;
    db.transaction(() => {
      for (let i = 0; i < burst; i++) insert.run(Date.now(), `${i} ${big}`);
    })();
    db.close();
    await waitFor('the stuck reader dropped', async () => (await metric('nodekeeper_api_watchers_dropped_total')) > before, 30_000);
    // Once it reads again it finds the connection closed.
    stuck.resume();
    await waitFor('its socket closed', () => stuckClosed, 10_000);
    // The reading watcher saw every one, and the API still answers.
    await waitFor('every burst event on the good watch', () => good.events.filter((e) => e.type === 'ADDED' && e.object.reason === 'Burst').length === burst, 30_000);
    assert.equal((await apiRequest(coord.url, ca, 'GET', '/v1/machines', reader)).status, 200);
    stuck.destroy();
  });

  test('nkctl get machines -w prints the table, then a row per change', async () => {
    const w = nkctlRunning(['get', 'machines', '-w', '-l', 'team=blue']);
    await waitFor('the table', () => /^NAME .*\n(node-1 .*\n)/m.test(w.out()), 20_000);
    const before = w.out();
    assert.doesNotMatch(before, /^node-2 /m, 'node-2 is red: the selector applies');
    assert.equal((await api('PUT', '/v1/machines/node-1/packages', { packages: [{ name: 'containerd', version: '1.9.1' }] })).status, 200);
    agents.get('node-1')?.report(false);
    await waitFor('a row for node-1 NotReady', () => /^node-1 +NotReady/m.test(w.out().slice(before.length)), 20_000);
    assert.equal(w.out().slice(before.length).match(/^NAME /m), null, 'no second header');
    agents.get('node-1')?.report(true);
    await waitFor('node-1 Ready again', () => /^node-1 +Ready/m.test(w.out().slice(before.length)), 20_000);
    assert.equal(w.err(), '');
  });

  test('nkctl rollout status -w follows the watch until the rollout stops; get rollouts -w prints its rows', async () => {
    const spec = { apiVersion: 'nodekeeper.io/v1alpha1', kind: 'Rollout', metadata: { name: 'followed' }, spec: { packages: [{ package: 'kubelet', version: '1.31.3' }], selector: { names: ['node-1'] } } };
    assert.equal((await api('POST', '/v1/rollouts', spec)).status, 201);
    const status = nkctlRunning(['rollout', 'status', 'followed', '-w']);
    const rows = nkctlRunning(['get', 'rollouts', '-w']);
    await waitFor('the first status', () => /^rollout\/followed: \w+/m.test(status.out()), 20_000);
    await waitFor('the rollouts table', () => /^NAME +PHASE/m.test(rows.out()) && /^followed /m.test(rows.out()), 20_000);
    // The scripted agent never answers its install: only the pause moves it now.
    assert.equal((await api('POST', '/v1/rollouts/followed/pause')).status, 200);
    let code: number | null = null;
    void status.exited.then((c) => (code = c));
    await waitFor('nkctl rollout status -w to stop', () => code !== null, 30_000).catch((err) => {
      throw new Error(`${String(err)}\nstdout:\n${status.out()}\nstderr:\n${status.err()}`);
    });
    assert.equal(code, 6, status.err());
    assert.match(status.out(), /^rollout\/followed: Paused/m);
    assert.match(status.out(), /^Rollout followed Paused/m);
    assert.doesNotMatch(status.err(), /warning/);
    await waitFor('a Paused row', () => /^followed +Paused/m.test(rows.out()), 20_000);
    const once = await nkctl(coord.nkctlConfig, ['get', 'rollouts', 'followed', '-o', 'name']);
    assert.equal(once.stdout, 'rollout/followed\n');
  });
});
