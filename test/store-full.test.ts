/**
 * A full disk under a real coordinator (architecture invariant 11): its data dir sits on
 * a small tmpfs the test mounts and fills. A node fault and API writes then fail in
 * SQLite with SQLITE_FULL; the coordinator must stay up, say so on /readyz and
 * /metrics, keep serving reads, refuse writes with NK_STORE_UNAVAILABLE (never
 * acknowledge them), and recover once space is freed. What it acknowledged before,
 * during and after survives a kill -9.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, writeSync, rmSync } from 'node:fs';
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

/** Mounts a tmpfs of `size` at a fresh directory; null (with the reason) when mount is impossible. */
function mountTmpfs(size: string): { dir: string; reason: null } | { dir: null; reason: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'nk-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
    return { dir, reason: null };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    return { dir: null, reason: `cannot mount a tmpfs (needs root and CAP_SYS_ADMIN): ${(err as Error).message.split('\n')[0]}` };
  }
}

/** Writes zeros to `file` until the filesystem says ENOSPC. */
function fill(file: string): void {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  // Single bytes too: the last partial block.
  const fd2 = openSync(file, 'a');
  try {
    for (;;) writeSync(fd2, Buffer.alloc(512));
  } catch {
    // ENOSPC: full
  } finally {
    closeSync(fd2);
  }
}

const mount = mountTmpfs('24m');

