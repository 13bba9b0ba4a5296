/**
 * The coordinator's /metrics, the alerting rules and the dashboard, checked by promtool
 * (built from its Go module: scripts/lib/promtool.sh) and against each other:
 * - one coordinator with two scripted agents over real WebSockets, a rollout whose
 *   install the agent answers step by step, and a remediation that ends NeedsHuman, so
 *   most series have values; `promtool check metrics` passes on its live exposition;
 * - counters are exposed as counters, process_* / nodejs_* keep their standard names,
 *   and the product gauges say what the fleet is;
 * - every metric the dashboard and the rules read is one the coordinator exposes (a
 *   renamed metric fails here), and docs/coordinator.md lists exactly the metrics exposed;
 * - `promtool check rules` and `promtool test rules` pass on deploy/prometheus/.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WebSocket } from 'ws';
import { parse } from 'yaml';
import type { MachineIdentity } from '@nodekeeper/protocol';
import { sampleReport } from '@nodekeeper/protocol/testing';
import { kubeletArtifact } from './harness/artifacts.ts';
import { newMachinePublicKey } from './harness/machine-key.ts';
import { dashboardExprs, documentedMetrics, families, findPromtool, labelNames, promqlMetricNames, queryableNames, sample } from './harness/metrics.ts';
import { nkctl, REPO, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';

const INSTALL_STEPS = ['download', 'verify', 'stage', 'switch', 'restart', 'health', 'commit'];
const RULES = path.join(REPO, 'deploy/prometheus/rules.yml');
/**
 * Gauges of prom-client's default metrics whose names end in _total (the total over all
 * kinds of a labelled gauge of the same name without it). promtool's lint flags them;
 * they stay because stock Node.js dashboards query these very names.
 */
const PROM_CLIENT_TOTAL_GAUGES = new Set(['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']);

/** promtool's exit code and output; never throws. */
async function promtool(bin: string, args: string[], stdin?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(bin, args, { cwd: REPO, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, out: `${stdout}${stderr}` });
    });
    child.stdin?.on('error', () => {}); // a promtool that exits without reading its input
    child.stdin?.end(stdin ?? '');
  });
}

const located = await findPromtool();
const bin = 'path' in located ? located.path : null;
if (bin === null) console.log(`# metrics-promtool: promtool checks skipped: ${(located as { skip: string }).skip}`);

