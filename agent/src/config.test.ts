/**
 * The agent's configuration: flags over env over file over defaults, and every bad
 * value refused as NK_CONFIG_INVALID with a message that names the option.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError } from '@nodekeeper/common';
import { MAX_LABELS, MAX_NAME } from '@nodekeeper/protocol';
import { loadConfig } from './config.ts';
import { defaultProbeConfig } from './probes/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'nk-agent-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
/** Writes a config file and returns its path. */
function file(text: string): string {
  const p = join(dir, `config-${files++}.yaml`);
  writeFileSync(p, text);
  return p;
}

const SERVER = ['--server', 'https://coordinator.example:7443'];
const HASH = `sha256:${'ab'.repeat(32)}`;

/** Asserts that loading fails with NK_CONFIG_INVALID and a message matching `names`. */
function refused(argv: string[], env: Record<string, string>, names: RegExp): void {
  assert.throws(
    () => loadConfig(argv, env),
    (err: unknown) => {
      assert.ok(err instanceof AppError, `not an AppError: ${String(err)}`);
      assert.equal(err.code, 'NK_CONFIG_INVALID');
      assert.match(err.message, names);
      return true;
    },
  );
}

test('defaults fill everything but the server; the result is frozen', () => {
  const { config, help } = loadConfig(SERVER, {});
  assert.equal(help, false);
  assert.ok(Object.isFrozen(config));
  assert.equal(config.server, 'https://coordinator.example:7443');
  assert.equal(config.token, null);
  assert.equal(config.insecure, false);
  assert.equal(config.stateDir, '/var/lib/nodekeeper-agent');
  assert.equal(config.probeIntervalMs, 10_000);
  assert.equal(config.logLevel, 'info');
  assert.deepEqual(config.labels, {});
  assert.deepEqual(config.probes, defaultProbeConfig);
});

test('--help is reported without validating anything else', () => {
  assert.equal(loadConfig(['--help'], {}).help, true);
  assert.equal(loadConfig(['-h', '--probe-interval', 'nonsense'], {}).help, true);
});

test('precedence: flags over env over file over defaults', () => {
  const cfg = file('server: https://from-file:1\nzone: file-zone\nhostname: file-host\nstateDir: /file/state\nprobeInterval: 5000\n');
  const env = { NODEKEEPER_AGENT_ZONE: 'env-zone', NODEKEEPER_AGENT_HOSTNAME: 'env-host', NODEKEEPER_AGENT_CONFIG: '/does/not/matter' };
  const { config } = loadConfig(['--config', cfg, '--zone', 'flag-zone'], env);
  assert.equal(config.zone, 'flag-zone', 'flag beats env and file');
  assert.equal(config.hostname, 'env-host', 'env beats file');
  assert.equal(config.stateDir, '/file/state', 'file beats default');
  assert.equal(config.probeIntervalMs, 5000);
  assert.equal(config.server, 'https://from-file:1');
  assert.equal(config.logLevel, 'info', 'default when nobody says');
});

test('the config file may also be named by NODEKEEPER_AGENT_CONFIG', () => {
  const cfg = file('server: https://env-named:2\nlabel:\n  pool: a\n');
  const { config } = loadConfig([], { NODEKEEPER_AGENT_CONFIG: cfg });
  assert.equal(config.server, 'https://env-named:2');
  assert.deepEqual(config.labels, { pool: 'a' });
});