describe('a full disk under the coordinator', { timeout: 180_000, skip: mount.reason ?? false }, () => {
  // The mount is the data dir itself: the harness keeps the log beside it, off the full disk.
  const root = mount.dir!;
  const dataDir = root;
  const filler = path.join(root, 'filler');
  let coord: CoordinatorProc;

  const http = async (method: string, pathname: string, body?: unknown, credential?: string) => {
    const res = await fetch(new URL(pathname, coord.url), {
      method,
      headers: { 'Content-Type': 'application/json', ...(credential === undefined ? {} : { Authorization: `Bearer ${credential}` }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    let json: any = null;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, body: json };
  };
  let admin: string;
  const tokenIds: string[] = [];

  before(async () => {
    coord = await startCoordinator(dataDir, ['--insecure', '--flush-interval', '100', '--fault-hold', '1', '--liveness-grace', '600000', '--control-plane-version', 'v1.32.1']);
    const { readFileSync } = await import('node:fs');
    admin = readFileSync(path.join(dataDir, 'admin.credential'), 'utf8').trim();
  });

  after(async () => {
    await coord?.stop('SIGKILL');
    try {
      execFileSync('umount', ['-l', root]);
    } catch {
      // already gone
    }
    rmSync(root, { recursive: true, force: true });
    rmSync(`${root}.log`, { force: true });
    rmSync(`${root}-artifacts`, { recursive: true, force: true });
  });

  test('stays up, reports, serves reads, refuses writes, recovers, and loses nothing acknowledged', async () => {
    // Acknowledged before the disk fills: a token and an enrolled machine.
    const t1 = await http('POST', '/v1/tokens', { uses: 5, description: 'before' }, admin);
    assert.equal(t1.status, 201);
    tokenIds.push(t1.body.id);
    const enrolled = await http('POST', '/v1/enroll', { token: t1.body.token, identity: identity(1), agentVersion: 'test', publicKey: newMachinePublicKey() });
    assert.equal(enrolled.status, 201);

    // A connected machine (a raw agent session), which is sent an install by a rollout
    // and whose kubelet then turns unhealthy: a node fault for remediation.
    const agent = async () => {
      const ws = new WebSocket(`${coord.url.replace('http', 'ws')}/v1/agent/connect`, { headers: { Authorization: `Bearer ${enrolled.body.credential}` } });
      const frames: any[] = [];
      ws.on('message', (d) => frames.push(JSON.parse(String(d))));
      const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      ws.on('error', () => {});
      ws.send(JSON.stringify({ type: 'hello', minProtocolVersion: 1, maxProtocolVersion: 1, agentVersion: 'test', identity: identity(1) }));
      return { ws, frames, closed };
    };
    const first = await agent();
    const ws = first.ws;
    ws.send(JSON.stringify({ type: 'report', seq: 1, full: true, report: { ...sampleReport, identity: identity(1) } }));
    await waitFor('node-1 Ready', async () => (await http('GET', '/v1/machines/node-1', undefined, admin)).body?.status?.phase === 'Ready');
    const artifact = await kubeletArtifact(path.join(`${root}-artifacts`), { version: 'v1.31.3' });
    const pushed = await nkctl(coord.nkctlConfig, ['artifact', 'push', artifact.file, '--package', 'kubelet', '--version', '1.31.3']);
    assert.equal(pushed.code, 0, pushed.stderr);
    const created = await nkctl(coord.nkctlConfig, ['rollout', 'create', 'during-outage', '--package', 'kubelet=1.31.3', '--names', 'node-1', '--canary', '0', '--batches', '100']);
    assert.equal(created.code, 0, created.stderr);
    const install = await waitFor('an install command', () => first.frames.find((f) => f.type === 'command'), 30_000);

    fill(filler);
    // The install's result cannot be stored: it is not taken, the agent is asked to come back.
    ws.send(JSON.stringify({ type: 'command.result', commandId: install.commandId, ok: true, result: { outcome: 'installed', message: 'done' } }));
    assert.equal(await first.closed, 4013, 'closed with try-again-later');
    assert.equal(first.frames.find((f) => f.type === 'error')?.code, 'NK_PROTO_TRY_AGAIN_LATER');
    const second = await agent();
    const bad = { ...sampleReport, identity: identity(1), kubelet: { ...sampleReport.kubelet, health: 'unhealthy', reason: 'HealthzFailed', message: 'refused' } };
    second.ws.send(JSON.stringify({ type: 'report', seq: 1, full: true, report: bad }));

    // Writes until one is refused: SQLite may still have room in pages it already holds.
    let refused: { status: number; body: any } | null = null;
    for (let i = 0; i < 400 && refused === null; i++) {
      const r = await http('POST', '/v1/tokens', { uses: 1, description: `during ${'x'.repeat(200)} ${i}` }, admin);
      if (r.status === 201) tokenIds.push(r.body.id); // acknowledged: must survive
      else refused = r;
    }
    assert.ok(refused !== null, 'some write was refused on a full disk');
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'NK_STORE_UNAVAILABLE');

    // Several controller ticks later: still up, not ready, reads served.
    await new Promise((r) => setTimeout(r, 5000));
    assert.equal(coord.child.exitCode, null, `the coordinator exited:\n${coord.log().slice(-3000)}`);
    const ready = await fetch(new URL('/readyz', coord.url));
    assert.equal(ready.status, 503);
    assert.match(await ready.text(), /SQLITE_FULL/);
    const metrics = await (await fetch(new URL('/metrics', coord.url))).text();
    // The node fault's remediation step (the crash of the issue) and the heartbeats' batch both failed.
    assert.match(metrics, /nodekeeper_store_errors_total\{op="remediation",code="SQLITE_FULL"\} [1-9]/);
    assert.match(metrics, /nodekeeper_store_errors_total\{op="batch",code="SQLITE_FULL"\} [1-9]/);
    assert.match(metrics, /nodekeeper_store_available 0/);
    assert.equal((await http('GET', '/v1/machines', undefined, admin)).status, 200);
    const got = await nkctl(coord.nkctlConfig, ['get', 'machines']);
    assert.equal(got.code, 0, got.stderr);
    assert.match(got.stdout, /node-1/);
    const listed = await nkctl(coord.nkctlConfig, ['token', 'list', '-o', 'json']);
    assert.equal(listed.code, 0, listed.stderr);
    // nkctl tells a refused write apart from a bug.
    const w = await nkctl(coord.nkctlConfig, ['token', 'create']);
    assert.notEqual(w.code, 0);
    assert.match(w.stderr, /NK_STORE_UNAVAILABLE/);

    // Space again: it recovers on its own, and says so.
    rmSync(filler);
    await waitFor('ready again', async () => (await fetch(new URL('/readyz', coord.url))).status === 200, 60_000, 250);
    const t2 = await http('POST', '/v1/tokens', { uses: 1, description: 'after' }, admin);
    assert.equal(t2.status, 201);
    tokenIds.push(t2.body.id);
    // The agent comes back: the open command is delivered again and its result taken now.
    second.ws.close();
    const third = await agent();
    await waitFor('the install re-delivered', () => third.frames.find((f) => f.type === 'command' && f.commandId === install.commandId), 30_000);
    third.ws.send(JSON.stringify({ type: 'command.result', commandId: install.commandId, ok: true, result: { outcome: 'installed', message: 'done' } }));
    await waitFor('the result stored', () => {
      const d = new Database(path.join(dataDir, 'state.db'), { readonly: true });
      try {
        return (d.prepare('SELECT state FROM commands WHERE id = ?').get(install.commandId) as { state: string } | undefined)?.state === 'Succeeded';
      } finally {
        d.close();
      }
    });
    third.ws.close();

    // kill -9 and restart: everything acknowledged is there.
    await coord.stop('SIGKILL');
    coord = await startCoordinator(dataDir, ['--insecure', '--flush-interval', '100', '--liveness-grace', '600000']);
    const after = await http('GET', '/v1/tokens', undefined, admin);
    assert.equal(after.status, 200);
    const have = new Set((after.body.items as Array<{ id: string }>).map((t) => t.id));
    for (const id of tokenIds) assert.ok(have.has(id), `acknowledged token ${id} survived`);
    assert.equal((await http('GET', '/v1/machines/node-1', undefined, admin)).status, 200);
    // The outage and the recovery are in the audit trail.
    const db = new Database(path.join(dataDir, 'state.db'), { readonly: true });
    try {
      const reasons = (db.prepare("SELECT reason, message FROM events WHERE object = 'store/coordinator'").all() as Array<{ reason: string; message: string }>);
      assert.ok(reasons.some((e) => e.reason === 'StoreRecovered' && /SQLITE_FULL/.test(e.message)), JSON.stringify(reasons));
    } finally {
      db.close();
    }
  });
});
