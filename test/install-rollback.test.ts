/**
 * `package.rollback` end to end, with the real installer, supervisor and kubelet probe:
 * a kubelet stand-in vA put at /usr/bin/kubelet as a plain file (the apt case) is
 * adopted by the install of vB; the rollback returns to exactly the adopted vA (the
 * link, `kubelet --version`, the running process, healthz), without the coordinator
 * ever naming its directory. Also: nothing to return to is refused; a re-delivered id is
 * answered from the store and does nothing; a kill -9 at every rollback step (and in the
 * middle of undoing a rollback whose vA is not healthy) is recovered wholly at vA or vB,
 * and the recorded result says which (architecture invariant 3).
 *
 * The process killed is this file itself, started with `--rollback-child SPEC` (the
 * install-child fixture runs installs only).
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
import type { Command, CommandResult, RollbackParams } from '../packages/protocol/src/index.ts';
import type { JournalStep } from '../agent/src/install/journal.ts';
import { checkHealthz } from '../agent/src/probes/healthz.ts';
import { installParams, kubeletArtifact, kubeletManifest, serveArtifacts, type Artifact, type ArtifactServer } from './harness/artifacts.ts';
import { installKubeletStandin } from './harness/kubelet-standin.ts';
import { defineKubeletUnit, packagePaths, testNode, type NodeSpec, type TestNode } from './fixtures/install-node.ts';
import { waitFor } from './harness/processes.ts';

const SELF = fileURLToPath(import.meta.url);
const VA = '1.31.2';
const VB = '1.32.0';

interface ChildSpec extends NodeSpec {
  readonly commandId: string;
  readonly params: RollbackParams;
  readonly killAt: JournalStep;
  readonly killWhen: 'before' | 'after';
}

if (process.argv[2] === '--rollback-child') {
  // Child mode: run one rollback and SIGKILL this process at the chosen step, as kill -9 would.
  const spec = JSON.parse(process.argv[3] ?? '{}') as ChildSpec;
  const die = (when: 'before' | 'after') => (step: JournalStep): void => {
    if (spec.killAt === step && spec.killWhen === when) process.kill(process.pid, 'SIGKILL');
  };
  const node = testNode(spec, { hooks: { beforeStep: die('before'), afterStep: die('after') } });
  await node.executor.runRollback(spec.commandId, spec.params);
  for (const r of node.sent) process.stdout.write(`${JSON.stringify(r)}\n`);
} else {
  defineTests();
}

function defineTests(): void {
  let work: string;
  let server: ArtifactServer;
  let artB: Artifact;
  const nodes: TestNode[] = [];

  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'nk-install-rollback-'));
    artB = await kubeletArtifact(path.join(work, 'art'), { version: VB });
    server = await serveArtifacts({ '/b.tgz': artB.file });
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

  interface Node {
    readonly spec: NodeSpec & { readonly kubeletPort: number };
    readonly node: TestNode;
    /** The version directory vA was adopted into. */
    readonly adopted: string;
  }

  /**
   * A node where apt's kubelet vA (a plain file at /usr/bin/kubelet, running) was
   * adopted by a committed install of vB. `sickA`: vA's healthz fails.
   */
  async function adoptedANowB(name: string, sickA = false): Promise<Node> {
    const hostRoot = path.join(work, name, 'root');
    const spec = { hostRoot, stateDir: path.join(work, name, 'state'), kubeletPort: await freePort() };
    await mkdir(hostRoot, { recursive: true });
    await installKubeletStandin(hostRoot, { version: VA, ...(sickA ? { healthz: 'fail' as const } : {}) });
    const node = testNode(spec);
    nodes.push(node);
    await defineKubeletUnit(node.services, spec.kubeletPort);
    await node.services.restart('kubelet.service');
    const r = await node.executor.runInstall('c-b', installParams(kubeletManifest(), VB, artB, server.url('/b.tgz')));
    assert.equal(r.ok, true, JSON.stringify(r));
    const adopted = String(r.result?.['previousVersion']);
    assert.match(adopted, /^adopted-[0-9a-f]{12}$/, 'apt\'s vA was adopted');
    return { spec, node, adopted };
  }

  const rollbackParams = (healthTimeoutMs = 8000): RollbackParams => ({ package: 'kubelet', manifest: kubeletManifest(healthTimeoutMs), expectedVersion: `Kubernetes v${VA}` });
  const rollbackCommand = (commandId: string, params: RollbackParams = rollbackParams()): Command => ({ type: 'command', commandId, kind: 'package.rollback', params: params as unknown as Record<string, unknown>, timeoutMs: 60_000 });

  /** The package is wholly at `dir` (running `version`): links, binary, running process, healthz. */
  async function assertWhollyAt(n: Node, dir: string, version: string): Promise<void> {
    const { hostRoot, kubeletPort } = n.spec;
    const { current, versions } = packagePaths(hostRoot, 'kubelet');
    assert.equal(await readlink(current), `versions/${dir}`);
    assert.equal(await realpath(path.join(hostRoot, 'usr/bin/kubelet')), path.join(await realpath(versions), dir, 'kubelet'));
    const { stdout } = await promisify(execFile)(path.join(hostRoot, 'usr/bin/kubelet'), ['--version']);
    assert.equal(stdout.trim(), `Kubernetes v${version}`);
    const running = await n.node.services.running('kubelet.service');
    assert.ok(running !== null, 'the kubelet service is running');
    const environ = (await readFile(`/proc/${running.pid}/environ`, 'utf8')).split('\0');
    assert.ok(environ.includes(`NK_KUBELET_STANDIN_VERSION=${version}`), `the running process is version ${version}`);
    // Serving at all (ok, or 500 for a sick version): the health verdict is asserted by the caller.
    await waitFor('healthz answers', async () => ['ok', 'failed'].includes((await checkHealthz(`http://127.0.0.1:${kubeletPort}/healthz`, 1000)).kind), 10_000);
  }

  const healthzOk = async (n: Node): Promise<boolean> => (await checkHealthz(`http://127.0.0.1:${n.spec.kubeletPort}/healthz`, 1000)).kind === 'ok';

  test('apt vA -> install vB -> package.rollback: vA is active and healthy; a re-delivered id does nothing', async () => {
    const n = await adoptedANowB('happy');
    await assertWhollyAt(n, VB, VB);
    const r = await n.node.executor.handle(rollbackCommand('r-1'));
    assert.equal(r?.ok, true, JSON.stringify(r));
    assert.equal(r?.result?.['outcome'], 'rolled-back');
    assert.equal(r?.result?.['activeVersion'], n.adopted);
    assert.equal(r?.result?.['previousVersion'], VB);
    await assertWhollyAt(n, n.adopted, VA);
    assert.ok(await healthzOk(n), 'vA answers healthz ok');
    assert.deepEqual(await readFile(path.join(packagePaths(n.spec.hostRoot, 'kubelet').versions, n.adopted, 'kubelet'), 'utf8'), await readFile(path.join(n.spec.hostRoot, 'usr/bin/kubelet'), 'utf8'));

    const pid = (await n.node.services.running('kubelet.service'))?.pid;
    const again = await n.node.executor.handle(rollbackCommand('r-1'));
    assert.deepEqual(again, r, 'the recorded result is returned');
    assert.equal((await n.node.services.running('kubelet.service'))?.pid, pid, 'nothing was restarted');
    assert.deepEqual(await n.node.journal.unfinished(), []);

    // A new rollback id does not switch forward again to vB (no ping-pong).
    const second = await n.node.executor.handle(rollbackCommand('r-2'));
    assert.equal(second?.ok, true);
    assert.equal(second?.result?.['outcome'], 'already-installed');
    assert.equal((await n.node.services.running('kubelet.service'))?.pid, pid);
    await assertWhollyAt(n, n.adopted, VA);
  });

  test('a rollback with nothing to return to is refused with NK_INSTALL_NO_PREVIOUS and changes nothing', async () => {
    const hostRoot = path.join(work, 'fresh', 'root');
    const spec = { hostRoot, stateDir: path.join(work, 'fresh', 'state'), kubeletPort: await freePort() };
    await mkdir(hostRoot, { recursive: true });
    const node = testNode(spec);
    nodes.push(node);
    await defineKubeletUnit(node.services, spec.kubeletPort);
    // vB installed on a node that had no kubelet: there is no earlier version.
    const installed = await node.executor.runInstall('c-b', installParams(kubeletManifest(), VB, artB, server.url('/b.tgz')));
    assert.equal(installed.ok, true, JSON.stringify(installed));
    const pid = (await node.services.running('kubelet.service'))?.pid;
    const r = await node.executor.handle(rollbackCommand('r-1'));
    assert.equal(r?.ok, false);
    assert.equal(r?.error?.code, 'NK_INSTALL_NO_PREVIOUS');
    assert.equal(r?.result?.['outcome'], 'refused');
    assert.equal(r?.result?.['failedStep'], 'switch');
    assert.equal(r?.result?.['activeVersion'], VB);
    await assertWhollyAt({ spec, node, adopted: '' }, VB, VB);
    assert.equal((await node.services.running('kubelet.service'))?.pid, pid, 'the running kubelet was left alone');
  });

  /** Runs this file as the rollback child; resolves with its exit and printed results. */
  function child(spec: ChildSpec): Promise<{ exit: number | string; results: CommandResult[] }> {
    return new Promise((resolve, reject) => {
      const c = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', SELF, '--rollback-child', JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      c.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
      c.once('error', reject);
      c.once('exit', (code, signal) => resolve({ exit: code ?? signal ?? 'unknown', results: out.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as CommandResult) }));
    });
  }

  interface KillCase {
    readonly at: JournalStep;
    readonly when: 'before' | 'after';
    /** vA's healthz fails, so the rollback is undone (switched forward again to vB). */
    readonly sickA?: boolean;
  }

  const cases: KillCase[] = [
    { at: 'switch', when: 'before' },
    { at: 'switch', when: 'after' },
    { at: 'restart', when: 'before' },
    { at: 'restart', when: 'after' },
    { at: 'health', when: 'before' },
    { at: 'commit', when: 'before' },
    { at: 'rollback-switch', when: 'after', sickA: true },
    { at: 'rollback-restart', when: 'before', sickA: true },
    { at: 'rollback-health', when: 'before', sickA: true },
  ];

  test('kill -9 at every rollback step: recovered wholly at vA or vB, and the result says which', { concurrency: 3 }, async (t) => {
    await Promise.all(
      cases.map((c, i) =>
        t.test(`${c.when} ${c.at}${c.sickA ? ' (vA unhealthy)' : ''}`, async () => {
          const n = await adoptedANowB(`kill-${i}`, c.sickA);
          const params = rollbackParams(c.sickA ? 1500 : 8000);
          const killed = await child({ ...n.spec, commandId: 'r-1', params, killAt: c.at, killWhen: c.when });
          assert.equal(killed.exit, 'SIGKILL', `the agent died ${c.when} ${c.at}`);
          assert.deepEqual(killed.results, []);

          // The restarted agent: fresh objects over the same host root and state dir.
          const restarted = testNode(n.spec);
          await restarted.executor.recover();
          assert.equal(restarted.sent.length, 1, 'recovery reports the interrupted rollback');
          const stored = await restarted.store.get('r-1');
          assert.ok(stored !== null, 'the outcome is recorded under the command id');
          assert.deepEqual(restarted.sent[0], stored.frame);
          assert.equal(stored.kind, 'package.rollback');
          assert.deepEqual(await restarted.journal.unfinished(), [], 'no journal is left behind');
          const result = stored.frame.result ?? {};
          if (c.sickA) {
            assert.equal(stored.frame.ok, false);
            assert.equal(stored.frame.error?.code, 'NK_INSTALL_ROLLBACK_FAILED');
            assert.equal(result['activeVersion'], VB, JSON.stringify(stored.frame));
            await assertWhollyAt(n, VB, VB);
            assert.ok(await healthzOk(n), 'vB is healthy again');
          } else {
            assert.equal(stored.frame.ok, true, JSON.stringify(stored.frame));
            assert.equal(result['outcome'], 'rolled-back');
            assert.equal(result['activeVersion'], n.adopted);
            await assertWhollyAt(n, n.adopted, VA);
            assert.ok(await healthzOk(n), 'vA is healthy');
          }

          // Re-delivery of the same id returns the recorded result and runs nothing.
          const pid = (await n.node.services.running('kubelet.service'))?.pid;
          assert.deepEqual(await restarted.executor.handle(rollbackCommand('r-1', params)), stored.frame);
          assert.equal((await n.node.services.running('kubelet.service'))?.pid, pid);
        }),
      ),
    );
  });
}
