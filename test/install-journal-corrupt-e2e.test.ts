/**
 * A corrupt install journal, end to end: a real agent is killed (SIGKILL) in the middle
 * of a rollout's install, its journal record is torn, and it is started again. The
 * record is quarantined, the agent keeps running, and the coordinator sees the command
 * end Failed with NK_INSTALL_JOURNAL_CORRUPT (before the fix the agent's recovery threw,
 * every later journal was left unrecovered, and the command never got an answer).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { kubeletArtifact } from './harness/artifacts.ts';
import { startContainerdWithNetwork, type RunningContainerd } from './harness/containerd.ts';
import { createToken, nkctlOk, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { makeSupervisedNode, startNodeAgent, stopNode, type SupervisedNode } from './harness/supervised-node.ts';

const ARGS = ['--heartbeat-interval', '500', '--liveness-grace', '5000', '--liveness-recover', '500', '--control-plane-version', 'v1.32.1'];

describe('a corrupt install journal on a real agent', { timeout: 180_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc;
  let containerd: RunningContainerd;
  let node: SupervisedNode;
  const nk = (args: string[]) => nkctlOk(coord.nkctlConfig, args);

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-journal-e2e-'));
    containerd = await startContainerdWithNetwork(path.join(dir, 'containerd'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), ARGS);
  });

  after(async () => {
    if (node !== undefined) await stopNode(node);
    await coord?.stop();
    await containerd?.stop();
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(dir, { recursive: true, force: true });
  });

  test('the record is quarantined, and the coordinator sees the command Failed with NK_INSTALL_JOURNAL_CORRUPT', async () => {
    node = await makeSupervisedNode(dir, { name: 'node-a', machineId: '1'.repeat(32), kubeletVersion: 'v1.31.2', runtimeSocket: containerd.socket });
    const { token, caCertHash } = await createToken(coord.nkctlConfig, 1);
    startNodeAgent(node, { server: coord.url, token, caHash: caCertHash });
    await waitFor('node-a Ready', async () => (JSON.parse(await nk(['get', 'machines', '-o', 'json'])) as { items: Array<{ status: Record<string, unknown> }> }).items[0]?.status['phase'] === 'Ready', 30_000);

    // A version whose healthz fails, with a long health timeout: the install sits in its health step.
    const art = await kubeletArtifact(path.join(dir, 'art'), { version: 'v1.31.3', healthz: 'fail' });
    const pushed = JSON.parse(await nk(['artifact', 'push', art.file, '--package', 'kubelet', '--version', '1.31.3', '-o', 'json'])) as { url: string; sha256: string; size: number };
    const manifest = { name: 'kubelet', format: 'tar.gz', links: [{ path: '/usr/bin/kubelet', target: 'kubelet' }], service: 'kubelet.service', healthProbe: 'kubelet', healthTimeoutMs: 120_000 };
    await writeFile(path.join(dir, 'cpv.yaml'), stringify({ apiVersion: 'nodekeeper.io/v1alpha1', kind: 'ClusterPackageVersion', metadata: { name: 'cluster' }, spec: { packages: [{ name: 'kubelet', version: '1.31.3', artifact: { url: pushed.url, sha256: pushed.sha256, size: pushed.size }, manifest }] } }));
    await nk(['apply', '-f', path.join(dir, 'cpv.yaml')]);
    await nk(['rollout', 'create', 'slow', '--package', 'kubelet=1.31.3', '--canary', '1', '--batches', '100']);

    const journalDir = path.join(node.stateDir, 'journal');
    const record = await waitFor('the install journaled at its health step', async () => {
      const names = (await readdir(journalDir).catch(() => [] as string[])).filter((n) => n.endsWith('.json'));
      for (const n of names) if (/"step":"health"/.test(await readFile(path.join(journalDir, n), 'utf8').catch(() => ''))) return n;
      return undefined;
    }, 60_000, 100);
    await node.agent?.stop('SIGKILL');
    await writeFile(path.join(journalDir, record), '{"kind":"install","commandId":');
    startNodeAgent(node, { server: coord.url });

    const row = await waitFor('the command answered', () => {
      const db = new Database(path.join(coord.dataDir, 'state.db'), { readonly: true });
      try {
        const r = db.prepare("SELECT id, state, error FROM commands WHERE owner = 'rollout/slow' AND kind = 'package.install'").get() as { id: string; state: string; error: string | null } | undefined;
        return r !== undefined && r.state !== 'Pending' && r.state !== 'Sent' && r.state !== 'Running' ? r : undefined;
      } finally {
        db.close();
      }
    }, 60_000, 250);
    assert.equal(`${row.id}.json`, record);
    assert.equal(row.state, 'Failed');
    const error = JSON.parse(row.error ?? '{}') as { code?: string; message?: string };
    assert.equal(error.code, 'NK_INSTALL_JOURNAL_CORRUPT', row.error ?? '');
    assert.match(error.message ?? '', /quarantine/);
    assert.equal((await readdir(path.join(journalDir, 'quarantine'))).filter((n) => n.startsWith(record)).length, 1);
    assert.equal(node.agent?.child.exitCode, null, 'the agent is still running');
  });
});