test('the retired shared NODEKEEPER_ names are refused with a hint naming NODEKEEPER_AGENT_, whatever the flags say', () => {
  const cfg = file('server: https://c:1\n');
  for (const [old, value] of [['NODEKEEPER_CONFIG', cfg], ['NODEKEEPER_SERVER', 'https://c:2'], ['NODEKEEPER_TOKEN', 'an-nkctl-admin-token'], ['NODEKEEPER_LOG_LEVEL', 'debug']] as const) {
    assert.throws(() => loadConfig(['--config', cfg, '--server', 'https://c:3'], { [old]: value }), (err: unknown) => {
      assert.ok(err instanceof AppError);
      assert.equal(err.code, 'NK_CONFIG_ENV_RETIRED');
      assert.match(err.message, new RegExp(`^${old} is no longer read: nodekeeper-agent reads ${old.replace('NODEKEEPER_', 'NODEKEEPER_AGENT_')} instead`));
      assert.ok(!err.message.includes(value), 'the value (maybe a token) is not echoed');
      return true;
    }, old);
  }
  assert.throws(() => loadConfig(SERVER, { NODEKEEPER_CONFIG: '' }), /NODEKEEPER_CONFIG is no longer read.*NKCTL_CONFIG/);
  // --help still answers, and another program's variables are not the agent's business.
  assert.equal(loadConfig(['--help'], { NODEKEEPER_CONFIG: cfg }).help, true);
  const { config } = loadConfig(SERVER, { NKCTL_CONFIG: '/nonexistent/nkctl.yaml', NKCTL_TOKEN: 'x', NODEKEEPER_COORDINATOR_CONFIG: '/nonexistent/c.yaml', NODEKEEPER_COORDINATOR_PORT: '1' });
  assert.equal(config.token, null);
});

test('repeatable options: flags repeat, env splits on commas, files give lists or mappings', () => {
  const flags = loadConfig([...SERVER, '--label', 'pool=a', '--label', 'example.com/tier=', '--cni-bin-dir', '/a', '--cni-bin-dir', '/b'], {});
  assert.deepEqual(flags.config.labels, { pool: 'a', 'example.com/tier': '' });
  assert.deepEqual(flags.config.probes.cni.binDirs, ['/a', '/b']);
  const env = loadConfig(SERVER, { NODEKEEPER_AGENT_LABEL: 'pool=b,zone=z1', NODEKEEPER_AGENT_CNI_BIN_DIR: '/x, /y' });
  assert.deepEqual(env.config.labels, { pool: 'b', zone: 'z1' });
  assert.deepEqual(env.config.probes.cni.binDirs, ['/x', '/y']);
  const fromFile = loadConfig(['--config', file('cniBinDir: [/p, /q]\nlabel: [a=1, b=2]\n'), ...SERVER], {});
  assert.deepEqual(fromFile.config.probes.cni.binDirs, ['/p', '/q']);
  assert.deepEqual(fromFile.config.labels, { a: '1', b: '2' });
});

test('values are normalised: trailing slashes, CA hash case, token file contents', () => {
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, '  abcdef.0123456789abcdef\n');
  const { config } = loadConfig(
    ['--server', 'https://c:1//', '--discovery-ca-hash', HASH.toUpperCase().replace('SHA256', 'sha256'), '--token-file', tokenFile],
    {},
  );
  assert.equal(config.server, 'https://c:1');
  assert.equal(config.discoveryCaHash, HASH);
  assert.equal(config.token, 'abcdef.0123456789abcdef');
  // An explicit token wins over the file.
  assert.equal(loadConfig([...SERVER, '--token', 't1', '--token-file', tokenFile], {}).config.token, 't1');
});

test('plain http needs --insecure (flag, env or file)', () => {
  refused(['--server', 'http://c:1'], {}, /server .*plain http.*--insecure/);
  assert.equal(loadConfig(['--server', 'http://c:1', '--insecure'], {}).config.insecure, true);
  assert.equal(loadConfig(['--server', 'http://c:1'], { NODEKEEPER_AGENT_INSECURE: 'true' }).config.insecure, true);
  assert.equal(loadConfig(['--server', 'http://c:1'], { NODEKEEPER_AGENT_INSECURE: '1' }).config.insecure, true);
  assert.equal(loadConfig(['--config', file('server: http://c:1\ninsecure: true\n')], {}).config.insecure, true);
  assert.equal(loadConfig(SERVER, { NODEKEEPER_AGENT_INSECURE: 'false' }).config.insecure, false);
});

test('an unreadable insecure value is refused, not taken as false', () => {
  refused(SERVER, { NODEKEEPER_AGENT_INSECURE: 'yes' }, /insecure/);
  refused(['--config', file('server: https://c:1\ninsecure: 3\n')], {}, /insecure/);
});

test('unknown options are refused: flags, file keys, positionals', () => {
  refused([...SERVER, '--bogus'], {}, /bogus/);
  refused([...SERVER, 'stray'], {}, /stray/);
  refused(['--config', file('server: https://c:1\nbogus: 1\n')], {}, /unknown option "bogus"/);
  refused(['--config', file('server: https://c:1\nhelp: true\n')], {}, /unknown option "help"/);
  refused(['--config', file('server: https://c:1\nconfig: other.yaml\n')], {}, /unknown option "config"/);
});

