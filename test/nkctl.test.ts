/**
 * The real nkctl (coordinator/bin/nkctl, a separate process) against the real
 * coordinator, started on port 0 with a temp data dir. Its machines are scripted agents
 * over real WebSockets: node-1 healthy with CNI plugins, node-2 with its CNI config gone
 * and a reboot pending, node-3 enrolled but never connected, node-4 revoked.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { MachineIdentity, NodeReport } from '@nodekeeper/protocol';
import { BIN, waitFor } from './harness/processes.ts';
import { identity, startNkctlCoordinator, type NkctlCoordinator, type Run } from './harness/nkctl-coordinator.ts';
import type { ScriptedAgent } from './harness/scripted-agent.ts';

const ARGS = ['--flush-interval', '100', '--liveness-grace', '600000'];
const KUBECTL_NODEKEEPER = join(BIN.nkctl, '..', 'kubectl-nodekeeper');

/** A full report of a healthy worker node with Debian's containerd and CNI plugins. */
function richReport(id: MachineIdentity): NodeReport {
  const observedAt = new Date().toISOString();
  return {
    identity: id,
    kubelet: {
      health: 'healthy', reason: 'HealthzOk', message: 'healthz answered ok', observedAt,
      version: { raw: 'Kubernetes v1.31.2', semver: '1.31.2', source: 'binary' },
      service: { unit: 'kubelet.service', manager: 'systemd', activeState: 'active', subState: 'running', restarts: 0 },
    },
    runtime: {
      health: 'healthy', reason: 'RuntimeReady', message: 'runtime and network ready', observedAt,
      version: { raw: '1.6.20~ds1', semver: '1.6.20', source: 'cri' }, runtimeName: 'containerd', runtimeApiVersion: 'v1',
      conditions: [{ type: 'RuntimeReady', status: true, reason: '', message: '' }, { type: 'NetworkReady', status: true, reason: '', message: '' }],
      service: null,
    },
    cni: {
      health: 'healthy', reason: 'ConfigValid', message: 'config 10-bridge.conflist valid, 3 plugins found', observedAt,
      version: { raw: '1.1.1+ds1-3+b1', semver: '1.1.1', source: 'dpkg' },
      configFile: '/etc/cni/net.d/10-bridge.conflist', networkName: 'bridge-net', cniVersion: '1.0.0',
      plugins: [
        { type: 'bridge', binary: '/usr/lib/cni/bridge', supportedVersions: ['0.3.1', '0.4.0', '1.0.0'], version: { raw: 'version unknown', semver: null, source: 'binary' } },
        { type: 'portmap', binary: '/usr/lib/cni/portmap', supportedVersions: ['0.3.1', '0.4.0', '1.0.0'], version: { raw: '1.1.1+ds1-3+b1', semver: '1.1.1', source: 'dpkg' } },
      ],
    },
    host: {
      health: 'healthy', reason: 'NoPressure', message: '', version: null, observedAt,
      os: 'Debian GNU/Linux 12 (bookworm)', kernel: '6.1.0-25-amd64', arch: 'x64', cpus: 2,
      memoryTotalBytes: 8 * 1024 ** 3, memoryAvailableBytes: 5 * 1024 ** 3, uptimeSeconds: 3 * 86_400,
      disks: [{ path: '/var/lib/kubelet', totalBytes: 100 * 1024 ** 3, usedBytes: 42 * 1024 ** 3, usedPercent: 42 }],
      pressure: { disk: false, memory: false, pid: false },
    },
  };
}

/** node-2: its CNI config deleted, and an agent that reports boot facts: a newer kernel waits for a reboot. */
function brokenCniReport(id: MachineIdentity): NodeReport {
  const r = richReport(id);
  return {
    ...r,
    cni: { ...r.cni, health: 'unhealthy', reason: 'NoNetworkConfig', message: 'no network config found in /etc/cni/net.d', version: null, configFile: null, networkName: null, cniVersion: null, plugins: [] },
    host: {
      ...r.host,
      bootId: '0f6c2a33-1111-4222-8333-444455556666',
      newestKernel: '6.1.0-26-amd64',
      reboot: { required: true, reasons: ['/var/run/reboot-required exists (packages: linux-image-6.1.0-26-amd64)', 'running kernel 6.1.0-25-amd64, newest installed 6.1.0-26-amd64'] },
      readOnlyMounts: ['/var/lib/containerd'],
    },
  };
}

