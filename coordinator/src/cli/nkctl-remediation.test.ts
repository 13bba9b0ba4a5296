/**
 * The real nkctl (bin/nkctl, a separate process) for remediation: list, describe,
 * pause/resume (cluster-wide and per machine), dry run, rules (get, apply, delete), and
 * the remediation columns of `get machines`, against the fixture server over real HTTP.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { toEventObject, toMachineObject } from '../api/objects.ts';
import { sampleRemediation, withRemediation } from './fixture-remediation.ts';
import { startFixtureServer, type FixtureServer } from './fixture-server.ts';
import { brokenCniRecord, eventsAt, machineRecord, pendingRecord } from './fixtures.ts';

const NKCTL = fileURLToPath(new URL('../../bin/nkctl', import.meta.url));
const NODE_DIR = dirname(process.execPath);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let dir: string;
let server: FixtureServer;

function run(args: readonly string[], opts: { token?: string } = {}): Promise<Run> {
  const env = { PATH: `${NODE_DIR}:/usr/bin:/bin`, HOME: dir };
  return new Promise((resolve) => {
    execFile(NKCTL, [...args, '--server', server.url, '--token', opts.token ?? 'adm'], { env, cwd: dir, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
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

const writes = () => server.requests.filter((q) => q.method !== 'GET').length;
const rem = () => server.data.remediation!;

function file(name: string, text: string): string {
  const path = join(dir, name);
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

/** When the fixture was made: its running step started 60 s before that. */
let fixtureAt = 0;
/**
 * The ages nkctl may print for the step that started 60 s before the fixture: 60 s plus
 * however long the test took to get here (seconds on a quiet machine, more under load).
 */
const stepAge = () => {
  const upTo = 61 + Math.ceil((Date.now() - fixtureAt) / 1000);
  return `(?:${Array.from({ length: upTo - 59 }, (_, i) => 60 + i).join('|')})s`;
};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nkctl-remediation-'));
  const now = Date.now();
  fixtureAt = now;
  const remediation = sampleRemediation(now);
  const machines = [machineRecord('node-1', {}, now), brokenCniRecord('node-2', now), pendingRecord('node-3', now), machineRecord('node-5', {}, now)]
    .map((r) => toMachineObject(r, now));
  server = await startFixtureServer({
    machines: withRemediation(machines, remediation),
    events: { 'node-2': eventsAt(now).map(toEventObject) },
    tokens: [],
    credentials: { adm: 'admin', ro: 'read-only' },
    caCertHash: null,
    remediation,
  });
});