describe('live /metrics', { timeout: 240_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc;
  let ca: string;
  let text = '';
  const nk = async (args: string[]) => {
    const r = await nkctl(coord.nkctlConfig, args);
    assert.equal(r.code, 0, `nkctl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const get = (pathname: string) => new Promise<string>((resolve, reject) => {
    https.get(new URL(pathname, coord.url), { ca }, (res) => {
      let t = '';
      res.on('data', (c: Buffer) => (t += c));
      res.on('end', () => resolve(t));
    }).on('error', reject);
  });
  const post = (pathname: string, body: unknown) => new Promise<any>((resolve, reject) => {
    const req = https.request(new URL(pathname, coord.url), { method: 'POST', ca, headers: { 'Content-Type': 'application/json' } }, (res) => {
      let t = '';
      res.on('data', (c: Buffer) => (t += c));
      res.on('end', () => resolve(JSON.parse(t)));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });

  /** A scripted agent: hello, full reports on demand; answers installs step by step. */
  const agent = async (token: string, n: number) => {
    const identity: MachineIdentity = { machineId: `${n}`.repeat(32), hostname: `node-${n}`, addresses: [], zone: null, labels: {} };
    const { credential } = await post('/v1/enroll', { token, identity, agentVersion: 'test', publicKey: newMachinePublicKey() });
    const ws = new WebSocket(`${coord.url.replace('https', 'wss')}/v1/agent/connect`, { ca, headers: { Authorization: `Bearer ${credential}` } });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    let seq = 0;
    const report = (version: string, health: 'healthy' | 'unhealthy') => ws.send(JSON.stringify({
      type: 'report', seq: ++seq, full: true,
      report: { ...sampleReport, identity, kubelet: { ...sampleReport.kubelet, health, reason: health === 'healthy' ? 'HealthzOk' : 'HealthzFailed', version: { raw: `Kubernetes v${version}`, semver: version, source: 'binary' } } },
    }));
    ws.on('message', (d) => {
      const f = JSON.parse(String(d));
      if (f.type !== 'command' || f.kind !== 'package.install') return;
      void (async () => {
        for (const step of INSTALL_STEPS) {
          ws.send(JSON.stringify({ type: 'command.progress', commandId: f.commandId, step, message: step }));
          await new Promise((r) => setTimeout(r, 20));
        }
        ws.send(JSON.stringify({ type: 'command.result', commandId: f.commandId, ok: true, result: { package: 'kubelet', outcome: 'installed', activeVersion: f.params.version, previousVersion: '1.31.2', message: 'installed' } }));
        report(f.params.version, 'healthy');
      })();
    });
    ws.send(JSON.stringify({ type: 'hello', minProtocolVersion: 1, maxProtocolVersion: 1, agentVersion: 'test', identity }));
    report('1.31.2', 'healthy');
    return { ws, report };
  };
  const agents: Array<Awaited<ReturnType<typeof agent>>> = [];

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-metrics-'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), [
      '--flush-interval', '100', '--liveness-grace', '600000', '--control-plane-version', 'v1.32.1',
      '--fault-hold', '1', '--fault-clear', '2', '--backup-dir', path.join(dir, 'backups'),
    ]);
    ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
    const { token } = JSON.parse(await nk(['token', 'create', '--uses', '2', '-o', 'json']));
    agents.push(await agent(token, 1), await agent(token, 2));
    // A desired version the machines already run (so no convergence moves anything), a
    // rule whose ladder ends at once with a human, and a kubelet artifact to roll out.
    await writeFile(path.join(dir, 'objects.yaml'), [
      JSON.stringify({ apiVersion: 'nodekeeper.io/v1alpha1', kind: 'ClusterPackageVersion', metadata: { name: 'cluster' },
        spec: { packages: [{ name: 'containerd', version: '1.6.20', artifact: { url: 'https://artifacts.invalid/containerd.tgz', sha256: 'c'.repeat(64), size: 1 } }] } }),
      JSON.stringify({ apiVersion: 'nodekeeper.io/v1alpha1', kind: 'RemediationRule', metadata: { name: 'kubelet-sick' },
        spec: { fault: 'KubeletUnhealthy', forSeconds: 1, ladder: [{ action: 'CordonAndNotify' }], maxAttemptsPerMachine: 3, cooldownSeconds: 2 } }),
    ].join('\n---\n'));
    await nk(['apply', '-f', path.join(dir, 'objects.yaml')]);
    const a = await kubeletArtifact(path.join(dir, 'artifacts'), { version: 'v1.31.3' });
    await nk(['artifact', 'push', a.file, '--package', 'kubelet', '--version', '1.31.3']);
    await waitFor('two Ready machines', async () => sample(await get('/metrics'), 'nodekeeper_machines', { state: 'Ready' }) === 2, 30_000);

    await get('/no/such/endpoint-7f3a'); // counted under its route name, never its path
    await nk(['rollout', 'create', 'kubelet-1-31-3', '--package', 'kubelet=1.31.3', '--names', 'node-1', '--canary', '0', '--batches', '100', '--soak', '1s']);
    agents[1]!.report('1.31.2', 'unhealthy');
    text = await waitFor('the rollout Completed and node-2 NeedsHuman', async () => {
      const t = await get('/metrics');
      return sample(t, 'nodekeeper_rollout_info', { rollout: 'kubelet-1-31-3', phase: 'Completed' }) === 1
        && sample(t, 'nodekeeper_remediation_machines', { phase: 'NeedsHuman' }) === 1 && t;
    }, 90_000, 250);
  });

  after(async () => {
    for (const a of agents) a.ws.close();
    await coord?.stop();
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(dir, { recursive: true, force: true });
  });

  test('promtool check metrics passes on the live exposition', { skip: bin === null }, async () => {
    // Parsed as Prometheus parses a scrape (no lint): no error.
    const parsed = await promtool(bin!, ['check', 'metrics', '--lint=none', '--extended'], text);
    assert.equal(parsed.code, 0, parsed.out);
    assert.match(parsed.out, /^Total\s+\d+/m);
    // Linted: nothing but prom-client's own _total gauges (exit 3 is "lint findings only").
    const linted = await promtool(bin!, ['check', 'metrics'], text);
    const findings = linted.out.split('\n').filter((l) => l.trim() !== '');
    const unexplained = findings.filter((l) => !(PROM_CLIENT_TOTAL_GAUGES.has(l.split(' ')[0]!) && l.endsWith('non-counter metrics should not have "_total" suffix')));
    assert.deepEqual(unexplained, [], `lint findings:\n${linted.out}`);
    assert.equal(linted.code, findings.length === 0 ? 0 : 3, linted.out);
  });

  test('counters are counters; process_* and nodejs_* keep their standard names', () => {
    const f = families(text);
    for (const name of ['nodekeeper_store_rows_written_total', 'nodekeeper_store_flushes_total', 'nodekeeper_api_requests_total']) assert.equal(f.get(name)?.type, 'counter', name);
    for (const [name, { type }] of f) {
      if (name.endsWith('_total') && !PROM_CLIENT_TOTAL_GAUGES.has(name)) assert.equal(type, 'counter', `${name} ends in _total but is a ${type}`);
      if (type === 'counter') assert.ok(name.endsWith('_total'), `counter ${name} does not end in _total`);
    }
    for (const name of ['process_cpu_seconds_total', 'process_start_time_seconds', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes']) assert.ok(f.has(name), name);
    assert.ok(![...f.keys()].some((n) => n.startsWith('nodekeeper_coordinator_process') || n.startsWith('nodekeeper_coordinator_nodejs')), 'no prefixed default metrics');
    assert.ok((sample(text, 'nodekeeper_store_flushes_total', { result: 'ok' }) ?? 0) > 0);
  });

  test('histograms observe requests, flushes, installs and their steps, handshakes and upgrades', () => {
    assert.ok((sample(text, 'nodekeeper_api_request_duration_seconds_count', { route: 'metrics', status_class: '2xx' }) ?? 0) >= 1);
    assert.equal(sample(text, 'nodekeeper_api_request_duration_seconds_count', { route: 'unmatched', status_class: '4xx' }), 1);
    assert.doesNotMatch(text, /endpoint-7f3a/, 'no raw path in any label');
    assert.ok((sample(text, 'nodekeeper_store_flush_duration_seconds_count', { result: 'ok' }) ?? 0) >= 1);
    assert.equal(sample(text, 'nodekeeper_install_duration_seconds_count', { package: 'kubelet', outcome: 'installed' }), 1);
    for (const step of INSTALL_STEPS) assert.equal(sample(text, 'nodekeeper_install_step_duration_seconds_count', { package: 'kubelet', step }), 1, step);
    assert.ok((sample(text, 'nodekeeper_tls_handshake_duration_seconds_count') ?? 0) >= 2);
    assert.equal(sample(text, 'nodekeeper_agent_upgrade_duration_seconds_count'), 2);
    assert.equal(families(text).get('nodekeeper_drain_duration_seconds')?.type, 'histogram');
  });

  test('product gauges say what the fleet is', () => {
    assert.equal(sample(text, 'nodekeeper_machines', { state: 'Ready' }) ?? 0, 1); // node-2 NotReady: its kubelet
    assert.equal(sample(text, 'nodekeeper_machine_conditions', { type: 'KubeletHealthy', status: 'False' }), 1);
    assert.equal(sample(text, 'nodekeeper_faults', { type: 'KubeletUnhealthy', status: 'Active' }), 1);
    assert.equal(sample(text, 'nodekeeper_remediation_guard_active', { guard: 'storm' }), 0);
    assert.equal(sample(text, 'nodekeeper_rollouts', { phase: 'Completed' }), 1);
    assert.equal(sample(text, 'nodekeeper_rollout_machines', { rollout: 'kubelet-1-31-3', state: 'succeeded' }), 1);
    assert.equal(sample(text, 'nodekeeper_package_machines', { package: 'kubelet', version: '1.31.3' }), 1);
    assert.equal(sample(text, 'nodekeeper_package_machines', { package: 'kubelet', version: '1.31.2' }), 1);
    assert.equal(sample(text, 'nodekeeper_package_desired_machines', { package: 'containerd' }), 2);
    assert.equal(sample(text, 'nodekeeper_package_reporting_machines', { package: 'containerd' }), 2);
    assert.equal(sample(text, 'nodekeeper_package_desired_machines', { package: 'kubelet' }), undefined, 'no desired kubelet version');
    assert.equal(sample(text, 'nodekeeper_host_registered'), 0);
    assert.equal(sample(text, 'nodekeeper_host_sync_age_seconds'), undefined, 'absent when not registered');
    const now = Date.now() / 1000;
    assert.ok(sample(text, 'nodekeeper_tls_certificate_expiry_timestamp_seconds', { certificate: 'serving' })! > now);
    assert.ok(sample(text, 'nodekeeper_tls_certificate_expiry_timestamp_seconds', { certificate: 'ca' })! > now);
    assert.equal(sample(text, 'nodekeeper_backup_schedule_interval_seconds'), 6 * 3600);
    assert.equal(sample(text, 'nodekeeper_coordinator_ready'), 1);
  });

  test('the dashboard and the rules read only metrics the coordinator exposes', () => {
    const exposed = queryableNames(families(text));
    const rules = (parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> }).groups.flatMap((g) => g.rules);
    const uses = [...dashboardExprs().map((e) => ['dashboard', e] as const), ...rules.map((r) => [`alert ${r.alert}`, r.expr] as const)];
    assert.ok(uses.length > 20);
    for (const [where, expr] of uses) {
      const names = promqlMetricNames(expr);
      assert.ok(names.size > 0, `${where}: no metric found in ${expr}`);
      for (const name of names) assert.ok(exposed.has(name), `${where} reads ${name}, which the coordinator does not expose:\n${expr}`);
    }
  });

  test('docs/coordinator.md lists exactly the metrics exposed, with their types and labels', () => {
    const documented = documentedMetrics();
    const f = families(text);
    const labels = labelNames(text);
    const own = [...f.keys()].filter((n) => !n.startsWith('process_') && !n.startsWith('nodejs_'));
    for (const name of own) {
      const d = documented.get(name);
      assert.ok(d !== undefined, `${name} is exposed but not listed in docs/coordinator.md "Metrics"`);
      assert.equal(d.type, f.get(name)!.type, `${name}: documented type`);
      for (const l of labels.get(name) ?? []) assert.ok(d.labels.includes(l), `${name}: label ${l} not documented`);
    }
    for (const name of documented.keys()) assert.ok(f.has(name), `docs/coordinator.md lists ${name}, which is not exposed`);
  });
});

describe('rules', () => {
  test('promtool check rules passes on deploy/prometheus/rules.yml', { skip: bin === null }, async () => {
    const r = await promtool(bin!, ['check', 'rules', RULES]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /SUCCESS: \d+ rules found/);
  });

  test('promtool test rules passes on deploy/prometheus/rules.test.yml', { skip: bin === null }, async () => {
    const r = await promtool(bin!, ['test', 'rules', path.join(REPO, 'deploy/prometheus/rules.test.yml')]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /SUCCESS/);
  });
});