let nc: NkctlCoordinator;
let token: { id: string; token: string };
let expired: { id: string };
const agents: ScriptedAgent[] = [];

const admin = (...args: string[]) => nc.nk(args);
const run = (args: readonly string[], opts?: Parameters<NkctlCoordinator['run']>[1]) => nc.run(args, opts);
const tokenCount = async () => ((await nc.api('GET', '/v1/tokens')).json.items as unknown[]).length;

function expectError(r: Run, exit: number, code: string, text?: string | RegExp): void {
  assert.equal(r.code, exit, `exit code; stderr: ${r.stderr}`);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one stderr line, got: ${r.stderr}`);
  assert.match(lines[0] ?? '', new RegExp(`^error: .+ \\(${code}\\)$`));
  if (typeof text === 'string') assert.ok(r.stderr.includes(text), `${r.stderr} lacks ${text}`);
  else if (text !== undefined) assert.match(r.stderr, text);
}

/** nkctl's output parsed equals what the API serves, read just before or just after it (a heartbeat may land between). */
async function servesSame(args: string[], pathname: string, parse: (s: string) => unknown): Promise<void> {
  let last = '';
  for (let i = 0; i < 5; i++) {
    const before = (await nc.api('GET', pathname)).json;
    const r = await admin(...args);
    assert.equal(r.code, 0, r.stderr);
    const after = (await nc.api('GET', pathname)).json;
    const printed = parse(r.stdout) as { metadata?: { resourceVersion?: unknown } };
    // A list's resourceVersion is the store's at that read (a later read may move it: watch/hub.ts), so it is
    // compared by shape; everything else as served.
    if ((before as { kind?: string }).kind?.endsWith('List') === true) {
      assert.match(String(printed.metadata?.resourceVersion), /^[1-9][0-9]*$/, `nkctl ${args.join(' ')} keeps the list's metadata.resourceVersion`);
      for (const o of [printed, before, after] as { metadata?: { resourceVersion?: unknown } }[]) delete o.metadata?.resourceVersion;
    }
    if (isDeepStrictEqual(printed, before) || isDeepStrictEqual(printed, after)) return;
    const got = JSON.stringify(printed);
    last = got;
  }
  assert.fail(`nkctl ${args.join(' ')} never printed what ${pathname} serves: ${last}`);
}

before(async () => {
  nc = await startNkctlCoordinator('nkctl-e2e-', ARGS);
  const made = await nc.api('POST', '/v1/tokens', { ttlSeconds: 23 * 3600 + 1800, uses: 10, description: 'rack 12' });
  token = made.json;
  expired = (await nc.api('POST', '/v1/tokens', { ttlSeconds: 1, uses: 1 })).json;
  const b = { role: 'worker', zone: 'zone-b' };
  const specs: [string, Partial<MachineIdentity>, ((id: MachineIdentity) => NodeReport) | null][] = [
    ['node-1', {}, richReport],
    ['node-2', { zone: 'zone-b', labels: b, addresses: ['10.0.0.12'] }, brokenCniReport],
    ['node-3', {}, null],
    ['node-4', {}, richReport],
  ];
  for (const [i, [name, over, report]] of specs.entries()) {
    const id = identity(name, i, over);
    const a = await nc.enroll(id, report === null ? {} : { report: () => report(id) }, token.token);
    if (report !== null) await a.connect();
    agents.push(a);
  }
  // Revoked once its report is in (revoked while connected and reporting, not before its hello was read).
  await waitFor('node-4 reported', async () => (await nc.api('GET', '/v1/machines/node-4')).json.status.phase === 'Ready', 30_000);
  assert.equal((await nc.api('POST', '/v1/machines/node-4/revoke')).status, 200);
  let seen = '';
  await waitFor('node-1 Ready, node-2 NotReady (its CNI), the short token expired', async () => {
    const items = (await nc.api('GET', '/v1/machines')).json.items as { metadata: { name: string }; status: { phase: string } }[];
    const tokens = (await nc.api('GET', '/v1/tokens')).json.items as { id: string; status?: { conditions: { reason: string }[] } }[];
    const expiredNow = tokens.find((t) => t.id === expired.id)?.status?.conditions[0]?.reason === 'Expired';
    const phases = items.map((m) => m.status.phase);
    seen = `${phases.join(',')} expired=${expiredNow}`;
    return expiredNow && phases[0] === 'Ready' && phases[1] === 'NotReady';
  }, 30_000).catch((err: Error) => {
    throw new Error(`${err.message}; saw ${seen}`);
  });
});