test('bad config files are refused and say which file', () => {
  refused(['--config', join(dir, 'missing.yaml')], {}, /cannot read config file .*missing\.yaml/);
  refused(['--config', file('server: [unclosed\n')], {}, /cannot read config file/);
  refused(['--config', file('- a\n- b\n')], {}, /must be a YAML mapping/);
  refused(['--config', file('just a string\n')], {}, /must be a YAML mapping/);
  // An empty file is an empty mapping: only the server is then missing.
  refused(['--config', file('')], {}, /server/);
});

test('every bad value is refused with a message naming its option', () => {
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [[], {}, /server/],
    [['--server', 'not a url'], {}, /server "not a url" is not a URL/],
    [['--server', 'ftp://c:1'], {}, /server must be an https:\/\/ URL/],
    [['--config', file('server: 42\n')], {}, /server must be a non-empty string/],
    [[...SERVER, '--token', ' '], {}, /token must be/],
    [[...SERVER, '--token-file', join(dir, 'nope')], {}, /token file/],
    [[...SERVER, '--discovery-ca-hash', 'sha256:abc'], {}, /discovery CA hash/],
    [[...SERVER, '--discovery-ca-hash', `md5:${'ab'.repeat(32)}`], {}, /discovery CA hash/],
    [[...SERVER, '--discovery-ca-hash', `sha256:${'zz'.repeat(32)}`], {}, /discovery CA hash/],
    [[...SERVER, '--discovery-ca-hash', `${HASH}00`], {}, /discovery CA hash/],
    [[...SERVER, '--log-level', 'loud'], {}, /log level/],
    [[...SERVER, '--probe-interval', '99'], {}, /probe interval/],
    [[...SERVER, '--probe-interval', '1.5e3x'], {}, /probe interval/],
    [SERVER, { NODEKEEPER_AGENT_PROBE_INTERVAL: '3600001' }, /probe interval/],
    [[...SERVER, '--host-root', 'relative/dir'], {}, /host root/],
    [[...SERVER, '--hostname', ''], {}, /hostname/],
    [[...SERVER, '--state-dir', '  '], {}, /stateDir/],
    [[...SERVER, '--runtime-socket', ''], {}, /runtimeSocket/],
    [['--config', file('server: https://c:1\ncniBinDir: 7\n')], {}, /cniBinDir must be a list of strings/],
    [['--config', file('server: https://c:1\nzone: [a]\n')], {}, /zone/],
    [[...SERVER, '--reboot-sentinel', 'var/run/reboot-required'], {}, /reboot sentinel "var\/run\/reboot-required" must be an absolute host path/],
    [[...SERVER, '--reboot-sentinel', '/var/../etc/shadow'], {}, /reboot sentinel .* without \.\./],
    [[...SERVER, '--reboot-check-command', 'bin/needs-restarting -r'], {}, /reboot check command "bin\/needs-restarting" must be a command name or an absolute path/],
    [[...SERVER, '--reboot-check-command', ' '], {}, /rebootCheckCommand must be a non-empty string/],
  ];
  for (const [argv, env, names] of cases) refused(argv, env, names);
});

test('reboot facts: the Debian sentinel by default, no check command; both configurable by flag or env', () => {
  assert.equal(loadConfig(SERVER, {}).config.probes.host.rebootSentinel, '/var/run/reboot-required');
  assert.equal(loadConfig(SERVER, {}).config.probes.host.rebootCheckCommand, null);
  const c = loadConfig([...SERVER, '--reboot-sentinel', '/run/nk-reboot'], { NODEKEEPER_AGENT_REBOOT_CHECK_COMMAND: 'needs-restarting  -r' }).config;
  assert.equal(c.probes.host.rebootSentinel, '/run/nk-reboot');
  assert.deepEqual(c.probes.host.rebootCheckCommand, ['needs-restarting', '-r']);
});

