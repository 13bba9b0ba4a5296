/**
 * The agent's systemd unit and the release's install-agent, for real: the installer
 * stages a node under a temp root (--root) from the release tarball (test/harness/
 * release.ts), systemd-analyze verifies the installed unit offline (and must reject
 * deliberately broken copies), and the installed launcher runs the installed agent with
 * the installed config against a real coordinator.
 *
 * No systemd as PID 1 is needed: `systemd-analyze verify --root=DIR` loads the unit from
 * DIR and checks that ExecStart's binary exists under DIR. `--recursive-errors=no`
 * because the staging root has no multi-user.target, network-online.target or
 * containerd.service: those belong to the node, not to us.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, lstat, mkdtemp, readFile, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { makeHostRoot } from './harness/host-root.ts';
import { createToken, nkctl, startCoordinator, waitFor, REPO, type CoordinatorProc } from './harness/processes.ts';
import { agentRelease, AGENT_PKG_REL, installAgentRelease, type AgentRelease } from './harness/release.ts';
import { runCommand, showResult, type Result } from './harness/command.ts';

const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
/** The shipped unit's ExecStart binary: the launcher of the active version. */
const LAUNCHER = `/${AGENT_PKG_REL}/current/bin/nodekeeper-agent`;
const UNIT = 'nodekeeper-agent.service';
const UNIT_REL = `etc/systemd/system/${UNIT}`;
const CONFIG_REL = 'etc/nodekeeper/agent.yaml';

/** Runs a command to completion; `env` is added to this process's environment. */
const run = (cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) =>
  runCommand(cmd, args, { env: { ...process.env, ...opts.env }, ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }) });
const show = showResult;

/** A unit file as section -> key -> values (repeated keys keep their order). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(current !== undefined && eq > 0, `unexpected unit line: ${line}`);
    const key = line.slice(0, eq).trim();
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return sections;
}

/** The single value of a directive, failing when it is missing or repeated. */
function one(unit: Map<string, Map<string, string[]>>, section: string, key: string): string {
  const values = unit.get(section)?.get(key) ?? [];
  assert.equal(values.length, 1, `[${section}] ${key}= should appear once, found ${JSON.stringify(values)}`);
  return values[0]!;
}

const verify = (root: string, unit: string) => run(SYSTEMD_ANALYZE, ['verify', '--recursive-errors=no', `--root=${root}`, unit]);

/** `systemd-analyze security --offline`: the overall exposure score, 0 (safe) to 10. */
async function exposure(root: string, unit: string): Promise<number> {
  const r = await run(SYSTEMD_ANALYZE, ['security', '--offline=true', `--root=${root}`, '--no-pager', unit]);
  assert.equal(r.code, 0, show(r));
  const m = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(r.stdout);
  assert.ok(m, show(r));
  return Number(m[1]);
}

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