after(async () => {
  for (const a of agents) a.close();
  await nc?.stop();
});

describe('nkctl get machines', () => {
  it('prints an aligned kubectl-style table', async () => {
    const r = await admin('get', 'machines');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    // Each column as wide as its widest cell plus two: the alignment is checked below.
    assert.match(lines[0] ?? '', /^NAME {4}STATUS +KUBELET {4}CONTAINERD {2}CNI {13}AGE +LAST-SEEN +REMEDIATION {2}CONVERGED$/);
    assert.equal(lines.length, 5);
    assert.match(lines[1] ?? '', /^node-1 {2}Ready +v1\.31\.2 {4}1\.6\.20~ds1 {2}1\.1\.1\+ds1-3\+b1 {2}\d+[smhd](?:\d+[smh])? +\d+[smhd](?:\d+[smh])? +Idle +-$/);
    assert.match(lines[2] ?? '', /^node-2 {2}NotReady +v1\.31\.2 {4}1\.6\.20~ds1 {2}<unknown> {7}\d+[smhd](?:\d+[smh])?/);
    assert.match(lines[3] ?? '', /^node-3 {2}Pending +<unknown> {2}<unknown> {3}<unknown> {7}\d+[smhd](?:\d+[smh])? +<never> +Idle +-$/);
    // Revoked while its agent was connected: still Ready by liveness, and Revoked.
    assert.match(lines[4] ?? '', /^node-4 {2}\w+,Revoked +v1\.31\.2 /);
    // Every column starts where its header does.
    const header = lines[0] ?? '';
    for (const col of ['STATUS', 'KUBELET', 'CONTAINERD', 'CNI', 'AGE', 'LAST-SEEN', 'REMEDIATION', 'CONVERGED']) {
      const at = header.indexOf(col);
      for (const line of lines.slice(1)) assert.notEqual(line[at], ' ', `${col} in ${line}`);
    }
  });

  it('-o wide adds identity, the health of each component with its reason, and the agent version', async () => {
    const r = await admin('get', 'm', '-o', 'wide');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /MACHINE-ID\s+ZONE\s+ADDRESSES\s+KUBELET-HEALTH\s+RUNTIME-HEALTH\s+CNI-HEALTH\s+FAULTS\s+NODE\s+AGENT\n/);
    assert.match(r.stdout, /node-2 .* 2{32}\s+zone-b\s+10\.0\.0\.12\s+healthy\s+healthy\s+unhealthy:NoNetworkConfig\s+\S+\s+-\s+0\.1\.0\n/);
    assert.match(r.stdout, /node-3 .*\s+<unknown> +- +- +test\n/, 'the agent version it enrolled with, before any connection');
  });

  it('-o json and -o yaml print the API objects unchanged', async () => {
    await servesSame(['get', 'machines', '-o', 'json'], '/v1/machines', JSON.parse);
    await servesSame(['get', 'machines', '-o', 'yaml'], '/v1/machines', parseYaml);
    await servesSame(['get', 'machine', 'node-2', '-o', 'yaml'], '/v1/machines/node-2', parseYaml);
  });

  it('-l filters by labels; -o name prints kind/name', async () => {
    const r = await admin('get', 'machines', '-l', 'zone=zone-b', '-o', 'name');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'machine/node-2\n');
    const none = await admin('get', 'machines', '-l', 'zone=nowhere');
    assert.equal(none.code, 0);
    assert.equal(none.stdout, '');
    assert.equal(none.stderr, 'No machines found.\n');
  });
});