test('labels follow the Kubernetes label syntax', () => {
  const ok = ['a=b', 'app.kubernetes.io/name=nodekeeper', 'x=', 'A_b-c.d=Z_9', `${'k'.repeat(63)}=${'v'.repeat(63)}`];
  for (const l of ok) assert.doesNotThrow(() => loadConfig([...SERVER, '--label', l], {}), l);
  const bad: Array<[string, RegExp]> = [
    ['novalue', /label "novalue" must be KEY=VALUE/],
    ['=v', /must be KEY=VALUE/],
    ['-a=b', /label key "-a"/],
    ['a-=b', /label key "a-"/],
    [`${'k'.repeat(64)}=v`, /label key/],
    ['Example.com/a=b', /label key/],
    ['/a=b', /label key/],
    ['a/b/c=d', /label key/],
    ['a=b c', /label "a" has an invalid value/],
    ['a=-b', /label "a" has an invalid value/],
    [`a=${'v'.repeat(64)}`, /label "a" has an invalid value/],
    // The prefix is a DNS subdomain: at most 253 characters.
    [`${'p'.repeat(254)}/a=b`, /label key/],
  ];
  for (const [l, names] of bad) refused([...SERVER, `--label=${l}`], {}, names);
  refused(['--config', file('server: https://c:1\nlabel:\n  tier: 1\n')], {}, /label "tier" has an invalid value 1/);
  refused(['--config', file('server: https://c:1\nlabel: 5\n')], {}, /label must be a list of strings/);
});

test('labels the wire protocol would refuse are refused at start-up', () => {
  // Too many labels, or a key longer than the protocol allows, would make every hello
  // invalid: the agent would never connect. Better to say so at once.
  const many = Array.from({ length: MAX_LABELS + 1 }, (_, i) => `l${i}=v`).join(',');
  refused(SERVER, { NODEKEEPER_AGENT_LABEL: many }, /labels/);
  const longKey = `${'p'.repeat(MAX_NAME - 2)}/ab=v`;
  refused([...SERVER, '--label', longKey], {}, /label key/);
});

test('command retention: 14 days by default; s/m/h/d durations from 1s to 365d', () => {
  const base = ['--server', 'https://c:7443', '--discovery-ca-hash', `sha256:${'a'.repeat(64)}`];
  assert.equal(loadConfig(base, {}).config.commandRetentionMs, 14 * 86_400_000);
  assert.equal(loadConfig([...base, '--command-retention', '36h'], {}).config.commandRetentionMs, 36 * 3_600_000);
  assert.equal(loadConfig([...base, '--command-retention', '2d'], {}).config.commandRetentionMs, 2 * 86_400_000);
  for (const bad of ['0s', '14', '400d', 'x']) assert.throws(() => loadConfig([...base, '--command-retention', bad], {}), { code: 'NK_CONFIG_INVALID' });
});

test('install allow-list: more paths and services by flag, env or file; bad entries refused; downgrades off by default', () => {
  const d = loadConfig(SERVER, {}).config;
  assert.deepEqual([d.allowInstallPaths, d.allowInstallServices, d.allowDowngrade], [[], [], false]);
  const flags = loadConfig([...SERVER, '--allow-install-path', '/usr/local/bin/crictl', '--allow-install-path', '/opt/tools/', '--allow-install-service', 'crio.service', '--allow-downgrade'], {}).config;
  assert.deepEqual(flags.allowInstallPaths, ['/usr/local/bin/crictl', '/opt/tools/']);
  assert.deepEqual(flags.allowInstallServices, ['crio.service']);
  assert.equal(flags.allowDowngrade, true);
  assert.deepEqual(loadConfig(SERVER, { NODEKEEPER_AGENT_ALLOW_INSTALL_PATH: '/a/b,/c/' }).config.allowInstallPaths, ['/a/b', '/c/']);
  assert.deepEqual(loadConfig(['--config', file('allowInstallService: [x.service]\n'), ...SERVER], {}).config.allowInstallServices, ['x.service']);
  refused([...SERVER, '--allow-install-path', '/'], {}, /allow install path "\/"/);
  refused([...SERVER, '--allow-install-path', '/etc/../root/x'], {}, /allow install path/);
  refused([...SERVER, '--allow-install-path', 'relative/x'], {}, /allow install path/);
  refused([...SERVER, '--allow-install-service', 'reboot.target'], {}, /allow install service "reboot.target"/);
});
