/**
 * Architecture invariant 3: kill -9 an install of the kubelet stand-in vA -> vB at every
 * step (and in the middle of a rollback); a second process recovers; the package is then
 * wholly vA or wholly vB (the `current` link, /usr/bin/kubelet, `kubelet --version`, the
 * running process, healthz) and the recorded result says which. A vB whose healthz fails
 * rolls back to vA by itself.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readlink, realpath, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { checkHealthz } from '../agent/src/probes/healthz.ts';
import { INSTALL_STEPS, type InstallParams } from '../packages/protocol/src/index.ts';
import type { JournalStep } from '../agent/src/install/journal.ts';
import { installParams, kubeletArtifact, kubeletManifest, serveArtifacts, type Artifact, type ArtifactServer } from './harness/artifacts.ts';
import { defineKubeletUnit, packagePaths, testNode, type TestNode } from './fixtures/install-node.ts';
import { waitFor } from './harness/processes.ts';

const CHILD = fileURLToPath(new URL('./fixtures/install-child.ts', import.meta.url));
const VA = '1.31.2';
const VB = '1.32.0';
let work: string;
let server: ArtifactServer;
let artA: Artifact, artB: Artifact, artBad: Artifact;
const nodes: TestNode[] = [];

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'nk-install-kill-'));
  [artA, artB, artBad] = await Promise.all([
    kubeletArtifact(path.join(work, 'art'), { version: VA }),
    kubeletArtifact(path.join(work, 'art'), { version: VB }),
    kubeletArtifact(path.join(work, 'art'), { version: VB, healthz: 'fail' }),
  ]);
  server = await serveArtifacts({ '/a.tgz': artA.file, '/b.tgz': artB.file, '/b-bad.tgz': artBad.file });
});

after(async () => {
  for (const n of nodes) await n.services.stop('kubelet.service').catch(() => {});
  await server?.close();
  await rm(work, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.once('error', reject);
  });
}

/** Runs install-child.ts; resolves with its exit (code or signal) and the results it printed. */
function child(spec: Record<string, unknown>): Promise<{ exit: number | string; results: Array<{ ok: boolean; result?: Record<string, unknown> }> }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', CHILD, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
    c.once('error', reject);
    c.once('exit', (code, signal) => resolve({ exit: code ?? signal ?? 'unknown', results: out.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l)) }));
  });
}

/** A node with vA installed through the installer and running. */
async function nodeAtA(name: string): Promise<{ hostRoot: string; stateDir: string; port: number; node: TestNode }> {
  const hostRoot = path.join(work, name, 'root');
  const stateDir = path.join(work, name, 'state');
  await mkdir(hostRoot, { recursive: true });
  const port = await freePort();
  const node = testNode({ hostRoot, stateDir, kubeletPort: port });
  nodes.push(node);
  await defineKubeletUnit(node.services, port);
  const r = await node.executor.runInstall('c-a', installParams(kubeletManifest(), VA, artA, server.url('/a.tgz')));
  assert.equal(r.ok, true, JSON.stringify(r));
  return { hostRoot, stateDir, port, node };
}

/** The package is wholly at `version`: links, binary, running process, healthz. */
async function assertWhollyAt(hostRoot: string, port: number, node: TestNode, version: string): Promise<void> {
  const { current, versions } = packagePaths(hostRoot, 'kubelet');
  assert.equal(await readlink(current), `versions/${version}`);
  assert.equal(await realpath(path.join(hostRoot, 'usr/bin/kubelet')), path.join(await realpath(versions), version, 'kubelet'));
  const { stdout } = await promisify(execFile)(path.join(hostRoot, 'usr/bin/kubelet'), ['--version']);
  assert.equal(stdout.trim(), `Kubernetes v${version}`);
  const running = await node.services.running('kubelet.service');
  assert.ok(running !== null, 'the kubelet service is running');
  const environ = (await readFile(`/proc/${running.pid}/environ`, 'utf8')).split('\0');
  assert.ok(environ.includes(`NK_KUBELET_STANDIN_VERSION=${version}`), `the running process is version ${version}`);
  await waitFor('healthz ok', async () => (await checkHealthz(`http://127.0.0.1:${port}/healthz`, 1000)).kind === 'ok', 10_000);
}