describe('nkctl describe machine', () => {
  it('shows conditions, component health with reasons, plugins, host and events', async () => {
    // The coordinator's own events of node-2 (the newest 20), read first: describe shows these and any newer.
    const events = (await nc.api('GET', '/v1/machines/node-2/events?limit=20')).json.items as { type: string; reason: string }[];
    const r = await admin('describe', 'machine', 'node-2');
    assert.equal(r.code, 0, r.stderr);
    for (const re of [
      /^Name: {11}node-2$/m,
      /^Labels: {9}role=worker\n {16}zone=zone-b$/m,
      /^Phase Reason: {3}NodeUnhealthy: CniUnhealthy: cni: NoNetworkConfig: no network config found in \/etc\/cni\/net\.d$/m,
      /^Conditions:\n {2}Type {12}Status {2}Reason {19}Age +Message\n {2}----/m,
      /^ {2}NetworkReady {4}False {3}NoNetworkConfig {10}\d+[smhd](?:\d+[smh])? +no network config found in \/etc\/cni\/net\.d$/m,
      /^ {2}KubeletHealthy {2}True {4}HealthzOk {16}\d+[smhd](?:\d+[smh])? +healthz answered ok$/m,
      /^Kubelet:\n {2}Health: {4}healthy \(HealthzOk\)$/m,
      /^ {2}Version: {3}Kubernetes v1\.31\.2 \(semver 1\.31\.2, from binary\)$/m,
      /^ {2}Service: {3}kubelet\.service \(systemd\): active\/running, 0 restarts$/m,
      /^ {2}Runtime: {3}containerd, CRI API v1$/m,
      /^CNI:\n {2}Health: {7}unhealthy \(NoNetworkConfig\)$/m,
      /^ {2}Plugins: {2}<none>$/m,
      /^ {2}Memory: +5\.0 GiB available of 8\.0 GiB$/m,
      /^ {2}Kernel: +6\.1\.0-25-amd64 \(newest installed 6\.1\.0-26-amd64\)$/m,
      /^ {2}Boot ID: +0f6c2a33-1111-4222-8333-444455556666$/m,
      /^ {2}Reboot Required: +yes: \/var\/run\/reboot-required exists \(packages: linux-image-6\.1\.0-26-amd64\); running kernel 6\.1\.0-25-amd64, newest installed 6\.1\.0-26-amd64$/m,
      /^ {2}Read-only: +\/var\/lib\/containerd$/m,
      /^Events:\n {2}Type {5}Reason +Age +Message\n/m,
    ]) {
      assert.match(r.stdout, re);
    }
    assert.ok(events.some((e) => e.type === 'Warning'), 'the broken CNI made a warning');
    for (const e of events) assert.match(r.stdout, new RegExp(`^ {2}${e.type} +${e.reason} +\\d+[smhd](?:\\d+[smh])?`, 'm'));
  });

  it('lists CNI plugins with versions and where they came from', async () => {
    const r = await admin('describe', 'm', 'node-1');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ {4}bridge {3}version unknown \(no semver reading, from binary\) {2}0\.3\.1,0\.4\.0,1\.0\.0 {3}\/usr\/lib\/cni\/bridge$/m);
    assert.match(r.stdout, /^ {4}portmap {2}1\.1\.1\+ds1-3\+b1 \(semver 1\.1\.1, from dpkg\) {10}0\.3\.1/m);
    assert.doesNotMatch(r.stdout, /Boot ID|Reboot Required|Read-only/, 'an agent that does not report boot facts shows none');
  });
});