after(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('nkctl remediation list and describe', () => {
  it('lists machines not Idle or with an open fault; no header while remediation runs normally', async () => {
    const r = ok(await run(['remediation', 'list']));
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^MACHINE +PHASE +RULE +STEP +ACTION +FAULTS +ATTEMPTS +AGE +MESSAGE$/);
    assert.equal(lines.length, 4, 'node-3 is quiet and left out');
    assert.match(lines[1] ?? '', /^node-1 +Idle +- +- +- +KubeletUnhealthy\(Pending\) +0 +- +<none>$/);
    assert.match(lines[2] ?? '', new RegExp(`^node-2 +Running +network-not-ready +1/3 +RestoreConfig +NetworkNotReady\\(Active\\) +1/3 +${stepAge()} +StepStarted: RestoreConfig cni-plugins`));
    assert.match(lines[3] ?? '', /^node-5 +NeedsHuman,Cordoned +kubelet-crash-loop +2\/2 +CordonAndNotify +FrequentKubeletRestart\(Active\) +1\/3 +5m(\d+s)? +LadderExhausted: /);
    const json = ok(await run(['remediation', 'ls', '-o', 'json']));
    const list = JSON.parse(json.stdout) as { kind: string; status: { inFlight: number; paused: boolean }; items: { machine: string }[] };
    assert.equal(list.kind, 'RemediationList');
    assert.deepEqual(list.items.map((i) => i.machine), ['node-1', 'node-2', 'node-5']);
    assert.deepEqual([list.status.inFlight, list.status.paused], [1, false]);
  });

  it('describe: faults, ladder position, budget, cordon, history and events', async () => {
    const r = ok(await run(['remediation', 'describe', 'node-2']));
    for (const re of [
      /^Machine: +node-2$/m,
      new RegExp(`^Phase: +Running since \\S+ \\(${stepAge()} ago\\)$`, 'm'),
      /^Rule: +network-not-ready \(fault NetworkNotReady, default rule\)$/m,
      /^Ladder: +\[RestoreConfig\] > ReinstallPackage > CordonAndNotify$/m,
      /^Step: +1 of 3: RestoreConfig$/m,
      /^Command: +rem-2f1c9a$/m,
      /^Attempts: +1 of 3 per 24h$/m,
      /^Cordoned: +no$/m,
      /^Faults:\n +Type +Status +Reason +Age +Message\n +-+/m,
      /^ +NetworkNotReady +Active +NoNetworkConfig +2m\d*s? +no network config found/m,
      /^History:\n +At +Rule +Step +Action +Result$/m,
      new RegExp(`^ +\\S+ \\(${stepAge()} ago\\) +network-not-ready +1 +RestoreConfig +started$`, 'm'),
      /^Events:\n +Type +Reason/m,
      /^ +Warning +CniUnhealthy +2m/m,
    ]) assert.match(r.stdout, re);
    const human = ok(await run(['remediation', 'describe', 'node-5']));
    assert.match(human.stdout, /^Ladder: +ReinstallPackage > \[CordonAndNotify\]$/m);
    assert.match(human.stdout, /^Cordoned: +yes: the node is cordoned until a human restores it$/m);
    assert.match(human.stdout, /succeeded; fault still Active after 900s/);
    const quiet = ok(await run(['remediation', 'describe', 'node-3']));
    assert.match(quiet.stdout, /^Phase: +Idle since <never>$/m);
    assert.match(quiet.stdout, /^Faults: +<none>$/m);
    const y = ok(await run(['remediation', 'describe', 'node-5', '-o', 'yaml']));
    assert.deepEqual(parseYaml(y.stdout), JSON.parse(JSON.stringify(rem().machines['node-5'])));
    expectError(await run(['remediation', 'describe', 'ghost']), 2, 'NK_MACHINE_NOT_FOUND', 'ghost');
  });
});