interface KillCase {
  readonly name: string;
  readonly at: JournalStep;
  readonly when: 'before' | 'after';
  readonly bad?: boolean;
  /** The version the package must be wholly at afterwards, and the recorded outcome. */
  readonly expect: { version: string; outcome: string };
}

const cases: KillCase[] = [
  ...INSTALL_STEPS.map((s): KillCase => ({
    name: `before ${s}`,
    at: s,
    when: 'before',
    expect: ['download', 'verify', 'stage', 'switch'].includes(s) ? { version: VA, outcome: 'refused' } : { version: VB, outcome: 'installed' },
  })),
  { name: 'after switch', at: 'switch', when: 'after', expect: { version: VB, outcome: 'installed' } },
  { name: 'after restart', at: 'restart', when: 'after', expect: { version: VB, outcome: 'installed' } },
  { name: 'failing vB, before rollback-restart', at: 'rollback-restart', when: 'before', bad: true, expect: { version: VA, outcome: 'rolled-back' } },
  { name: 'failing vB, after rollback-switch', at: 'rollback-switch', when: 'after', bad: true, expect: { version: VA, outcome: 'rolled-back' } },
];

test('kill -9 at every install step leaves the kubelet wholly at vA or vB, and the result says which', { concurrency: 3 }, async (t) => {
  await Promise.all(
    cases.map((c, i) =>
      t.test(c.name, async () => {
        const { hostRoot, stateDir, port, node } = await nodeAtA(`kill-${i}`);
        const params: InstallParams = c.bad
          ? installParams(kubeletManifest(2000), VB, artBad, server.url('/b-bad.tgz'))
          : installParams(kubeletManifest(), VB, artB, server.url('/b.tgz'));
        const killed = await child({ hostRoot, stateDir, kubeletPort: port, mode: 'install', commandId: 'c-b', params, killAt: c.at, killWhen: c.when });
        assert.equal(killed.exit, 'SIGKILL', `the install process died at ${c.name}`);
        assert.deepEqual(killed.results, []);

        const recovered = await child({ hostRoot, stateDir, kubeletPort: port, mode: 'recover' });
        assert.equal(recovered.exit, 0);
        assert.equal(recovered.results.length, 1, 'recovery reports the interrupted command');
        const stored = await node.store.get('c-b');
        assert.ok(stored !== null, 'the outcome is recorded under the command id');
        assert.deepEqual(recovered.results[0], stored.frame);
        assert.equal(stored.frame.result?.['outcome'], c.expect.outcome, JSON.stringify(stored.frame));
        assert.equal(stored.frame.result?.['activeVersion'], c.expect.version);
        assert.equal(stored.frame.ok, c.expect.outcome === 'installed');
        assert.deepEqual(await node.journal.unfinished(), [], 'no journal is left behind');
        await assertWhollyAt(hostRoot, port, node, c.expect.version);

        // Re-delivery of the same id returns the recorded result and runs nothing.
        const again = await node.executor.handle({ type: 'command', commandId: 'c-b', kind: 'package.install', params: params as unknown as Record<string, unknown>, timeoutMs: 60_000 });
        assert.deepEqual(again, stored.frame);
        await assertWhollyAt(hostRoot, port, node, c.expect.version);
      }),
    ),
  );
});

test('a vB whose healthz fails rolls back to vA by itself, naming the failed step', async () => {
  const { hostRoot, port, node } = await nodeAtA('self-rollback');
  const r = await node.executor.runInstall('c-bad', installParams(kubeletManifest(2000), VB, artBad, server.url('/b-bad.tgz')));
  assert.equal(r.ok, false);
  assert.equal(r.error?.code, 'NK_INSTALL_HEALTH_TIMEOUT');
  assert.equal(r.result?.['outcome'], 'rolled-back');
  assert.equal(r.result?.['failedStep'], 'health');
  assert.equal(r.result?.['activeVersion'], VA);
  assert.match(String(r.result?.['message']), /HealthzFailed|answered 500/);
  await assertWhollyAt(hostRoot, port, node, VA);
});
