/**
 * The real nkctl (a separate process) for remediation: list, describe, pause/resume
 * (cluster-wide and per machine), dry run, the storm header, rules (get, apply, delete),
 * and the remediation columns of `get machines`, against the real coordinator. The states
 * are reached for real by scripted agents under the default rules: node-2's and node-5's
 * kubelets crash-loop (kubelet-crash-loop starts at once); node-2 keeps its reinstall
 * running, node-5's reinstall fails, so its ladder ends cordoned at NeedsHuman.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { MachineIdentity, NodeReport } from '@nodekeeper/protocol';
import { waitFor } from './harness/processes.ts';
import { identity, startNkctlCoordinator, type NkctlCoordinator, type Run } from './harness/nkctl-coordinator.ts';
import { healthyReport, type ScriptedAgent } from './harness/scripted-agent.ts';

const ARGS = [
  '--flush-interval', '100', '--liveness-grace', '600000', '--control-plane-version', 'v1.32.1', '--max-unavailable', '3',
  '--fault-hold', '1', '--fault-clear', '1', '--storm-cooldown', '1', '--storm-max-unhealthy', '2',
];

let nc: NkctlCoordinator;
const agents = new Map<string, ScriptedAgent>();
/** Per machine: the kubelet's restart count it reports, and whether its kubelet and CNI are healthy. */
const facts: Record<string, { restarts: number; kubelet: boolean; cni: boolean }> = {};

const run = (args: readonly string[], opts: { token?: string } = {}) => nc.nk(args, opts);
const api = (pathname: string) => nc.api('GET', pathname).then((a) => a.json);

function report(id: MachineIdentity): NodeReport {
  const f = facts[id.hostname]!;
  const r = healthyReport(id, '1.31.2');
  return {
    ...r,
    kubelet: {
      ...r.kubelet,
      ...(f.kubelet ? {} : { health: 'unhealthy' as const, reason: 'HealthzFailed', message: 'healthz answered 500' }),
      service: { unit: 'kubelet.service', manager: 'systemd', activeState: 'active', subState: 'running', restarts: f.restarts },
    },
    cni: f.cni ? r.cni : { ...r.cni, health: 'unhealthy', reason: 'NoNetworkConfig', message: 'no network config found in /etc/cni/net.d', configFile: null },
  };
}

function ok(r: Run): Run {
  assert.equal(r.code, 0, `exit code; stderr: ${r.stderr}`);
  return r;
}

function expectError(r: Run, exit: number, code: string, text?: string): void {
  assert.equal(r.code, exit, `exit code; stderr: ${r.stderr}`);
  assert.equal(r.stdout, '');
  assert.match(r.stderr.trimEnd(), new RegExp(`^error: .+ \\(${code}\\)$`));
  if (text !== undefined) assert.ok(r.stderr.includes(text), `${r.stderr} lacks ${text}`);
}

/** What a refused write must leave alone: the fleet status and the rules. */
const state = async () => JSON.stringify([(await api('/v1/remediations')).status, (await api('/v1/remediationrules')).items]);

function file(name: string, text: string): string {
  const path = join(nc.dir, name);
  writeFileSync(path, text);
  return path;
}

const ruleYaml = (name: string, fault = 'NetworkNotReady', ladder = '[{action: RestoreConfig}, {action: CordonAndNotify}]') => `apiVersion: nodekeeper.io/v1alpha1
kind: RemediationRule
metadata: {name: ${name}}
spec:
  fault: ${fault}
  forSeconds: 30
  ladder: ${ladder}
  maxAttemptsPerMachine: 2
  cooldownSeconds: 300
`;

