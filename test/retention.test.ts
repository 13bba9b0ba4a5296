/**
 * Retention and machine deletion against a real coordinator and the real nkctl:
 * - with limits of seconds, old events, spent tokens and superseded observations are
 *   pruned by the coordinator's own timer, counted in nodekeeper_store_rows_pruned_total,
 *   and what must stay (young rows, each component's latest observation, a token that
 *   enrolled a machine still here) stays;
 * - `nkctl machine delete` is refused while a rollout holds the machine, works with
 *   --force, removes its rows, closes its connection and refuses its credential, and is
 *   recorded as an event.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { WebSocket } from 'ws';
import type { MachineIdentity } from '@nodekeeper/protocol';
import { sampleReport } from '@nodekeeper/protocol/testing';
import { kubeletArtifact } from './harness/artifacts.ts';
import { nkctl, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { newMachinePublicKey } from './harness/machine-key.ts';

const identity = (n: number): MachineIdentity => ({ machineId: `${n}`.repeat(32), hostname: `node-${n}`, addresses: [], zone: null, labels: {} });

describe('retention and machine deletion', { timeout: 240_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc;
  let ca: string;
  const nk = async (args: string[]) => {
    const r = await nkctl(coord.nkctlConfig, args);
    assert.equal(r.code, 0, `nkctl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const db = <T>(fn: (d: Database.Database) => T): T => {
    const d = new Database(path.join(coord.dataDir, 'state.db'), { readonly: true, fileMustExist: true });
    try {
      return fn(d);
    } finally {
      d.close();
    }
  };
  const post = async (pathname: string, body: unknown): Promise<any> => {
    const https = await import('node:https');
    return new Promise((resolve, reject) => {
      const req = https.request(new URL(pathname, coord.url), { method: 'POST', ca, headers: { 'Content-Type': 'application/json' } }, (res) => {
        let t = '';
        res.on('data', (c: Buffer) => (t += c));
        res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(t) }));
      });
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  };
  const connect = async (credential: string) => {
    const ws = new WebSocket(`${coord.url.replace('https', 'wss')}/v1/agent/connect`, { ca, headers: { Authorization: `Bearer ${credential}` } });
    const frames: any[] = [];
    ws.on('message', (d) => frames.push(JSON.parse(String(d))));
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    const opened = await new Promise<boolean>((resolve) => {
      ws.once('open', () => resolve(true));
      ws.once('unexpected-response', () => resolve(false));
      ws.once('error', () => resolve(false));
    });
    return { ws, frames, closed, opened };
  };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-retention-'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), [
      '--retain-events', '15', '--retain-tokens', '1', '--retain-observations', '3', '--retain-commands', '3600', '--retention-interval', '500',
      '--flush-interval', '100', '--liveness-grace', '600000', '--control-plane-version', 'v1.32.1',
    ]);
    ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
  });

  after(async () => {
    await coord?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('old events, spent tokens and superseded observations are pruned; what must stay stays', async () => {
    const enrolling = JSON.parse(await nk(['token', 'create', '--uses', '2', '--ttl', '20s', '-o', 'json']));
    const spent = JSON.parse(await nk(['token', 'create', '--ttl', '1s', '-o', 'json']));
    const m1 = await post('/v1/enroll', { token: enrolling.token, identity: identity(1), agentVersion: 'test', publicKey: newMachinePublicKey() });
    assert.equal(m1.status, 201);
    const s = await connect(m1.body.credential);
    s.ws.send(JSON.stringify({ type: 'hello', minProtocolVersion: 1, maxProtocolVersion: 1, agentVersion: 'test', identity: identity(1) }));
    // The kubelet flaps: several observations of it, then it settles.
    const report = (health: 'healthy' | 'unhealthy', seq: number) => ({ type: 'report', seq, full: true, report: { ...sampleReport, identity: identity(1), kubelet: { ...sampleReport.kubelet, health, reason: health === 'healthy' ? 'HealthzOk' : 'HealthzFailed' } } });
    for (let i = 1; i <= 5; i++) {
      s.ws.send(JSON.stringify(report(i % 2 === 0 ? 'unhealthy' : 'healthy', i)));
      await new Promise((r) => setTimeout(r, 250));
    }
    const kubeletRows = () => db((d) => (d.prepare(`SELECT count(*) AS n FROM observations WHERE machine = 'node-1' AND component = 'kubelet'`).get() as { n: number }).n);
    assert.ok(kubeletRows() >= 3, 'observations were written');
    const firstEvent = db((d) => (d.prepare('SELECT min(id) AS id FROM events').get() as { id: number }).id);

    await waitFor('old rows pruned', () => db((d) => {
      const tokens = (d.prepare('SELECT id FROM tokens').all() as Array<{ id: string }>).map((t) => t.id);
      const minEvent = (d.prepare('SELECT min(id) AS id FROM events').get() as { id: number | null }).id;
      return !tokens.includes(spent.id) && kubeletRows() === 1 && (minEvent === null || minEvent > firstEvent) && Date.now() > Date.parse(enrolling.expiresAt) + 2000;
    }), 60_000, 500);
    // Kept: the token that enrolled node-1 (expired, but the machine names it) and the
    // latest observation of each component.
    assert.ok(db((d) => d.prepare('SELECT 1 FROM tokens WHERE id = ?').get(enrolling.id)) !== undefined, 'a token that enrolled a machine still here is kept');
    const latest = db((d) => d.prepare(`SELECT component, health FROM observations WHERE machine = 'node-1' ORDER BY component`).all() as Array<{ component: string; health: string }>);
    assert.deepEqual(latest.map((o) => o.component), ['cni', 'host', 'kubelet', 'runtime']);
    assert.equal(latest.find((o) => o.component === 'kubelet')?.health, 'healthy');
    // Deletes by anyone else are still refused by the store itself.
    const rw = new Database(path.join(coord.dataDir, 'state.db'));
    try {
      rw.prepare(`INSERT INTO events (at, object, type, reason, message) VALUES (0, 'x/y', 'Normal', 'Test', 'an old row')`).run();
      assert.throws(() => rw.prepare('DELETE FROM events').run(), /append-only/);
    } finally {
      rw.close();
    }
    const metrics = await new Promise<string>((resolve, reject) => {
      import('node:https').then((https) => https.get(new URL('/metrics', coord.url), { ca }, (res) => {
        let t = '';
        res.on('data', (c: Buffer) => (t += c));
        res.on('end', () => resolve(t));
      }).on('error', reject), reject);
    });
    for (const kind of ['events', 'tokens', 'observations']) assert.match(metrics, new RegExp(`nodekeeper_store_rows_pruned_total\\{kind="${kind}"\\} [1-9]`));
    s.ws.close();
    await s.closed;
  });

  test('machine delete: refused while a rollout holds the machine, then forced; rows, connection and credential gone', async () => {
    const { token } = JSON.parse(await nk(['token', 'create', '--uses', '2', '-o', 'json']));
    const m2 = await post('/v1/enroll', { token, identity: identity(2), agentVersion: 'test', publicKey: newMachinePublicKey() });
    const m3 = await post('/v1/enroll', { token, identity: identity(3), agentVersion: 'test', publicKey: newMachinePublicKey() });
    // node-2 connects and reports kubelet 1.31.2, then never answers a command.
    const s = await connect(m2.body.credential);
    s.ws.send(JSON.stringify({ type: 'hello', minProtocolVersion: 1, maxProtocolVersion: 1, agentVersion: 'test', identity: identity(2) }));
    s.ws.send(JSON.stringify({ type: 'report', seq: 1, full: true, report: { ...sampleReport, identity: identity(2) } }));
    await waitFor('node-2 Ready', async () => JSON.parse(await nk(['get', 'machine', 'node-2', '-o', 'json'])).status.phase === 'Ready');
    const artifact = await kubeletArtifact(path.join(dir, 'artifacts'), { version: 'v1.31.3' });
    await nk(['artifact', 'push', artifact.file, '--package', 'kubelet', '--version', '1.31.3']);
    await nk(['rollout', 'create', 'hold-node-2', '--package', 'kubelet=1.31.3', '--names', 'node-2', '--canary', '0', '--batches', '100']);
    await waitFor('the install sent to node-2', () => s.frames.find((f) => f.type === 'command'), 30_000);

    const refused = await nkctl(coord.nkctlConfig, ['machine', 'delete', 'node-2']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /NK_MACHINE_IN_USE/);
    assert.match(refused.stderr, /hold-node-2/);
    assert.equal(JSON.parse(await nk(['get', 'machine', 'node-2', '-o', 'json'])).metadata.name, 'node-2', 'nothing deleted');

    assert.match(await nk(['machine', 'delete', 'node-2', '--force']), /machine\/node-2 deleted \(1 commands/);
    const event = db((d) => d.prepare(`SELECT message FROM events WHERE object = 'machine/node-2' AND reason = 'Deleted'`).get() as { message: string } | undefined);
    assert.match(event?.message ?? '', /forced while held by hold-node-2/);
    assert.equal(await s.closed, 4003, 'its connection is closed');
    const gone = await nkctl(coord.nkctlConfig, ['get', 'machine', 'node-2']);
    assert.match(gone.stderr, /NK_MACHINE_NOT_FOUND/);
    const again = await connect(m2.body.credential);
    assert.equal(again.opened, false, 'its credential is refused');
    const rows = db((d) => ({
      machine: d.prepare(`SELECT 1 FROM machines WHERE name = 'node-2'`).get(),
      commands: (d.prepare(`SELECT count(*) AS n FROM commands WHERE machine = 'node-2'`).get() as { n: number }).n,
      observations: (d.prepare(`SELECT count(*) AS n FROM observations WHERE machine = 'node-2'`).get() as { n: number }).n,
    }));
    assert.equal(rows.machine, undefined);
    assert.equal(rows.commands, 0);
    assert.equal(rows.observations, 0);

    // A machine no rollout holds goes without --force.
    assert.match(await nk(['machine', 'delete', 'node-3']), /machine\/node-3 deleted/);
    assert.ok(m3.status === 201);
    const names = JSON.parse(await nk(['get', 'machines', '-o', 'json'])).items.map((m: any) => m.metadata.name);
    assert.deepEqual(names.filter((n: string) => n !== 'node-1'), []);
  });
});