describe('nkctl tokens and revocation', () => {
  it('token create sends ttl, uses and description and prints a join command', async () => {
    const r = await admin('token', 'create', '--ttl', '1h30m', '--uses', '10', '--description', 'rack 13');
    assert.equal(r.code, 0, r.stderr);
    const printed = /^Token: {4}([a-z0-9]{6})\.([a-z0-9]{16})$/m.exec(r.stdout);
    assert.ok(printed !== null, r.stdout);
    const made = ((await nc.api('GET', '/v1/tokens')).json.items as { id: string; description: string; maxUses?: number; expiresAt: string; createdAt: string }[]).find((t) => t.id === printed[1]);
    assert.ok(made !== undefined, 'the coordinator has the token');
    assert.equal(made.description, 'rack 13');
    assert.equal(Math.round((Date.parse(made.expiresAt) - Date.parse(made.createdAt)) / 1000), 5400);
    assert.ok(r.stdout.includes(`  nodekeeper-agent --server ${nc.coord.url} --token ${printed[1]}.${printed[2]} --discovery-ca-hash ${nc.coord.caHash}\n`), r.stdout);
    const json = await admin('token', 'create', '-o', 'json');
    const obj = JSON.parse(json.stdout) as Record<string, unknown>;
    assert.match(String(obj['token']), /^[a-z0-9]{6}\.[a-z0-9]{16}$/);
    assert.equal(obj['caCertHash'], nc.coord.caHash);
    assert.match(String(obj['joinCommand']), /^nodekeeper-agent --server https:\/\/127\.0\.0\.1:\d+ --token [a-z0-9]{6}\./);
  });

  it('token list shows TTL, uses and state; revoke and machine revoke confirm', async () => {
    const list = await admin('token', 'list');
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^ID {6}TTL {8}EXPIRES {19}USES {2}STATE {4}DESCRIPTION$/m);
    assert.match(list.stdout, new RegExp(`^${token.id} {2}2[23]h {8}\\S+Z {2}4/10 {2}Active {3}rack 12$`, 'm'));
    assert.match(list.stdout, new RegExp(`^${expired.id} {2}<expired> {2}\\S+Z {2}0/1 {3}Expired {2}<none>$`, 'm'));
    const revoke = await admin('token', 'revoke', token.id);
    assert.deepEqual([revoke.code, revoke.stdout], [0, `token/${token.id} revoked\n`]);
    assert.match((await admin('token', 'list')).stdout, new RegExp(`^${token.id} .* Revoked `, 'm'));
    const machine = await admin('machine', 'revoke', 'node-1');
    assert.deepEqual([machine.code, machine.stdout], [0, 'machine/node-1 revoked\n']);
    assert.ok((await nc.api('GET', '/v1/machines/node-1')).json.status.revoked, 'the coordinator revoked it');
  });
});

