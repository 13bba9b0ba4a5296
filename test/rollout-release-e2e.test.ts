/**
 * A machine that fails its soak does not block later rollouts (docs/rollouts.md,
 * "Holds"), against a real coordinator and the real nkctl, with a scripted agent over a
 * real WebSocket: the install succeeds, the kubelet goes unhealthy during the soak, the
 * rollout ends CompletedWithFailures; then a second rollout of the same package reaches
 * the machine (its install is sent) instead of waiting on it (BusyElsewhere) for good.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { WebSocket } from 'ws';
import type { MachineIdentity } from '@nodekeeper/protocol';
import { sampleReport } from '@nodekeeper/protocol/testing';
import { kubeletArtifact } from './harness/artifacts.ts';
import { newMachinePublicKey } from './harness/machine-key.ts';
import { nkctl, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';

const identity: MachineIdentity = { machineId: '7'.repeat(32), hostname: 'node-7', addresses: [], zone: null, labels: {} };

describe('a failed soak releases the machine when its rollout finishes', { timeout: 120_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc;
  let ca: string;
  const nk = async (args: string[]) => {
    const r = await nkctl(coord.nkctlConfig, args);
    assert.equal(r.code, 0, `nkctl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  /** The stored state of rollout `name` (what the coordinator persisted). */
  const state = (name: string): any => {
    const d = new Database(path.join(coord.dataDir, 'state.db'), { readonly: true, fileMustExist: true });
    try {
      const row = d.prepare('SELECT state FROM rollouts WHERE name = ?').get(name) as { state: string } | undefined;
      return row === undefined ? undefined : JSON.parse(row.state);
    } finally {
      d.close();
    }
  };
  const enroll = (token: string) => new Promise<any>((resolve, reject) => {
    const req = https.request(new URL('/v1/enroll', coord.url), { method: 'POST', ca, headers: { 'Content-Type': 'application/json' } }, (res) => {
      let t = '';
      res.on('data', (c: Buffer) => (t += c));
      res.on('end', () => resolve(JSON.parse(t)));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ token, identity, agentVersion: 'test', publicKey: newMachinePublicKey() }));
  });

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-release-'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), ['--flush-interval', '100', '--liveness-grace', '600000', '--control-plane-version', 'v1.32.1']);
    ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
  });

  after(async () => {
    await coord?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('kubelet unhealthy during the soak: CompletedWithFailures, then the next rollout installs on the machine', async () => {
    const { token } = JSON.parse(await nk(['token', 'create', '-o', 'json']));
    const { credential } = await enroll(token);
    const ws = new WebSocket(`${coord.url.replace('https', 'wss')}/v1/agent/connect`, { ca, headers: { Authorization: `Bearer ${credential}` } });
    const frames: any[] = [];
    ws.on('message', (d) => frames.push(JSON.parse(String(d))));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    let seq = 0;
    const report = (version: string, health: 'healthy' | 'unhealthy') => ws.send(JSON.stringify({
      type: 'report', seq: ++seq, full: true,
      report: { ...sampleReport, identity, kubelet: { ...sampleReport.kubelet, health, reason: health === 'healthy' ? 'HealthzOk' : 'HealthzFailed', version: { raw: `Kubernetes v${version}`, semver: version, source: 'binary' } } },
    }));
    ws.send(JSON.stringify({ type: 'hello', minProtocolVersion: 1, maxProtocolVersion: 1, agentVersion: 'test', identity }));
    report('1.31.2', 'healthy');
    await waitFor('node-7 Ready', async () => JSON.parse(await nk(['get', 'machine', 'node-7', '-o', 'json'])).status.phase === 'Ready');
    for (const version of ['1.31.3', '1.31.4']) {
      const a = await kubeletArtifact(path.join(dir, 'artifacts'), { version: `v${version}` });
      await nk(['artifact', 'push', a.file, '--package', 'kubelet', '--version', version]);
    }
    const installOf = (version: string) => frames.find((f) => f.type === 'command' && f.kind === 'package.install' && f.params?.version === version);

    await nk(['rollout', 'create', 'first', '--package', 'kubelet=1.31.3', '--names', 'node-7', '--canary', '0', '--batches', '100', '--soak', '60s', '--max-failures', '2']);
    const first = await waitFor('the install of 1.31.3 sent', () => installOf('1.31.3'), 30_000);
    ws.send(JSON.stringify({ type: 'command.result', commandId: first.commandId, ok: true, result: { outcome: 'installed', activeVersion: '1.31.3', message: 'done' } }));
    report('1.31.3', 'healthy');
    await waitFor('node-7 soaking, seen healthy', () => state('first')?.machines['node-7']?.soakFrom != null, 30_000);
    report('1.31.3', 'unhealthy');
    await waitFor('first completed', () => state('first')?.phase === 'Completed', 30_000);
    assert.equal(state('first').reason, 'CompletedWithFailures');
    assert.equal(state('first').machines['node-7'].reason, 'UnhealthyDuringSoak');

    report('1.31.3', 'healthy'); // the kubelet recovers (or is repaired)
    await nk(['rollout', 'create', 'second', '--package', 'kubelet=1.31.4', '--names', 'node-7', '--canary', '0', '--batches', '100', '--soak', '1s']);
    await waitFor('the install of 1.31.4 sent to the machine the first rollout failed on', () => installOf('1.31.4'), 30_000);
    assert.notEqual(state('second')?.waiting?.reason, 'BusyElsewhere');
    assert.equal(state('second').machines['node-7'].phase, 'Installing');
    ws.close();
  });
});