before(async () => {
  nc = await startNkctlCoordinator('nkctl-remediation-', ARGS);
  // The desired kubelet, which a ReinstallPackage step installs.
  writeFileSync(join(nc.dir, 'kubelet.tar.gz'), 'kubelet 1.31.2\n');
  const pushed = JSON.parse(ok(await run(['artifact', 'push', join(nc.dir, 'kubelet.tar.gz'), '--package', 'kubelet', '--version', '1.31.2', '-o', 'json'])).stdout);
  const cpv = { apiVersion: 'nodekeeper.io/v1alpha1', kind: 'ClusterPackageVersion', metadata: { name: 'cluster' }, spec: { packages: [{ name: 'kubelet', version: '1.31.2', artifact: { url: pushed.url, sha256: pushed.sha256, size: pushed.size } }] } };
  assert.equal((await nc.api('PUT', '/v1/clusterpackageversion', cpv)).status, 201);
  for (const [i, name] of ['node-1', 'node-2', 'node-3', 'node-5'].entries()) {
    facts[name] = { restarts: 0, kubelet: true, cni: name !== 'node-2' };
    const id = identity(name, i);
    const a = await nc.enroll(id, { report: () => report(id) });
    agents.set(name, a);
    if (name === 'node-3') continue; // enrolled, never connected
    // node-2 keeps its reinstall running; node-5's fails.
    if (name === 'node-2') a.answer = () => 'hold';
    if (name === 'node-5') a.answer = () => ({ ok: false, error: { code: 'NK_INSTALL_FAILED', message: 'restart failed' }, result: { package: 'kubelet', outcome: 'failed', activeVersion: '1.31.2', previousVersion: '1.31.2', failedStep: 'restart', message: 'kubelet.service failed to start' } });
    await a.connect();
  }
  // The crash loops: 7 more restarts at each report, until the coordinator has seen two
  // samples of the counter (it samples on its own tick, not per report).
  await waitFor('the crash loops seen', async () => {
    const items = (await api('/v1/remediations')).items as { machine: string; faults: { type: string }[]; phase: string }[];
    const looping = (n: string) => items.some((m) => m.machine === n && (m.phase !== 'Idle' || m.faults.some((f) => f.type === 'FrequentKubeletRestart')));
    for (const name of ['node-2', 'node-5']) {
      if (looping(name)) continue;
      facts[name]!.restarts += 7;
      agents.get(name)!.report();
    }
    return looping('node-2') && looping('node-5');
  }, 30_000, 500);
  let seen = '';
  await waitFor('node-2 Running, node-5 NeedsHuman', async () => {
    const list = await api('/v1/remediations');
    seen = JSON.stringify(list);
    const items = list.items as { machine: string; phase: string }[];
    return items.find((m) => m.machine === 'node-2')?.phase === 'Running' && items.find((m) => m.machine === 'node-5')?.phase === 'NeedsHuman';
  }, 60_000, 200).catch((err: Error) => {
    throw new Error(`${err.message}; last seen ${seen}`);
  });
});

after(async () => {
  for (const a of agents.values()) a.close();
  await nc?.stop();
});

