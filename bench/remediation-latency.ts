/**
 * Benchmark (not a test): the time from a kubelet failure to its restart by automatic
 * remediation, and to the machine being healthy again, with real processes: one
 * coordinator, one agent, a supervised kubelet stand-in, a real containerd.
 *
 *   node bench/remediation-latency.ts [--profile default|fast] [--runs N]
 *
 * `default` uses the shipped timings (agent probes every 10 s, faults hold 30 s, the
 * default rule waits 60 s): what a production node sees. `fast` uses the timings the
 * tests use. Results are appended to bench/results.md with the machine described.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startContainerdWithNetwork } from '../test/harness/containerd.ts';
import { REPO, createToken, nkctl, startCoordinator, waitFor } from '../test/harness/processes.ts';
import { makeSupervisedNode, startNodeAgent, stopNode } from '../test/harness/supervised-node.ts';

const { values } = parseArgs({ options: { profile: { type: 'string', default: 'fast' }, runs: { type: 'string', default: '3' } } });
const fast = values.profile !== 'default';
const runs = Math.max(1, Number(values.runs));

const dir = await mkdtemp(path.join(tmpdir(), 'nk-bench-remediation-'));
const containerd = await startContainerdWithNetwork(path.join(dir, 'containerd'));
const coord = await startCoordinator(path.join(dir, 'coordinator'), fast ? ['--heartbeat-interval', '500', '--liveness-grace', '5000', '--fault-hold', '1', '--fault-clear', '2'] : []);
const node = await makeSupervisedNode(dir, { name: 'node-a', machineId: 'a'.repeat(32), kubeletVersion: 'v1.31.2', runtimeSocket: containerd.socket });
const { token, caCertHash } = await createToken(coord.nkctlConfig, 1);
startNodeAgent(node, { server: coord.url, token, caHash: caCertHash, extraArgs: fast ? [] : ['--probe-interval', '10000'] });

const machine = async () => JSON.parse((await nkctl(coord.nkctlConfig, ['get', 'machine', 'node-a', '-o', 'json'])).stdout);
const remediationOf = async () => JSON.parse((await nkctl(coord.nkctlConfig, ['remediation', 'describe', 'node-a', '-o', 'json'])).stdout || '{}');

if (fast) {
  // Short ladders for both faults a stopped kubelet raises (not running, and unhealthy).
  const { writeFile } = await import('node:fs/promises');
  for (const [name, fault] of [['bench-kubelet-down', 'KubeletNotRunning'], ['bench-kubelet-sick', 'KubeletUnhealthy']]) {
    const rule = { apiVersion: 'nodekeeper.io/v1alpha1', kind: 'RemediationRule', metadata: { name }, spec: { fault, forSeconds: 1, ladder: [{ action: 'RestartService', target: 'kubelet.service', timeoutSeconds: 30, successWithinSeconds: 10 }, { action: 'CordonAndNotify' }], maxAttemptsPerMachine: 100, cooldownSeconds: 1 } };
    const file = path.join(dir, `${name}.json`);
    await writeFile(file, JSON.stringify(rule));
    const r = await nkctl(coord.nkctlConfig, ['apply', '-f', file]);
    if (r.code !== 0) throw new Error(`applying ${name}: ${r.stderr}`);
  }
}

const results: Array<{ restartMs: number; healthyMs: number }> = [];
try {
  await waitFor('node-a Ready', async () => (await machine()).status.phase === 'Ready', 120_000, 200);
  for (let i = 0; i < runs; i++) {
    const pidFile = path.join(node.root, 'run/nodekeeper/kubelet.service.pid');
    const readPid = () => (existsSync(pidFile) ? readFileSync(pidFile, 'utf8').trim() : '');
    const pidBefore = readPid();
    const t0 = Date.now();
    await node.services.stop('kubelet.service');
    const restartMs = await waitFor('a new kubelet process', () => {
      const pid = readPid();
      return pid !== pidBefore && pid !== '' ? Date.now() - t0 : false;
    }, 600_000, 50);
    const healthyMs = await waitFor('Ready again', async () => ((await machine()).status.phase === 'Ready' ? Date.now() - t0 : false), 600_000, 100);
    results.push({ restartMs, healthyMs });
    process.stdout.write(`run ${i + 1}: restarted after ${(restartMs / 1000).toFixed(1)} s, Ready after ${(healthyMs / 1000).toFixed(1)} s\n`);
    // Let the fault clear and the cooldown pass before the next run.
    await waitFor('remediation idle', async () => (await remediationOf()).phase !== 'Running', 600_000, 500);
    await new Promise((r) => setTimeout(r, fast ? 4000 : 70_000));
  }
} finally {
  await stopNode(node);
  await coord.stop();
  await containerd.stop();
  await rm(dir, { recursive: true, force: true });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim();
const line = `| ${new Date().toISOString().slice(0, 16)}Z | ${commit} | ${cpus()[0]?.model ?? 'unknown'} x${cpus().length} | node ${process.versions.node} | remediation latency, ${values.profile} timings, ${runs} runs | kubelet stopped -> restarted: median ${(median(results.map((r) => r.restartMs)) / 1000).toFixed(1)} s; -> Ready: median ${(median(results.map((r) => r.healthyMs)) / 1000).toFixed(1)} s |\n`;
await appendFile(path.join(REPO, 'bench/results.md'), line);
process.stdout.write(line);
