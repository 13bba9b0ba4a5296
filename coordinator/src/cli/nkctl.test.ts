/**
 * The real nkctl (coordinator/bin/nkctl, a separate process) against real local
 * HTTPS/HTTP servers on port 0 that serve the documented API from fixtures.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { toEventObject, toMachineObject, toTokenObject } from '../api/objects.ts';
import { makeTestPki, startFixtureServer, type FixtureData, type FixtureServer } from './fixture-server.ts';
import { brokenCniRecord, eventsAt, machineRecord, pendingRecord, revokedRecord, tokensAt } from './fixtures.ts';

const BIN = fileURLToPath(new URL('../../bin/', import.meta.url));
const NKCTL = join(BIN, 'nkctl');
const NODE_DIR = dirname(process.execPath);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let dir: string;
let home: string;
let caFile: string;
let main: FixtureServer; // https, admin `adm`, read-only `ro`
let envServer: FixtureServer; // http, `tok-env`
let fileServer: FixtureServer; // http, `tok-file`
const extra: { close(): unknown }[] = [];

function data(credentials: FixtureData['credentials']): FixtureData {
  const now = Date.now();
  return {
    machines: [
      machineRecord('node-1', {}, now),
      brokenCniRecord('node-2', now),
      pendingRecord('node-3', now),
      revokedRecord('node-4', now),
    ].map((r) => toMachineObject(r, now)),
    events: { 'node-2': eventsAt(now).map(toEventObject) },
    tokens: tokensAt(now).map(toTokenObject),
    credentials,
    caCertHash: 'sha256:0f1e2d3c',
  };
}

/** Run a command (nkctl by default) with a clean environment: no NKCTL_* or NODEKEEPER_* unless given. */
function run(args: readonly string[], opts: { env?: Record<string, string>; cwd?: string; file?: string } = {}): Promise<Run> {
  const env = { PATH: `${NODE_DIR}:/usr/bin:/bin`, HOME: home, ...opts.env };
  return new Promise((resolve) => {
    execFile(opts.file ?? NKCTL, [...args], { env, cwd: opts.cwd ?? dir, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** nkctl against the main server as admin. */
const admin = (...args: string[]) => run([...args, '--server', main.url, '--token', 'adm', '--ca', caFile]);

function expectError(r: Run, exit: number, code: string, text?: string | RegExp): void {
  assert.equal(r.code, exit, `exit code; stderr: ${r.stderr}`);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one stderr line, got: ${r.stderr}`);
  assert.match(lines[0] ?? '', new RegExp(`^error: .+ \\(${code}\\)$`));
  if (typeof text === 'string') assert.ok(r.stderr.includes(text), `${r.stderr} lacks ${text}`);
  else if (text !== undefined) assert.match(r.stderr, text);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nkctl-e2e-'));
  home = join(dir, 'home');
  mkdirSync(home);
  const pki = await makeTestPki();
  caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, pki.caPem);
  main = await startFixtureServer(data({ adm: 'admin', ro: 'read-only' }), pki);
  envServer = await startFixtureServer(data({ 'tok-env': 'admin' }));
  fileServer = await startFixtureServer(data({ 'tok-file': 'admin' }));
});

after(async () => {
  await Promise.all([main?.close(), envServer?.close(), fileServer?.close(), ...extra.map((s) => s.close())]);
  rmSync(dir, { recursive: true, force: true });
});

describe('nkctl get machines', () => {
  it('prints an aligned kubectl-style table', async () => {
    const r = await admin('get', 'machines');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^NAME {4}STATUS {11}KUBELET {4}CONTAINERD {2}CNI {13}AGE {2}LAST-SEEN {2}REMEDIATION {2}CONVERGED$/);
    assert.equal(lines.length, 5);
    assert.match(lines[1] ?? '', /^node-1 {2}Ready {12}v1\.31\.2 {4}1\.6\.20~ds1 {2}1\.1\.1\+ds1-3\+b1 {2}4d {3}\d+s +- +-$/);
    assert.match(lines[2] ?? '', /^node-2 {2}Ready {12}v1\.31\.2 {4}1\.6\.20~ds1 {2}<unknown> {7}4d/);
    assert.match(lines[3] ?? '', /^node-3 {2}Pending {10}<unknown> {2}<unknown> {3}<unknown> {7}\d+s {2,}<never> {4}- +-$/);
    assert.match(lines[4] ?? '', /^node-4 {2}Unknown,Revoked {2}/);
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
    assert.match(r.stdout, /node-2 .* mid-node-2\s+zone-b\s+10\.0\.0\.12\s+healthy\s+healthy\s+unhealthy:NoNetworkConfig\s+-\s+-\s+0\.1\.0\n/);
    assert.match(r.stdout, /node-3 .*\s+<unknown>\n/, 'no agent version before the first connection');
  });

  it('-o json and -o yaml print the API objects unchanged', async () => {
    const want = JSON.parse(JSON.stringify({ apiVersion: 'nodekeeper.io/v1alpha1', kind: 'MachineList', items: main.data.machines }));
    const json = await admin('get', 'machines', '-o', 'json');
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), want);
    const yaml = await admin('get', 'machines', '-o', 'yaml');
    assert.equal(yaml.code, 0, yaml.stderr);
    assert.deepEqual(parseYaml(yaml.stdout), want);
    const one = await admin('get', 'machine', 'node-2', '-o', 'yaml');
    assert.deepEqual(parseYaml(one.stdout), JSON.parse(JSON.stringify(main.data.machines[1])));
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

  it('sends the credential as a bearer token', async () => {
    const before = main.requests.length;
    await admin('get', 'machines');
    const req = main.requests[before];
    assert.equal(req?.url, '/v1/machines');
    assert.equal(req?.authorization, 'Bearer adm');
  });
});

describe('nkctl describe machine', () => {
  it('shows conditions, component health with reasons, plugins, host and events', async () => {
    const r = await admin('describe', 'machine', 'node-2');
    assert.equal(r.code, 0, r.stderr);
    for (const re of [
      /^Name: {11}node-2$/m,
      /^Labels: {9}role=worker\n {16}zone=zone-b$/m,
      /^Phase Reason: {3}AgentConnected: agent connected and heartbeating$/m,
      /^Conditions:\n {2}Type {12}Status {2}Reason {11}Age +Message\n {2}----/m,
      /^ {2}CniHealthy {6}False {3}NoNetworkConfig {2}\d+m\d*s? +no network config found in \/etc\/cni\/net\.d$/m,
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
      /^Events:\n {2}Type {5}Reason {8}Age +Message\n/m,
      /^ {2}Warning {2}CniUnhealthy {2}\d+m\d*s? +no network config found in \/etc\/cni\/net\.d$/m,
    ]) {
      assert.match(r.stdout, re);
    }
    assert.ok(main.requests.some((q) => q.url === '/v1/machines/node-2/events?limit=20'));
  });

  it('lists CNI plugins with versions and where they came from', async () => {
    const r = await admin('describe', 'm', 'node-1');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ {4}bridge {3}version unknown \(no semver reading, from binary\) {2}0\.3\.1,0\.4\.0,1\.0\.0 {3}\/usr\/lib\/cni\/bridge$/m);
    assert.match(r.stdout, /^ {4}portmap {2}1\.1\.1\+ds1-3\+b1 \(semver 1\.1\.1, from dpkg\) {10}0\.3\.1/m);
    assert.match(r.stdout, /^Events: {2}<none>$/m);
    assert.doesNotMatch(r.stdout, /Boot ID|Reboot Required|Read-only/, 'an agent that does not report boot facts shows none');
  });
});

describe('nkctl tokens and revocation', () => {
  it('token create sends ttl, uses and description and prints a join command', async () => {
    const r = await admin('token', 'create', '--ttl', '1h30m', '--uses', '10', '--description', 'rack 12');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(main.requests.at(-1)?.body, { ttlSeconds: 5400, uses: 10, description: 'rack 12' });
    assert.match(r.stdout, /^Token: {4}qwerty\.0123456789abcdef$/m);
    assert.ok(r.stdout.includes(`  nodekeeper-agent --server ${main.url} --token qwerty.0123456789abcdef --discovery-ca-hash sha256:0f1e2d3c\n`));
    const json = await admin('token', 'create', '-o', 'json');
    const obj = JSON.parse(json.stdout) as Record<string, unknown>;
    assert.equal(obj['token'], 'qwerty.0123456789abcdef');
    assert.equal(obj['caCertHash'], 'sha256:0f1e2d3c');
    assert.match(String(obj['joinCommand']), /^nodekeeper-agent --server https:\/\/127\.0\.0\.1:\d+ --token qwerty\./);
  });

  it('token list shows TTL, uses and state; revoke and machine revoke confirm', async () => {
    const list = await admin('token', 'list');
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^ID {6}TTL {8}EXPIRES {19}USES {2}STATE {4}DESCRIPTION$/m);
    assert.match(list.stdout, /^abcdef {2}2[23]h {8}\S+Z {2}3\/10 {2}Active {3}rack 12$/m);
    assert.match(list.stdout, /^zyxwvu {2}<expired> {2}\S+Z {2}0\/1 {3}Expired {2}<none>$/m);
    const revoke = await admin('token', 'revoke', 'abcdef');
    assert.deepEqual([revoke.code, revoke.stdout], [0, 'token/abcdef revoked\n']);
    assert.equal(main.requests.at(-1)?.method, 'DELETE');
    const machine = await admin('machine', 'revoke', 'node-1');
    assert.deepEqual([machine.code, machine.stdout], [0, 'machine/node-1 revoked\n']);
    assert.equal(main.requests.at(-1)?.url, '/v1/machines/node-1/revoke');
  });
});

describe('nkctl exit codes', () => {
  it('2: not found', async () => {
    expectError(await admin('get', 'machine', 'nope'), 2, 'NK_MACHINE_NOT_FOUND', 'machine "nope" not found');
    expectError(await admin('token', 'revoke', 'nope'), 2, 'NK_TOKEN_NOT_FOUND');
  });

  it('3: unauthorized and forbidden', async () => {
    expectError(await run(['get', 'machines', '--server', main.url, '--token', 'wrong', '--ca', caFile]), 3, 'NK_AUTH_CREDENTIAL_INVALID');
    const ro = ['--server', main.url, '--token', 'ro', '--ca', caFile];
    assert.equal((await run(['get', 'machines', ...ro])).code, 0);
    expectError(await run(['token', 'create', ...ro]), 3, 'NK_AUTH_FORBIDDEN');
    expectError(await run(['machine', 'revoke', 'node-1', ...ro]), 3, 'NK_AUTH_FORBIDDEN');
  });

  it('4: connection refused, TLS failure, timeout', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    expectError(await run(['get', 'machines', '--server', `https://127.0.0.1:${port}`, '--token', 'adm']), 4, 'NK_CLI_CONNECTION_REFUSED', 'connection refused');

    expectError(await run(['get', 'machines', '--server', main.url, '--token', 'adm']), 4, 'NK_CLI_TLS_FAILED', '--ca');
    expectError(await run(['get', 'machines', '--server', envServer.url.replace('http:', 'https:'), '--token', 'x']), 4, 'NK_CLI_TLS_FAILED', 'wrong version number (is the server speaking TLS?');
    assert.equal((await run(['get', 'machines', '--server', main.url, '--token', 'adm', '--insecure-skip-tls-verify'])).code, 0);

    // A server that accepts and never answers.
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    extra.push({ close: () => new Promise((resolve) => silent.close(resolve)) });
    const sport = (silent.address() as net.AddressInfo).port;
    const r = await run(['get', 'machines', '--server', `http://127.0.0.1:${sport}`, '--token', 'x', '--request-timeout', '300ms']);
    expectError(r, 4, 'NK_CLI_TIMEOUT', 'within 0.3s');
  });

  it('1: bad duration, bad flag, bad output, bad config file, no server', async () => {
    const posts = main.requests.filter((q) => q.method === 'POST').length;
    expectError(await admin('token', 'create', '--ttl', '3d'), 1, 'NK_CLI_BAD_DURATION', 'invalid --ttl "3d": unknown unit "d"');
    expectError(await admin('token', 'create', '--ttl', 'soon'), 1, 'NK_CLI_BAD_DURATION');
    expectError(await admin('token', 'create', '--uses', '0'), 1, 'NK_CLI_USAGE', '--uses');
    assert.equal(main.requests.filter((q) => q.method === 'POST').length, posts, 'nothing sent on a usage error');
    expectError(await admin('get', 'machines', '--bogus'), 1, 'NK_CLI_USAGE', "unknown option '--bogus'");
    expectError(await admin('get', 'pods'), 1, 'NK_CLI_USAGE');
    expectError(await admin('get', 'machines', '-o', 'xml'), 1, 'NK_CLI_USAGE', 'unsupported output format "xml"');
    expectError(await admin('get', 'machines', '-l', 'a=b=c'), 1, 'NK_CLI_BAD_SELECTOR');
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'server: https://x:1\ntoken: [1, 2]\n');
    expectError(await run(['get', 'machines', '--config', bad]), 1, 'NK_CLI_BAD_CONFIG', `invalid config file ${bad}: field "token"`);
    expectError(await run(['get', 'machines']), 1, 'NK_CLI_BAD_SERVER', 'no server configured');
  });

  it('5: server errors and unreadable responses', async () => {
    const broken = http.createServer((req, res) => {
      if (req.url === '/v1/machines') {
        res.writeHead(500, { 'content-type': 'application/json' }).end('{"code":"NK_STORE_UNAVAILABLE","message":"database is locked"}');
      } else res.writeHead(200, { 'content-type': 'text/html' }).end('<html>hello</html>');
    });
    await new Promise<void>((resolve) => broken.listen(0, '127.0.0.1', resolve));
    extra.push({ close: () => new Promise((resolve) => broken.close(resolve)) });
    const url = `http://127.0.0.1:${(broken.address() as net.AddressInfo).port}`;
    expectError(await run(['get', 'machines', '--server', url, '--token', 'x']), 5, 'NK_STORE_UNAVAILABLE', 'database is locked');
    expectError(await run(['get', 'machine', 'a', '--server', url, '--token', 'x']), 5, 'NK_CLI_BAD_RESPONSE', 'not JSON');
  });
});

describe('nkctl connection settings', () => {
  it('flags beat env beat the config file', async () => {
    const cfg = join(dir, 'nkctl.yaml');
    writeFileSync(cfg, `server: ${fileServer.url}\ntoken: tok-file\n`);
    const count = () => [main.requests.length, envServer.requests.length, fileServer.requests.length];

    let before = count();
    assert.equal((await run(['get', 'machines', '--config', cfg])).code, 0);
    assert.deepEqual(count(), [before[0], before[1], (before[2] ?? 0) + 1], 'file only');

    const env = { NKCTL_CONFIG: cfg, NKCTL_SERVER: envServer.url, NKCTL_TOKEN: 'tok-env' };
    before = count();
    assert.equal((await run(['get', 'machines'], { env })).code, 0);
    assert.deepEqual(count(), [before[0], (before[1] ?? 0) + 1, before[2]], 'env beats file');
    assert.equal(envServer.requests.at(-1)?.authorization, 'Bearer tok-env');

    before = count();
    const r = await run(['get', 'machines', '--server', main.url, '--token', 'adm', '--ca', caFile], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(count(), [(before[0] ?? 0) + 1, before[1], before[2]], 'flags beat env');

    // The credential alone from a flag: server from env, token from the flag.
    const mixed = await run(['get', 'machines', '--token', 'wrong'], { env });
    expectError(mixed, 3, 'NK_AUTH_CREDENTIAL_INVALID');
    assert.equal(envServer.requests.at(-1)?.authorization, 'Bearer wrong');
  });

  it('refuses the retired NODEKEEPER_CONFIG with a hint naming NKCTL_CONFIG, and sends nothing', async () => {
    const cfg = join(dir, 'nkctl.yaml');
    const before = main.requests.length;
    const r = await run(['get', 'machines', '--server', main.url, '--token', 'adm', '--ca', caFile], { env: { NODEKEEPER_CONFIG: cfg } });
    expectError(r, 1, 'NK_CLI_ENV_RETIRED', 'NODEKEEPER_CONFIG is no longer read: nkctl reads NKCTL_CONFIG instead');
    assert.equal(main.requests.length, before);
  });

  it('finds ~/.config/nodekeeper/nkctl.yaml, with tokenFile and ca relative to it', async () => {
    const conf = join(home, '.config', 'nodekeeper');
    mkdirSync(conf, { recursive: true });
    writeFileSync(join(conf, 'admin.token'), 'adm\n');
    writeFileSync(join(conf, 'ca.crt'), (await import('node:fs')).readFileSync(caFile));
    writeFileSync(join(conf, 'nkctl.yaml'), `server: ${main.url}\ntokenFile: admin.token\nca: ca.crt\n`);
    try {
      const r = await run(['get', 'machines', '-o', 'name']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.split('\n').filter((l) => l !== '').length, 4);
    } finally {
      rmSync(join(conf, 'nkctl.yaml'));
    }
  });
});

describe('nkctl launchers', () => {
  it('runs through a symlink from another directory and prints its version', async () => {
    const bin = join(dir, 'linkbin');
    mkdirSync(bin, { recursive: true });
    symlinkSync(NKCTL, join(bin, 'nkctl'));
    const r = await run(['version', '-o', 'json'], { file: join(bin, 'nkctl'), cwd: tmpdir() });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(Object.keys(JSON.parse(r.stdout) as object), ['clientVersion', 'apiVersion']);
  });

  it('works as a kubectl plugin: kubectl nodekeeper get machines', async (t) => {
    if (!existsSync('/usr/bin/kubectl')) return t.skip('kubectl is not installed');
    const bin = join(dir, 'pluginbin');
    mkdirSync(bin, { recursive: true });
    symlinkSync(join(BIN, 'kubectl-nodekeeper'), join(bin, 'kubectl-nodekeeper'));
    const env = { PATH: `${bin}:${NODE_DIR}:/usr/bin:/bin`, KUBECONFIG: join(dir, 'no-kubeconfig') };
    const r = await run(['nodekeeper', 'get', 'machines', '--server', main.url, '--token', 'adm', '--ca', caFile], { file: '/usr/bin/kubectl', env, cwd: tmpdir() });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^NAME {4}STATUS/);
    const help = await run(['nodekeeper', '--help'], { file: '/usr/bin/kubectl', env });
    assert.match(help.stdout, /^Usage: kubectl nodekeeper /);
    const missing = await run(['nodekeeper', 'get', 'machine', 'nope', '--server', main.url, '--token', 'adm', '--ca', caFile], { file: '/usr/bin/kubectl', env });
    assert.equal(missing.code, 2, 'kubectl passes the plugin exit code through');
  });
});