describe('nkctl remediation list and describe', () => {
  it('lists machines not Idle or with an open fault; no header while remediation runs normally', async () => {
    const r = ok(await run(['remediation', 'list']));
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^MACHINE +PHASE +RULE +STEP +ACTION +FAULTS +ATTEMPTS +AGE +MESSAGE$/);
    assert.equal(lines.length, 3, 'node-1 and node-3 are quiet and left out');
    assert.match(lines[1] ?? '', /^node-2 +Running +kubelet-crash-loop +1\/2 +ReinstallPackage +FrequentKubeletRestart\(Active\),NetworkNotReady\(\w+\) +1\/3 +\d+[smhd](?:\d+[smh])? +StepStarted: /);
    assert.match(lines[2] ?? '', /^node-5 +NeedsHuman(,Cordoned)? +kubelet-crash-loop +2\/2 +CordonAndNotify +FrequentKubeletRestart\(Active\) +1\/3 +\d+[smhd](?:\d+[smh])? +\w+: /);
    const json = ok(await run(['remediation', 'ls', '-o', 'json']));
    const list = JSON.parse(json.stdout) as { kind: string; status: { inFlight: number; paused: boolean }; items: { machine: string }[] };
    assert.equal(list.kind, 'RemediationList');
    assert.deepEqual(list.items.map((i) => i.machine), ['node-2', 'node-5']);
    assert.deepEqual([list.status.inFlight, list.status.paused], [1, false]);
  });

  it('describe: faults, ladder position, budget, cordon, history and events', async () => {
    const r = ok(await run(['remediation', 'describe', 'node-2']));
    const rem = await api('/v1/remediations/node-2');
    for (const re of [
      /^Machine: +node-2$/m,
      /^Phase: +Running since \S+ \(\d+[smhd](?:\d+[smh])? ago\)$/m,
      /^Rule: +kubelet-crash-loop \(fault FrequentKubeletRestart, default rule\)$/m,
      /^Ladder: +\[ReinstallPackage\(kubelet\)\] > CordonAndNotify$/m,
      /^Step: +1 of 2: ReinstallPackage$/m,
      new RegExp(`^Command: +${rem.commandId}$`, 'm'),
      /^Attempts: +1 of 3 per 24h$/m,
      /^Cordoned: +no$/m,
      /^Faults:\n +Type +Status +Reason +Age +Message\n +-+/m,
      /^ +FrequentKubeletRestart +Active +\w+ +\d+[smhd](?:\d+[smh])? +/m,
      /^ +NetworkNotReady +\w+ +NoNetworkConfig +\d+[smhd](?:\d+[smh])? +.*no network config found/m,
      /^History:\n +At +Rule +Step +Action +Result$/m,
      /^ +\S+ \(\d+[smhd](?:\d+[smh])? ago\) +kubelet-crash-loop +1 +none +ladder started: FrequentKubeletRestart \(CrashLooping: /m,
      /^Events:\n +Type +Reason/m,
    ]) assert.match(r.stdout, re);
    const human = ok(await run(['remediation', 'describe', 'node-5']));
    assert.match(human.stdout, /^Ladder: +ReinstallPackage\(kubelet\) > \[CordonAndNotify\]$/m);
    assert.match(human.stdout, /^Cordoned: +(yes|no)\b/m);
    const history = human.stdout.slice(human.stdout.indexOf('History:'), human.stdout.indexOf('Events:'));
    assert.match(history, /^ +\S+ \(\d+[smhd](?:\d+[smh])? ago\) +kubelet-crash-loop +1 +ReinstallPackage +.*fail/m, history);
    assert.match(history, /^ +\S+ \(\d+[smhd](?:\d+[smh])? ago\) +kubelet-crash-loop +2 +CordonAndNotify +/m, history);
    const quiet = ok(await run(['remediation', 'describe', 'node-3']));
    // A machine that never reported: Idle, every fault Clear, nothing in its history.
    assert.match(quiet.stdout, /^Phase: +Idle since \S+ \(\d+[smhd](?:\d+[smh])? ago\)$/m);
    assert.match(quiet.stdout, /^Reason: +NoFault/m);
    assert.doesNotMatch(quiet.stdout, /^ +\w+ +(Active|Pending) /m);
    assert.match(quiet.stdout, /^History: +<none>$/m);
    const y = ok(await run(['remediation', 'describe', 'node-5', '-o', 'yaml']));
    assert.deepEqual(parseYaml(y.stdout), await api('/v1/remediations/node-5'));
    expectError(await run(['remediation', 'describe', 'ghost']), 2, 'NK_MACHINE_NOT_FOUND', 'ghost');
  });
});

