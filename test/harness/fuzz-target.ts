/**
 * A real coordinator set up for generative tests: its CA and credentials, three
 * enrolled machines (node-1, node-2 for the API, ws-node for the agent protocol), a
 * bootstrap token with uses left and a spare one to revoke, an artifact a valid rollout
 * can target; plus the checks the tests repeat (alive, a raw request, the state probe)
 * and an agent session whose every frame can be synchronised with a ping.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WebSocket } from 'ws';
import type { MachineIdentity } from '@nodekeeper/protocol';
import type { FuzzContext } from './api-fuzz.ts';
import { createToken, startCoordinator, type CoordinatorProc } from './processes.ts';
import { rawRequest, type RawRequest, type RawResult } from './raw-http.ts';
import { StateProbe } from './state-snapshot.ts';
import { newMachinePublicKey } from './machine-key.ts';

export const enrollIdentity = (machineId: string, hostname: string): MachineIdentity => ({ machineId, hostname, addresses: [], zone: null, labels: { pool: 'a' } });
export const WS_ID = enrollIdentity('e'.repeat(32), 'ws-node');
const HOST = '127.0.0.1';
const API_VIEWS = ['/v1/machines', '/v1/tokens', '/v1/clusterpackageversion', '/v1/rollouts', '/v1/remediations', '/v1/remediationrules', '/v1/artifacts', '/v1/host', '/v1/packages'];

export interface FuzzTarget {
  readonly coord: CoordinatorProc;
  readonly ca: string;
  readonly probe: StateProbe;
  readonly ctx: FuzzContext;
  /** ws-node's machine credential. */
  readonly wsCredential: string;
  call(r: RawRequest): Promise<RawResult>;
  /**
   * What the API shows (machines, tokens, CPV, rollouts, remediation, rules, artifacts,
   * host, packages), read with the read-only credential: state held in memory too.
   */
  apiView(): Promise<ReadonlyMap<string, string>>;
  /** Throws unless the process lives and /healthz answers 200; names what was sent first before a death. */
  assertAlive(after: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startFuzzTarget(name: string, opts: { ignoreTables?: readonly string[] } = {}): Promise<FuzzTarget> {
  const dir = await mkdtemp(path.join(tmpdir(), `nk-${name}-`));
  const coord = await startCoordinator(path.join(dir, 'coordinator'), ['--liveness-grace', '600000', '--flush-interval', '50']);
  const ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
  const call = (r: RawRequest) => rawRequest(HOST, coord.port, ca, r);
  const admin = (await readFile(path.join(coord.dataDir, 'admin.credential'), 'utf8')).trim();
  const readOnly = (await readFile(path.join(coord.dataDir, 'read-only.credential'), 'utf8')).trim();
  const { token } = await createToken(coord.nkctlConfig, 10_000);
  const creds: Record<string, string> = {};
  for (const [id, host] of [['1'.repeat(32), 'node-1'], ['2'.repeat(32), 'node-2'], [WS_ID.machineId, WS_ID.hostname]] as const) {
    const body = { token, identity: enrollIdentity(id, host), agentVersion: 'fuzz', publicKey: newMachinePublicKey() };
    const r = await call({ method: 'POST', target: '/v1/enroll', headers: [['Content-Type', 'application/json']], body: Buffer.from(JSON.stringify(body)) });
    assert.ok(r.kind === 'answer' && r.response.status === 201, JSON.stringify(r));
    creds[host] = JSON.parse(r.response.body.toString('utf8')).credential;
  }
  // A token of its own for the fuzzer to revoke, so enrollment stays reachable.
  const { token: spare } = await createToken(coord.nkctlConfig, 1);
  // An artifact for the rollout body's target: a valid rollout is accepted, and the
  // operator's requests (pause, resume, abort, rollback) reach a real rollout.
  const pushed = await call({ method: 'PUT', target: '/v1/artifacts?package=containerd&version=1.7.99', headers: [['Authorization', `Bearer ${admin}`], ['Content-Type', 'application/octet-stream']], body: Buffer.from('containerd 1.7.99') });
  assert.ok(pushed.kind === 'answer' && pushed.response.status === 201, JSON.stringify(pushed));
  const probe = new StateProbe(coord.dataDir, opts.ignoreTables);
  const agent = new https.Agent({ keepAlive: true, ca, maxSockets: 1 });
  const get = (p: string) => new Promise<string>((resolve, reject) => {
    https.get(`https://${HOST}:${coord.port}${p}`, { agent, headers: { Authorization: `Bearer ${readOnly}` } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => resolve(`${res.statusCode} ${body}`));
    }).on('error', reject);
  });
  let firstDeath: string | null = null;
  return {
    coord, ca, probe, call,
    async apiView() {
      const view = new Map<string, string>();
      for (const p of API_VIEWS) view.set(p, await get(p));
      return view;
    },
    wsCredential: creds['ws-node']!,
    ctx: { admin, readOnly, machine: creds['node-1']!, token, tokenId: spare.split('.')[0]!, machines: ['node-1', 'node-2'], port: coord.port },
    async assertAlive(after: string) {
      if (coord.child.exitCode !== null || coord.child.signalCode !== null) {
        // Shrinking goes on against a dead process: the first death is the finding.
        firstDeath ??= after;
        throw new Error(`the coordinator died (${coord.child.exitCode ?? coord.child.signalCode}), first after ${firstDeath}\n${coord.log().slice(-3000)}`);
      }
      const r = await call({ method: 'GET', target: '/healthz', headers: [], body: null });
      if (r.kind !== 'answer' || r.response.status !== 200) throw new Error(`/healthz did not answer 200 after ${after}: ${JSON.stringify(r).slice(0, 500)}`);
    },
    async stop() {
      agent.destroy();
      probe.close();
      await coord.stop();
      if (process.env['NK_FUZZ_KEEP'] === undefined) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** An agent connection whose frames are answered in order: `sync` waits for all answers so far. */
export interface AgentSession {
  readonly ws: WebSocket;
  readonly received: string[];
  closed: { code: number; reason: string } | null;
  readonly closing: Promise<{ code: number; reason: string }>;
  /** Resolves once the server handled everything sent before (its pong comes after its answers), or closed. */
  sync(): Promise<void>;
  /** Closes (normal closure) unless the server did. */
  end(): Promise<void>;
}

export async function openAgentSession(t: FuzzTarget, credential = t.wsCredential): Promise<AgentSession> {
  const ws = new WebSocket(`wss://${HOST}:${t.coord.port}/v1/agent/connect`, { ca: t.ca, headers: { Authorization: `Bearer ${credential}` }, maxPayload: 1 << 20 });
  let k = 0;
  const s: AgentSession = {
    ws, received: [], closed: null,
    closing: new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') }))),
    sync() {
      if (s.closed !== null || ws.readyState !== WebSocket.OPEN) return s.closing.then(() => undefined);
      const tag = `sync-${k++}`;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no pong within 10 s: the coordinator stopped reading')), 10_000);
        const done = () => {
          clearTimeout(timer);
          ws.off('pong', onPong);
          resolve();
        };
        const onPong = (d: Buffer) => {
          if (d.toString() === tag) done();
        };
        ws.on('pong', onPong);
        void s.closing.then(done);
        ws.ping(tag);
      });
    },
    async end() {
      if (s.closed === null) ws.close(1000);
      await s.closing;
    },
  };
  void s.closing.then((c) => (s.closed = c));
  ws.on('message', (d) => s.received.push(String(d)));
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_q, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
  return s;
}

/** Says hello as ws-node and waits for the welcome. */
export async function hello(s: AgentSession, identity: MachineIdentity = WS_ID): Promise<void> {
  s.ws.send(JSON.stringify({ type: 'hello', minProtocolVersion: 1, maxProtocolVersion: 1, agentVersion: 'fuzz', identity }));
  await s.sync();
  const welcome = s.received.shift();
  if (welcome === undefined || JSON.parse(welcome).type !== 'welcome') throw new Error(`no welcome: ${welcome}`);
}