describe('nkctl remediation pause, resume, dry-run', () => {
  it('cluster-wide pause shows in the list header; pausing twice is no conflict; resume clears it', async () => {
    const p = ok(await run(['remediation', 'pause']));
    assert.equal(p.stdout, 'remediation paused cluster-wide: no new step starts anywhere; commands already sent finish\nRemediation: paused; in flight: 1/5\n');
    assert.equal(server.requests.at(-1)?.url, '/v1/remediations/pause');
    ok(await run(['remediation', 'pause']));
    const list = ok(await run(['remediation', 'list']));
    assert.match(list.stdout, /^Remediation is PAUSED cluster-wide: no new step starts \(resume with: nkctl remediation resume\)\nMACHINE {2}PHASE/);
    assert.equal(ok(await run(['remediation', 'resume'])).stdout.split('\n')[1], 'Remediation: running; in flight: 1/5');
    assert.match(ok(await run(['remediation', 'list'])).stdout, /^MACHINE/);
    assert.equal(rem().status.paused, false);
  });

  it('per machine: PHASE shows Paused; describe says how to resume', async () => {
    assert.equal(ok(await run(['remediation', 'pause', 'node-2'])).stdout, 'remediation/node-2 paused: no step starts on it; a command already sent finishes (phase Running,Paused)\n');
    assert.equal(server.requests.at(-1)?.url, '/v1/remediations/node-2/pause');
    assert.match(ok(await run(['remediation', 'list'])).stdout, /^node-2 +Running,Paused +network-not-ready/m);
    assert.match(ok(await run(['remediation', 'describe', 'node-2'])).stdout, /^Paused: +yes: no step starts on this machine \(nkctl remediation resume node-2\)$/m);
    assert.equal(ok(await run(['remediation', 'resume', 'node-2'])).stdout, 'remediation/node-2 resumed (phase Running)\n');
    // Idle machines can be paused too (before anything starts on them).
    assert.match(ok(await run(['remediation', 'pause', 'node-3'])).stdout, /^remediation\/node-3 paused.*\(phase Idle,Paused\)$/m);
    expectError(await run(['remediation', 'pause', 'ghost']), 2, 'NK_MACHINE_NOT_FOUND');
    expectError(await run(['remediation', 'pause'], { token: 'ro' }), 3, 'NK_AUTH_FORBIDDEN');
    expectError(await run(['remediation', 'resume', 'node-2'], { token: 'ro' }), 3, 'NK_AUTH_FORBIDDEN');
  });

  it('dry-run on|off sends {enabled}; the header says so; anything else is a usage error sent nowhere', async () => {
    const on = ok(await run(['remediation', 'dry-run', 'on']));
    assert.match(on.stdout, /^remediation dry run on: rules record what they would do, nothing is executed\nRemediation: running, dry run; in flight: 1\/5\n$/);
    assert.deepEqual(server.requests.at(-1)?.body, { enabled: true });
    assert.match(ok(await run(['remediation', 'list'])).stdout, /^Dry run is ON: .* \(turn off with: nkctl remediation dry-run off\)\nMACHINE/);
    const json = ok(await run(['remediation', 'dry-run', 'off', '-o', 'json']));
    assert.equal((JSON.parse(json.stdout) as { dryRun: boolean }).dryRun, false);
    assert.deepEqual(server.requests.at(-1)?.body, { enabled: false });
    const before = writes();
    expectError(await run(['remediation', 'dry-run', 'maybe']), 1, 'NK_CLI_USAGE', 'on or off');
    expectError(await run(['remediation', 'dry-run', 'on'], { token: 'ro' }), 3, 'NK_AUTH_FORBIDDEN');
    assert.equal(writes(), before + 1, 'only the forbidden one reached the server');
  });

  it('an active storm guard is the header, with its reason and age', async () => {
    rem().status.storm = { active: true, reason: 'TooManyUnhealthy', message: '3 of 4 machines unhealthy (max 1)', since: new Date(Date.now() - 125_000).toISOString() };
    try {
      const r = ok(await run(['remediation', 'list']));
      assert.match(r.stdout, /^Storm guard ACTIVE for 2m\ds: TooManyUnhealthy: 3 of 4 machines unhealthy \(max 1\); no new remediation starts until it ends\nMACHINE/);
    } finally {
      rem().status.storm = { active: false, reason: '', message: '', since: null };
    }
  });
});