describe('nkctl remediation pause, resume, dry-run', () => {
  it('cluster-wide pause shows in the list header; pausing twice is no conflict; resume clears it', async () => {
    const p = ok(await run(['remediation', 'pause']));
    assert.equal(p.stdout, 'remediation paused cluster-wide: no new step starts anywhere; commands already sent finish\nRemediation: paused; in flight: 1/5\n');
    assert.equal((await api('/v1/remediations')).status.paused, true);
    ok(await run(['remediation', 'pause']));
    const list = ok(await run(['remediation', 'list']));
    assert.match(list.stdout, /^Remediation is PAUSED cluster-wide: no new step starts \(resume with: nkctl remediation resume\)\nMACHINE {2}PHASE/);
    assert.equal(ok(await run(['remediation', 'resume'])).stdout.split('\n')[1], 'Remediation: running; in flight: 1/5');
    assert.match(ok(await run(['remediation', 'list'])).stdout, /^MACHINE/);
    assert.equal((await api('/v1/remediations')).status.paused, false);
  });

  it('per machine: PHASE shows Paused; describe says how to resume', async () => {
    assert.equal(ok(await run(['remediation', 'pause', 'node-2'])).stdout, 'remediation/node-2 paused: no step starts on it; a command already sent finishes (phase Running,Paused)\n');
    assert.equal((await api('/v1/remediations/node-2')).paused, true);
    assert.match(ok(await run(['remediation', 'list'])).stdout, /^node-2 +Running,Paused +kubelet-crash-loop/m);
    assert.match(ok(await run(['remediation', 'describe', 'node-2'])).stdout, /^Paused: +yes: no step starts on this machine \(nkctl remediation resume node-2\)$/m);
    assert.equal(ok(await run(['remediation', 'resume', 'node-2'])).stdout, 'remediation/node-2 resumed (phase Running)\n');
    // Idle machines can be paused too (before anything starts on them).
    assert.match(ok(await run(['remediation', 'pause', 'node-3'])).stdout, /^remediation\/node-3 paused.*\(phase Idle,Paused\)$/m);
    ok(await run(['remediation', 'resume', 'node-3']));
    const before = await state();
    expectError(await run(['remediation', 'pause', 'ghost']), 2, 'NK_MACHINE_NOT_FOUND');
    expectError(await run(['remediation', 'pause'], { token: nc.readOnly }), 3, 'NK_AUTH_FORBIDDEN');
    expectError(await run(['remediation', 'resume', 'node-2'], { token: nc.readOnly }), 3, 'NK_AUTH_FORBIDDEN');
    assert.equal(await state(), before);
  });

  it('dry-run on|off sends {enabled}; the header says so; anything else is a usage error sent nowhere', async () => {
    const on = ok(await run(['remediation', 'dry-run', 'on']));
    assert.match(on.stdout, /^remediation dry run on: rules record what they would do, nothing is executed\nRemediation: running, dry run; in flight: 1\/5\n$/);
    assert.equal((await api('/v1/remediations')).status.dryRun, true);
    assert.match(ok(await run(['remediation', 'list'])).stdout, /^Dry run is ON: .* \(turn off with: nkctl remediation dry-run off\)\nMACHINE/);
    const json = ok(await run(['remediation', 'dry-run', 'off', '-o', 'json']));
    assert.equal((JSON.parse(json.stdout) as { dryRun: boolean }).dryRun, false);
    assert.equal((await api('/v1/remediations')).status.dryRun, false);
    const before = await state();
    expectError(await run(['remediation', 'dry-run', 'maybe']), 1, 'NK_CLI_USAGE', 'on or off');
    expectError(await run(['remediation', 'dry-run', 'on'], { token: nc.readOnly }), 3, 'NK_AUTH_FORBIDDEN');
    assert.equal(await state(), before);
  });

  it('an active storm guard is the header, with its reason and age', async () => {
    // A third unhealthy machine: more than --storm-max-unhealthy 2.
    facts['node-1']!.kubelet = false;
    agents.get('node-1')!.report();
    try {
      await waitFor('a storm', async () => (await api('/v1/remediations')).status.storm.active === true, 30_000, 200);
      const r = ok(await run(['remediation', 'list']));
      assert.match(r.stdout, /^Storm guard ACTIVE for \d+[smhd](?:\d+[smh])?: TooManyUnhealthy: 3 of 4 machines unhealthy, more than maxUnhealthy 2: a common cause is likely; no new remediation starts until it ends\nMACHINE/);
    } finally {
      facts['node-1']!.kubelet = true;
      agents.get('node-1')!.report();
    }
    await waitFor('the storm over', async () => (await api('/v1/remediations')).status.storm.active === false, 30_000, 200);
  });
});

describe('nkctl get and describe machine show remediation', () => {
  it('get machines: a REMEDIATION column; -o wide adds the open FAULTS', async () => {
    const r = ok(await run(['get', 'machines']));
    assert.match(r.stdout, /^NAME +STATUS +KUBELET +CONTAINERD +CNI +AGE +LAST-SEEN +REMEDIATION +CONVERGED$/m);
    assert.match(r.stdout, /^node-2 .* Running +converged$/m);
    assert.match(r.stdout, /^node-5 .* NeedsHuman,Cordoned +converged$/m);
    assert.match(r.stdout, /^node-3 .* <never> +Idle +pending$/m);
    const w = ok(await run(['get', 'machines', '-o', 'wide']));
    assert.match(w.stdout, /CNI-HEALTH +FAULTS +NODE +AGENT$/m);
    assert.match(w.stdout, /^node-2 .* unhealthy:NoNetworkConfig +FrequentKubeletRestart\(Active\),NetworkNotReady\(\w+\) +- +0\.1\.0$/m);
    assert.match(w.stdout, /^node-3 .* - +- +test$/m);
  });

  it('describe machine has a Remediation section only when the machine is not quiet', async () => {
    const d = ok(await run(['describe', 'machine', 'node-2']));
    assert.match(d.stdout, /^Remediation:\n {2}Phase: {5}Running\n {2}Reason: {4}StepStarted\n {2}Rule: {6}kubelet-crash-loop\n {2}Step: {6}1\n {2}Cordoned: {2}no\n {2}Faults:\n {4}Type/m);
    assert.match(d.stdout, /^ {4}FrequentKubeletRestart +Active +/m);
    assert.doesNotMatch(ok(await run(['describe', 'machine', 'node-3'])).stdout, /^Remediation:/m);
  });
});