describe('the agent unit and scripts/install-agent', { timeout: 150_000 }, () => {
  let dir: string;
  let root: string;
  let rel: AgentRelease;
  let coord: CoordinatorProc;
  let token: { token: string; caCertHash: string | null };
  let installArgs: string[];
  let firstInstall: Result;
  let unitText: string;
  let unit: Map<string, Map<string, string[]>>;

  /** ExecStart's argv with the staging root in front of the installed paths. */
  const rootedExecStart = () =>
    one(unit, 'Service', 'ExecStart')
      .split(/\s+/)
      .map((a) => (a === LAUNCHER || a === `/${CONFIG_REL}` ? path.join(root, a) : a));

  before(async () => {
    rel = await agentRelease();
    dir = await mkdtemp(path.join(tmpdir(), 'nk-install-'));
    root = path.join(dir, 'root');
    coord = await startCoordinator(path.join(dir, 'coordinator'));
    token = await createToken(coord.nkctlConfig, 1);
    assert.ok(token.caCertHash, 'the coordinator serves https and gives a CA hash to pin');
    installArgs = [
      '--from', rel.agentTarball,
      '--root', root,
      '--server', coord.url,
      '--token', token.token,
      '--discovery-ca-hash', token.caCertHash,
      '--zone', 'zone-7',
      '--label', 'rack=r12',
      '--label', 'example.com/tier=gold',
    ];
    firstInstall = await installAgentRelease(installArgs);
    assert.equal(firstInstall.code, 0, show(firstInstall));
    unitText = await readFile(path.join(root, UNIT_REL), 'utf8');
    unit = parseUnit(unitText);
  });

  after(async () => {
    await coord?.stop();
    if (dir !== undefined && process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(dir, { recursive: true, force: true });
  });

  test('the installed unit passes systemd-analyze verify', async () => {
    const r = await verify(root, UNIT);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stderr.trim(), '', `verify should print no warnings:\n${r.stderr}`);
  });

  test('systemd-analyze verify rejects broken copies of the unit', async () => {
    const unitDir = path.dirname(path.join(root, UNIT_REL));
    const template = await readFile(path.join(REPO, 'agent/systemd', UNIT), 'utf8');
    const broken: Array<{ name: string; text: string; complaint: RegExp }> = [
      { name: 'nk-typo.service', text: unitText.replace(/^NoNewPrivileges=/m, 'NoNewPrivilege='), complaint: /Unknown key 'NoNewPrivilege'/ },
      { name: 'nk-value.service', text: unitText.replace(/^MemoryMax=.*$/m, 'MemoryMax=plenty'), complaint: /memory limit 'plenty'/i },
      { name: 'nk-exec.service', text: unitText.replace(LAUNCHER, `${LAUNCHER}-missing`), complaint: /not executable/ },
    ];
    // The unit is installed exactly as shipped: nothing is filled in.
    assert.equal(unitText, template);
    for (const b of broken) {
      assert.notEqual(b.text, unitText, `${b.name}: the edit must change the unit`);
      await writeFile(path.join(unitDir, b.name), b.text);
    }
    try {
      for (const b of broken) {
        const r = await verify(root, b.name);
        assert.notEqual(r.code, 0, `${b.name} should be rejected:\n${show(r)}`);
        assert.match(r.stderr, b.complaint, b.name);
      }
    } finally {
      for (const b of broken) await rm(path.join(unitDir, b.name), { force: true });
    }
  });

  test('the unit restarts forever and is hardened without blocking the probes', () => {
    assert.equal(one(unit, 'Unit', 'StartLimitIntervalSec'), '0');
    assert.deepEqual(one(unit, 'Unit', 'After').split(/\s+/).sort(), ['containerd.service', 'network-online.target']);
    assert.equal(one(unit, 'Unit', 'Wants'), 'network-online.target');
    const expected: Record<string, string> = {
      Type: 'simple',
      Restart: 'always',
      RestartSec: '5s',
      EnvironmentFile: '-/etc/nodekeeper/agent.env',
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      StateDirectory: 'nodekeeper-agent nodekeeper',
      StateDirectoryMode: '0700',
      PrivateTmp: 'yes',
      ProtectHome: 'yes',
      ProtectKernelTunables: 'yes',
      ProtectControlGroups: 'yes',
      RestrictSUIDSGID: 'yes',
      LockPersonality: 'yes',
      LimitNOFILE: '65536',
      MemoryMax: '256M',
    };
    for (const [key, value] of Object.entries(expected)) assert.equal(one(unit, 'Service', key), value, key);
    // What would break the job: no network isolation (it dials out and reaches
    // containerd), no W^X (V8 JIT), root (containerd socket, kubelet, CNI plugins),
    // and its own hostname view would hide a renamed host from the identity probe.
    for (const key of ['PrivateNetwork', 'IPAddressDeny', 'RestrictAddressFamilies', 'MemoryDenyWriteExecute', 'User', 'DynamicUser', 'ProtectHostname', 'InaccessiblePaths']) {
      assert.equal(unit.get('Service')?.has(key), false, `${key}= would stop the agent doing its job`);
    }
    const argv = one(unit, 'Service', 'ExecStart').split(/\s+/);
    assert.deepEqual(argv, [LAUNCHER, '--config', `/${CONFIG_REL}`]);
    assert.equal(one(unit, 'Install', 'WantedBy'), 'multi-user.target');
  });

  test('hardening lowers systemd-analyze security exposure', async () => {
    // The same unit with every hardening line dropped must score worse: this is what
    // catches a hardening directive that silently stopped applying.
    const hardening = /^(NoNewPrivileges|ProtectSystem|PrivateTmp|ProtectHome|ProtectKernel\w+|ProtectControlGroups|RestrictSUIDSGID|RestrictRealtime|LockPersonality|SystemCallArchitectures|UMask)=.*\n/gm;
    const bare = path.join(path.dirname(path.join(root, UNIT_REL)), 'nk-bare.service');
    await writeFile(bare, unitText.replace(hardening, ''));
    try {
      const hardened = await exposure(root, UNIT);
      const unhardened = await exposure(root, 'nk-bare.service');
      assert.ok(hardened < unhardened - 1.5, `hardened ${hardened} vs bare ${unhardened}`);
      assert.ok(hardened <= 7.5, `exposure ${hardened} regressed (7.4 when written; root with host access is the floor)`);
    } finally {
      await rm(bare, { force: true });
    }
  });

  test('the config is root-only, holds the flags, and the token is never printed', async () => {
    const file = path.join(root, CONFIG_REL);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const doc = parseYaml(await readFile(file, 'utf8')) as Record<string, unknown>;
    assert.deepEqual(doc, {
      server: coord.url,
      token: token.token,
      discoveryCaHash: token.caCertHash,
      zone: 'zone-7',
      label: { rack: 'r12', 'example.com/tier': 'gold' },
    });
    assert.ok(!`${firstInstall.stdout}${firstInstall.stderr}`.includes(token.token), 'installer output leaks the token');
  });

  test('the unit is enabled in the staging root and nothing was left behind', async () => {
    const wants = path.join(root, 'etc/systemd/system/multi-user.target.wants', UNIT);
    assert.ok((await lstat(wants)).isSymbolicLink());
    assert.equal(await readlink(wants), `/${UNIT_REL}`);
    assert.deepEqual((await readdir(path.join(root, AGENT_PKG_REL))).sort(), ['current', 'guard', 'versions']);
    assert.equal(await readlink(path.join(root, AGENT_PKG_REL, 'current')), `versions/${rel.version}`);
    assert.deepEqual((await readdir(path.join(root, AGENT_PKG_REL, 'versions'))).sort(), [rel.version, `${rel.version}.artifact.json`]);
  });

  test('the installed launcher and the unit command start the installed agent', async () => {
    const launcher = await run(path.join(root, LAUNCHER), ['--help']);
    assert.equal(launcher.code, 0, show(launcher));
    assert.match(launcher.stdout, /^Usage: nodekeeper-agent --server URL/);
    const [cmd, ...args] = rootedExecStart();
    const direct = await run(cmd!, [...args, '--help']);
    assert.equal(direct.code, 0, show(direct));
    assert.match(direct.stdout, /^Usage: nodekeeper-agent/);
    const version = await run(path.join(root, AGENT_PKG_REL, 'current/node/bin/node'), ['-p', 'process.versions.node']);
    assert.match(version.stdout, /^24\./);
  });

  test('the installed agent enrolls with the installed config', async () => {
    const { root: hostRoot } = await makeHostRoot(path.join(dir, 'host'), { machineId: 'c0ffee'.repeat(5) + '00', hostname: 'installed-node' });
    const [cmd, ...args] = rootedExecStart();
    // The unit's command line, with test-only paths: a state dir of its own (systemd's
    // StateDirectory is not there), the host root, and a kubelet that is not running.
    const agentArgs = [...args, '--state-dir', path.join(dir, 'state'), '--host-root', hostRoot, '--cni-bin-dir', '/usr/lib/cni', '--kubelet-healthz-url', `http://127.0.0.1:${await closedPort()}/healthz`];
    const agent = spawn(cmd!, agentArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    agent.stdout.on('data', (c: Buffer) => (log += c.toString('utf8')));
    agent.stderr.on('data', (c: Buffer) => (log += c.toString('utf8')));
    const exited = new Promise<number | string>((resolve) => agent.once('exit', (code, sig) => resolve(code ?? sig ?? 'unknown')));
    try {
      const m = await waitFor('the installed agent to enroll', async () => {
        if (agent.exitCode !== null) throw new Error(`agent exited ${agent.exitCode}:\n${log}`);
        const r = await nkctl(coord.nkctlConfig, ['get', 'machine', 'installed-node', '-o', 'json']);
        return r.code === 0 && (JSON.parse(r.stdout) as { spec: { zone: string; labels: Record<string, string> } });
      });
      assert.equal(m.spec.zone, 'zone-7');
      assert.equal(m.spec.labels['rack'], 'r12');
      assert.equal(m.spec.labels['example.com/tier'], 'gold');
      assert.equal((await stat(path.join(dir, 'state/credential'))).mode & 0o777, 0o600);
    } finally {
      agent.kill('SIGTERM');
      await exited;
    }
  });

  test('a second run with the same flags changes nothing and keeps working', async () => {
    const configBefore = await readFile(path.join(root, CONFIG_REL), 'utf8');
    const r = await installAgentRelease(installArgs);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stderr, /agent\.yaml unchanged/);
    assert.match(r.stderr, /already in .*, unchanged/);
    assert.equal(await readFile(path.join(root, CONFIG_REL), 'utf8'), configBefore);
    assert.equal(await readFile(path.join(root, UNIT_REL), 'utf8'), unitText);
    assert.deepEqual((await readdir(path.join(root, AGENT_PKG_REL))).sort(), ['current', 'guard', 'versions'], 'no staging dirs left');
    const launcher = await run(path.join(root, LAUNCHER), ['--help']);
    assert.equal(launcher.code, 0, show(launcher));
    // An upgrade without config flags keeps the existing config.
    const upgrade = await installAgentRelease(['--from', rel.agentTarball, '--root', root]);
    assert.equal(upgrade.code, 0, show(upgrade));
    assert.match(upgrade.stderr, /keeping the existing/);
    assert.equal(await readFile(path.join(root, CONFIG_REL), 'utf8'), configBefore);
  });

  test('bad usage fails clearly before touching anything', async () => {
    const fresh = path.join(dir, 'fresh');
    const cases: Array<{ args: string[]; code: number; message: RegExp }> = [
      { args: ['--root', fresh], code: 2, message: /--server is required/ },
      { args: ['--root', fresh, '--token', 'x'], code: 2, message: /--server is required/ },
      { args: ['--root', fresh, '--bogus'], code: 2, message: /unknown option '--bogus'/ },
      { args: ['--root', fresh, '--server'], code: 2, message: /--server needs a value/ },
      { args: ['--root', fresh, '--server', 'http://127.0.0.1:1'], code: 2, message: /plain http/ },
      { args: ['--root', fresh, '--server', 'https://c:1', '--token', 'secret-tok'], code: 2, message: /--discovery-ca-hash is needed/ },
      { args: ['--root', fresh, '--server', 'https://c:1', '--discovery-ca-hash', 'sha256:12'], code: 2, message: /sha256:<64 hex digits>/ },
      { args: ['--root', fresh, '--server', 'https://c:1', '--label', 'no-equals'], code: 2, message: /KEY=VALUE/ },
      { args: ['--root', fresh, '--server', 'https://c:1', '--unit-dir', 'relative/dir'], code: 2, message: /--unit-dir must be an absolute path/ },
      { args: ['--root', fresh, '--server', 'https://c:1', '--from', path.join(dir, 'missing.tar.gz')], code: 2, message: /cannot read --from/ },
      { args: ['--root', fresh, '--server', 'https://c:1', '--from', 'http://c/nodekeeper-agent-1-linux-x64.tar.gz'], code: 2, message: /https:\/\/ URL/ },
      { args: ['--root', fresh, '--server', 'https://c:1', '--from', rel.agentTarball, '--signature', rel.agentTarball], code: 2, message: /--signature needs --public-key/ },
    ];
    for (const c of cases) {
      const r = await installAgentRelease(c.args);
      assert.equal(r.code, c.code, `${c.args.join(' ')}\n${show(r)}`);
      assert.match(r.stderr, c.message, c.args.join(' '));
      assert.ok(!r.stderr.includes('secret-tok'), 'the token must not be echoed');
    }
    assert.equal(existsSync(fresh), false, 'a failed run must not create the root');
    // Not root, installing for real: refused before anything happens. The script is
    // copied where uid 65534 can reach it (the release cache may sit in a mode-700 home).
    const nobodyDir = await mkdtemp(path.join(tmpdir(), 'nk-install-nobody-'));
    try {
      await chmod(nobodyDir, 0o755);
      await copyFile(rel.installer, path.join(nobodyDir, 'install-agent'));
      await chmod(path.join(nobodyDir, 'install-agent'), 0o755);
      const asNobody = await run('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', path.join(nobodyDir, 'install-agent'), '--server', 'https://c:1'], { cwd: nobodyDir });
      assert.equal(asNobody.code, 1, show(asNobody));
      assert.match(asNobody.stderr, /must run as root/);
    } finally {
      await rm(nobodyDir, { recursive: true, force: true });
    }
  });

  test('--dry-run prints the plan, redacts the token and writes nothing', async () => {
    const planned = path.join(dir, 'planned');
    const r = await installAgentRelease(['--dry-run', '--root', planned, '--server', 'https://c:1', '--token', 'secret-tok', '--discovery-ca-hash', `sha256:${'ab'.repeat(32)}`]);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /token: "<redacted>"/);
    assert.ok(!r.stdout.includes('secret-tok') && !r.stderr.includes('secret-tok'));
    assert.match(r.stdout, new RegExp(`unit ${planned}/${UNIT_REL}`));
    assert.equal(existsSync(planned), false);
    // Without --root it says whether it would start the agent, and why not.
    const host = await installAgentRelease(['--dry-run', '--server', 'https://c:1']);
    assert.equal(host.code, 0, show(host));
    assert.match(host.stdout, existsSync('/run/systemd/system') ? /systemctl daemon-reload && systemctl enable --now/ : /not starting: systemd is not PID 1/);
  });
});