describe('nkctl remediation rules', () => {
  it('get remediationrules lists the defaults with their effective settings; -o yaml prints the objects', async () => {
    const r = ok(await run(['get', 'remediationrules']));
    assert.match(r.stdout, /^NAME +FAULT +FOR +LADDER +ATTEMPTS +COOLDOWN +SOURCE +DRY-RUN$/m);
    assert.match(r.stdout, /^network-not-ready +NetworkNotReady +60s +RestoreConfig > ReinstallPackage > CordonAndNotify +3\/24h +10m +default +false$/m);
    assert.match(r.stdout, /^kubelet-crash-loop +FrequentKubeletRestart +0s +ReinstallPackage > CordonAndNotify +3\/24h/m);
    const y = ok(await run(['get', 'rules', '-o', 'yaml']));
    const list = parseYaml(y.stdout) as { kind: string; items: { metadata: { name: string }; status: { source: string } }[] };
    assert.equal(list.kind, 'RemediationRuleList');
    assert.equal(list.items.length, 6);
    assert.ok(list.items.every((i) => i.status.source === 'default'));
  });

  it('apply -f PUTs a RemediationRule by name; it replaces the default of its fault; delete brings the default back', async () => {
    const a = ok(await run(['apply', '-f', file('rule.yaml', ruleYaml('cni-restore'))]));
    assert.equal(a.stdout, 'remediationrule/cni-restore created\n');
    const put = server.requests.at(-1);
    assert.equal(`${put?.method} ${put?.url}`, 'PUT /v1/remediationrules/cni-restore');
    assert.equal((put?.body as { spec: { fault: string } }).spec.fault, 'NetworkNotReady');
    const t = ok(await run(['get', 'rules'])).stdout;
    assert.match(t, /^cni-restore +NetworkNotReady +30s +RestoreConfig > CordonAndNotify +2\/24h +5m +applied +false$/m);
    assert.doesNotMatch(t, /^network-not-ready/m);
    // Applying again replaces it (PUT is idempotent, no conflict).
    assert.equal(ok(await run(['apply', '-f', file('rule2.yaml', ruleYaml('cni-restore').replace('forSeconds: 30', 'forSeconds: 90'))])).stdout, 'remediationrule/cni-restore configured\n');
    assert.equal(ok(await run(['apply', '-f', file('rule2.yaml', ruleYaml('cni-restore').replace('forSeconds: 30', 'forSeconds: 90'))])).stdout, 'remediationrule/cni-restore unchanged\n');
    assert.match(ok(await run(['get', 'rules'])).stdout, /^cni-restore +NetworkNotReady +90s /m);

    assert.equal(ok(await run(['delete', 'remediationrule', 'cni-restore'])).stdout, 'remediationrule/cni-restore deleted\n');
    assert.match(ok(await run(['get', 'rules'])).stdout, /^network-not-ready +NetworkNotReady +60s .* default +false$/m);
    expectError(await run(['delete', 'remediationrule', 'cni-restore']), 2, 'NK_REMEDIATION_RULE_NOT_FOUND');
    expectError(await run(['delete', 'rule', 'network-not-ready'], { token: 'ro' }), 3, 'NK_AUTH_FORBIDDEN');
  });

  it('one bad document means nothing is sent; the server refuses an invalid rule with its path', async () => {
    const before = writes();
    const noName = ruleYaml('x').replace('metadata: {name: x}', 'metadata: {}');
    expectError(await run(['apply', '-f', file('bad.yaml', `${ruleYaml('ok-one')}---\n${noName}`)]), 1, 'NK_CLI_BAD_MANIFEST', 'bad.yaml, document 2: a RemediationRule needs metadata.name');
    expectError(await run(['apply', '-f', file('dup.yaml', `${ruleYaml('twice')}---\n${ruleYaml('twice')}`)]), 1, 'NK_CLI_BAD_MANIFEST', 'document 2: RemediationRule twice appears twice');
    assert.equal(writes(), before, 'nothing sent');
    const bad = ruleYaml('early-cordon', 'KubeletNotRunning', '[{action: CordonAndNotify}, {action: RestartService}]');
    expectError(await run(['apply', '-f', file('invalid.yaml', bad)]), 5, 'NK_REMEDIATION_RULE_INVALID', '/spec/ladder/0/action');
    expectError(await run(['apply', '-f', file('ro.yaml', ruleYaml('ro-rule'))], { token: 'ro' }), 3, 'NK_AUTH_FORBIDDEN');
  });
});

describe('nkctl get and describe machine show remediation', () => {
  it('get machines: a REMEDIATION column; -o wide adds the open FAULTS', async () => {
    const r = ok(await run(['get', 'machines']));
    assert.match(r.stdout, /^NAME +STATUS +KUBELET +CONTAINERD +CNI +AGE +LAST-SEEN +REMEDIATION +CONVERGED$/m);
    assert.match(r.stdout, /^node-2 .* Running +-$/m);
    assert.match(r.stdout, /^node-5 .* NeedsHuman,Cordoned +-$/m);
    assert.match(r.stdout, /^node-3 .* <never> +Idle +-$/m);
    const w = ok(await run(['get', 'machines', '-o', 'wide']));
    assert.match(w.stdout, /CNI-HEALTH +FAULTS +NODE +AGENT$/m);
    assert.match(w.stdout, /^node-2 .* unhealthy:NoNetworkConfig +NetworkNotReady\(Active\) +- +0\.1\.0$/m);
    assert.match(w.stdout, /^node-3 .* - +- +<unknown>$/m);
  });

  it('describe machine has a Remediation section only when the machine is not quiet', async () => {
    const d = ok(await run(['describe', 'machine', 'node-2']));
    assert.match(d.stdout, /^Remediation:\n {2}Phase: {5}Running\n {2}Reason: {4}StepStarted\n {2}Rule: {6}network-not-ready\n {2}Step: {6}1\n {2}Cordoned: {2}no\n {2}Faults:\n {4}Type/m);
    assert.match(d.stdout, /^ {4}NetworkNotReady +Active +NoNetworkConfig/m);
    assert.doesNotMatch(ok(await run(['describe', 'machine', 'node-3'])).stdout, /^Remediation:/m);
  });
});