describe('nkctl remediation rules', () => {
  it('get remediationrules lists the defaults with their effective settings; -o yaml prints the objects', async () => {
    const r = ok(await run(['get', 'remediationrules']));
    assert.match(r.stdout, /^NAME +FAULT +FOR +LADDER +ATTEMPTS +COOLDOWN +SOURCE +DRY-RUN$/m);
    assert.match(r.stdout, /^network-not-ready +NetworkNotReady +60s +RestoreConfig\(cni-plugins\) > ReinstallPackage\(cni-plugins\) > CordonAndNotify +3\/24h +10m +default +false$/m);
    assert.match(r.stdout, /^kubelet-crash-loop +FrequentKubeletRestart +0s +ReinstallPackage\(kubelet\) > CordonAndNotify +3\/24h/m);
    const y = ok(await run(['get', 'rules', '-o', 'yaml']));
    const list = parseYaml(y.stdout) as { kind: string; items: { metadata: { name: string }; status: { source: string } }[] };
    assert.equal(list.kind, 'RemediationRuleList');
    assert.deepEqual(list, await api('/v1/remediationrules'));
    assert.equal(list.items.length, 6);
    assert.ok(list.items.every((i) => i.status.source === 'default'));
  });

  it('apply -f PUTs a RemediationRule by name; it replaces the default of its fault; delete brings the default back', async () => {
    const a = ok(await run(['apply', '-f', file('rule.yaml', ruleYaml('cni-restore'))]));
    assert.equal(a.stdout, 'remediationrule/cni-restore created\n');
    const stored = ((await api('/v1/remediationrules')).items as { metadata: { name: string }; spec: { fault: string } }[]).find((r) => r.metadata.name === 'cni-restore');
    assert.equal(stored?.spec.fault, 'NetworkNotReady', 'the coordinator has it');
    const t = ok(await run(['get', 'rules'])).stdout;
    assert.match(t, /^cni-restore +NetworkNotReady +30s +RestoreConfig(\(cni-plugins\))? > CordonAndNotify +2\/24h +5m +applied +false$/m);
    assert.doesNotMatch(t, /^network-not-ready/m);
    // Applying again replaces it (PUT is idempotent, no conflict).
    assert.equal(ok(await run(['apply', '-f', file('rule2.yaml', ruleYaml('cni-restore').replace('forSeconds: 30', 'forSeconds: 90'))])).stdout, 'remediationrule/cni-restore configured\n');
    assert.equal(ok(await run(['apply', '-f', file('rule2.yaml', ruleYaml('cni-restore').replace('forSeconds: 30', 'forSeconds: 90'))])).stdout, 'remediationrule/cni-restore unchanged\n');
    assert.match(ok(await run(['get', 'rules'])).stdout, /^cni-restore +NetworkNotReady +90s /m);

    assert.equal(ok(await run(['delete', 'remediationrule', 'cni-restore'])).stdout, 'remediationrule/cni-restore deleted\n');
    assert.match(ok(await run(['get', 'rules'])).stdout, /^network-not-ready +NetworkNotReady +60s .* default +false$/m);
    expectError(await run(['delete', 'remediationrule', 'cni-restore']), 2, 'NK_REMEDIATION_RULE_NOT_FOUND');
    expectError(await run(['delete', 'rule', 'network-not-ready'], { token: nc.readOnly }), 3, 'NK_AUTH_FORBIDDEN');
  });

  it('one bad document means nothing is sent; the server refuses an invalid rule with its path', async () => {
    const before = await state();
    const noName = ruleYaml('x').replace('metadata: {name: x}', 'metadata: {}');
    expectError(await run(['apply', '-f', file('bad.yaml', `${ruleYaml('ok-one')}---\n${noName}`)]), 1, 'NK_CLI_BAD_MANIFEST', 'bad.yaml, document 2: a RemediationRule needs metadata.name');
    expectError(await run(['apply', '-f', file('dup.yaml', `${ruleYaml('twice')}---\n${ruleYaml('twice')}`)]), 1, 'NK_CLI_BAD_MANIFEST', 'document 2: RemediationRule twice appears twice');
    const bad = ruleYaml('early-cordon', 'KubeletNotRunning', '[{action: CordonAndNotify}, {action: RestartService}]');
    expectError(await run(['apply', '-f', file('invalid.yaml', bad)]), 5, 'NK_REMEDIATION_RULE_INVALID', '/spec/ladder/0/action');
    expectError(await run(['apply', '-f', file('ro.yaml', ruleYaml('ro-rule'))], { token: nc.readOnly }), 3, 'NK_AUTH_FORBIDDEN');
    assert.equal(await state(), before, 'nothing changed');
  });
});