describe('nkctl exit codes', () => {
  it('2: not found', async () => {
    expectError(await admin('get', 'machine', 'nope'), 2, 'NK_MACHINE_NOT_FOUND', 'machine "nope" not found');
    expectError(await admin('token', 'revoke', 'nope00'), 2, 'NK_TOKEN_NOT_FOUND');
  });

  it('3: unauthorized and forbidden; the credential goes as a bearer token', async () => {
    expectError(await nc.nk(['get', 'machines'], { token: 'wrong' }), 3, 'NK_AUTH_CREDENTIAL_INVALID');
    assert.equal((await nc.nk(['get', 'machines'], { token: nc.readOnly })).code, 0);
    const tokens = await tokenCount();
    expectError(await nc.nk(['token', 'create'], { token: nc.readOnly }), 3, 'NK_AUTH_FORBIDDEN');
    expectError(await nc.nk(['machine', 'revoke', 'node-2'], { token: nc.readOnly }), 3, 'NK_AUTH_FORBIDDEN');
    assert.equal(await tokenCount(), tokens);
    assert.notEqual((await nc.api('GET', '/v1/machines/node-2')).json.status.revoked, true);
  });

  it('4: connection refused, TLS failure, timeout', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    expectError(await run(['get', 'machines', '--server', `https://127.0.0.1:${port}`, '--token', 'adm']), 4, 'NK_CLI_CONNECTION_REFUSED', 'connection refused');

    expectError(await run(['get', 'machines', '--server', nc.coord.url, '--token', nc.admin]), 4, 'NK_CLI_TLS_FAILED', '--ca');
    assert.equal((await run(['get', 'machines', '--server', nc.coord.url, '--token', nc.admin, '--insecure-skip-tls-verify'])).code, 0);

    // Servers that are not the coordinator: plain HTTP where TLS was asked for, and one that never answers.
    const plain = http.createServer((_req, res) => res.end());
    const held = new Set<net.Socket>();
    const silent = net.createServer((sock) => held.add(sock));
    for (const s of [plain, silent]) await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    try {
      const pport = (plain.address() as net.AddressInfo).port;
      expectError(await run(['get', 'machines', '--server', `https://127.0.0.1:${pport}`, '--token', 'x']), 4, 'NK_CLI_TLS_FAILED', 'wrong version number (is the server speaking TLS?');
      const sport = (silent.address() as net.AddressInfo).port;
      const r = await run(['get', 'machines', '--server', `http://127.0.0.1:${sport}`, '--token', 'x', '--request-timeout', '300ms']);
      expectError(r, 4, 'NK_CLI_TIMEOUT', 'within 0.3s');
    } finally {
      plain.closeAllConnections();
      for (const sock of held) sock.destroy();
      await Promise.all([plain, silent].map((s) => new Promise((resolve) => s.close(resolve))));
    }
  });

  it('1: bad duration, bad flag, bad output, bad config file, no server', async () => {
    const tokens = await tokenCount();
    expectError(await admin('token', 'create', '--ttl', '3d'), 1, 'NK_CLI_BAD_DURATION', 'invalid --ttl "3d": unknown unit "d"');
    expectError(await admin('token', 'create', '--ttl', 'soon'), 1, 'NK_CLI_BAD_DURATION');
    expectError(await admin('token', 'create', '--uses', '0'), 1, 'NK_CLI_USAGE', '--uses');
    assert.equal(await tokenCount(), tokens, 'nothing made on a usage error');
    expectError(await admin('get', 'machines', '--bogus'), 1, 'NK_CLI_USAGE', "unknown option '--bogus'");
    expectError(await admin('get', 'pods'), 1, 'NK_CLI_USAGE');
    expectError(await admin('get', 'machines', '-o', 'xml'), 1, 'NK_CLI_USAGE', 'unsupported output format "xml"');
    expectError(await admin('get', 'machines', '-l', 'a=b=c'), 1, 'NK_CLI_BAD_SELECTOR');
    const bad = join(nc.dir, 'bad.yaml');
    writeFileSync(bad, 'server: https://x:1\ntoken: [1, 2]\n');
    expectError(await run(['get', 'machines', '--config', bad]), 1, 'NK_CLI_BAD_CONFIG', `invalid config file ${bad}: field "token"`);
    expectError(await run(['get', 'machines']), 1, 'NK_CLI_BAD_SERVER', 'no server configured');
  });

  it('5: server errors and unreadable responses', async () => {
    // The coordinator answers neither: a stand-in for a broken proxy in front of it.
    const broken = http.createServer((req, res) => {
      if (req.url === '/v1/machines') {
        res.writeHead(500, { 'content-type': 'application/json' }).end('{"code":"NK_STORE_UNAVAILABLE","message":"database is locked"}');
      } else res.writeHead(200, { 'content-type': 'text/html' }).end('<html>hello</html>');
    });
    await new Promise<void>((resolve) => broken.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(broken.address() as net.AddressInfo).port}`;
      expectError(await run(['get', 'machines', '--server', url, '--token', 'x']), 5, 'NK_STORE_UNAVAILABLE', 'database is locked');
      expectError(await run(['get', 'machine', 'a', '--server', url, '--token', 'x']), 5, 'NK_CLI_BAD_RESPONSE', 'not JSON');
    } finally {
      broken.closeAllConnections();
      await new Promise((resolve) => broken.close(resolve));
    }
  });
});

describe('nkctl connection settings', () => {
  it('flags beat env beat the config file', async () => {
    // The file names the coordinator with the read-only credential: an admin-only read is forbidden.
    const cfg = join(nc.dir, 'nkctl.yaml');
    writeFileSync(cfg, `server: ${nc.coord.url}\ntoken: ${nc.readOnly}\nca: ${nc.caFile}\n`);
    assert.equal((await run(['get', 'machines', '--config', cfg])).code, 0, 'file only');
    expectError(await run(['credential', 'list', '--config', cfg]), 3, 'NK_AUTH_FORBIDDEN');

    // The environment's admin credential beats the file's.
    const env = { NKCTL_CONFIG: cfg, NKCTL_TOKEN: nc.admin };
    assert.equal((await run(['credential', 'list'], { env })).code, 0, 'env beats file');
    // The environment's server beats the file's.
    const closed = { ...env, NKCTL_SERVER: 'https://127.0.0.1:1' };
    expectError(await run(['get', 'machines'], { env: closed }), 4, 'NK_CLI_CONNECTION_REFUSED');

    // Flags beat the environment: the server, and the credential alone.
    const r = await run(['get', 'machines', '--server', nc.coord.url], { env: closed });
    assert.equal(r.code, 0, r.stderr);
    expectError(await run(['get', 'machines', '--token', 'wrong'], { env }), 3, 'NK_AUTH_CREDENTIAL_INVALID');
  });

  it('refuses the retired NODEKEEPER_CONFIG with a hint naming NKCTL_CONFIG', async () => {
    const r = await run(['get', 'machines', '--server', nc.coord.url, '--token', nc.admin, '--ca', nc.caFile], { env: { NODEKEEPER_CONFIG: join(nc.dir, 'nkctl.yaml') } });
    expectError(r, 1, 'NK_CLI_ENV_RETIRED', 'NODEKEEPER_CONFIG is no longer read: nkctl reads NKCTL_CONFIG instead');
  });

  it('finds ~/.config/nodekeeper/nkctl.yaml, with tokenFile and ca relative to it', async () => {
    const conf = join(nc.dir, 'home', '.config', 'nodekeeper');
    mkdirSync(conf, { recursive: true });
    writeFileSync(join(conf, 'admin.token'), `${nc.admin}\n`);
    writeFileSync(join(conf, 'ca.crt'), readFileSync(nc.caFile));
    writeFileSync(join(conf, 'nkctl.yaml'), `server: ${nc.coord.url}\ntokenFile: admin.token\nca: ca.crt\n`);
    try {
      const r = await run(['get', 'machines', '-o', 'name']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'machine/node-1\nmachine/node-2\nmachine/node-3\nmachine/node-4\n');
      assert.equal((await run(['credential', 'list'])).code, 0, 'as admin');
    } finally {
      rmSync(join(conf, 'nkctl.yaml'));
    }
  });
});

describe('nkctl launchers', () => {
  it('runs through a symlink from another directory and prints its version', async () => {
    const bin = join(nc.dir, 'linkbin');
    mkdirSync(bin, { recursive: true });
    symlinkSync(BIN.nkctl, join(bin, 'nkctl'));
    const r = await run(['version', '-o', 'json'], { file: join(bin, 'nkctl'), cwd: tmpdir() });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(Object.keys(JSON.parse(r.stdout) as object), ['clientVersion', 'apiVersion']);
  });

  it('works as a kubectl plugin: kubectl nodekeeper get machines', async (t) => {
    if (!existsSync('/usr/bin/kubectl')) return t.skip('kubectl is not installed');
    const bin = join(nc.dir, 'pluginbin');
    mkdirSync(bin, { recursive: true });
    symlinkSync(KUBECTL_NODEKEEPER, join(bin, 'kubectl-nodekeeper'));
    const env = { PATH: `${bin}:${dirname(process.execPath)}:/usr/bin:/bin`, KUBECONFIG: join(nc.dir, 'no-kubeconfig') };
    const conn = ['--server', nc.coord.url, '--token', nc.admin, '--ca', nc.caFile];
    const r = await run(['nodekeeper', 'get', 'machines', ...conn], { file: '/usr/bin/kubectl', env, cwd: tmpdir() });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^NAME {4}STATUS/);
    const help = await run(['nodekeeper', '--help'], { file: '/usr/bin/kubectl', env });
    assert.match(help.stdout, /^Usage: kubectl nodekeeper /);
    const missing = await run(['nodekeeper', 'get', 'machine', 'nope', ...conn], { file: '/usr/bin/kubectl', env });
    assert.equal(missing.code, 2, 'kubectl passes the plugin exit code through');
  });
});
