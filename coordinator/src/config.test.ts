/**
 * The coordinator's configuration: flags over env over file over defaults, and every
 * bad value refused as NK_CONFIG_INVALID with a message that names the option.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError } from '@nodekeeper/common';
import { certificateNames, defaults, loadConfig, paths } from './config.ts';

const dir = mkdtempSync(join(tmpdir(), 'nk-coordinator-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
/** Writes a config file and returns its path. */
function file(text: string): string {
  const p = join(dir, `config-${files++}.yaml`);
  writeFileSync(p, text);
  return p;
}

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

test('no options at all gives the defaults, frozen', () => {
  const { config, help } = loadConfig([], {});
  assert.equal(help, false);
  assert.deepEqual(config, defaults);
  assert.ok(Object.isFrozen(config));
  assert.equal(config.insecure, false, 'TLS unless asked otherwise');
  assert.equal(loadConfig(['--help'], {}).help, true);
});

test('precedence: flags over env over file over defaults', () => {
  const cfg = file('port: 1000\nhost: 127.0.0.2\ndataDir: /file/data\nheartbeatInterval: 2000\n');
  const { config } = loadConfig(['--config', cfg, '--port', '3000'], { NODEKEEPER_COORDINATOR_PORT: '2000', NODEKEEPER_COORDINATOR_HOST: '127.0.0.3' });
  assert.equal(config.port, 3000, 'flag beats env and file');
  assert.equal(config.host, '127.0.0.3', 'env beats file');
  assert.equal(config.dataDir, '/file/data', 'file beats default');
  assert.equal(config.heartbeatIntervalMs, 2000);
  assert.equal(config.livenessGraceMs, defaults.livenessGraceMs, 'default when nobody says');
  const viaEnv = loadConfig([], { NODEKEEPER_COORDINATOR_CONFIG: cfg, NODEKEEPER_COORDINATOR_PORT: '2000' });
  assert.equal(viaEnv.config.port, 2000);
  assert.equal(viaEnv.config.dataDir, '/file/data');
});

test('the retired shared NODEKEEPER_ names are refused with a hint naming NODEKEEPER_COORDINATOR_', () => {
  const nkctlYaml = join(dir, 'nkctl-like.yaml');
  writeFileSync(nkctlYaml, 'server: https://127.0.0.1:8443\ntoken: adm\n');
  for (const old of ['NODEKEEPER_CONFIG', 'NODEKEEPER_PORT', 'NODEKEEPER_DATA_DIR', 'NODEKEEPER_INSECURE']) {
    assert.throws(() => loadConfig(['--port', '0'], { [old]: nkctlYaml }), (err: unknown) => {
      assert.ok(err instanceof AppError);
      assert.equal(err.code, 'NK_CONFIG_ENV_RETIRED');
      assert.match(err.message, new RegExp(`^${old} is no longer read: nodekeeper-coordinator reads ${old.replace('NODEKEEPER_', 'NODEKEEPER_COORDINATOR_')} instead`));
      return true;
    }, old);
  }
  assert.throws(() => loadConfig([], { NODEKEEPER_CONFIG: nkctlYaml }), /NODEKEEPER_COORDINATOR_CONFIG, NKCTL_CONFIG/);
  // nkctl's variables (the shell the README sets up) and the agent's are not the coordinator's business.
  const { config } = loadConfig([], { NKCTL_CONFIG: nkctlYaml, NKCTL_SERVER: 'https://x:1', NODEKEEPER_AGENT_CONFIG: nkctlYaml, NODEKEEPER_SERVER: 'https://old-nkctl:1' });
  assert.equal(config.port, defaults.port);
});

test('numbers come from flags, env strings or YAML numbers; port 0 picks a free one', () => {
  assert.equal(loadConfig(['--port', '0'], {}).config.port, 0);
  assert.equal(loadConfig([], { NODEKEEPER_COORDINATOR_FLUSH_INTERVAL: ' 250 ' }).config.flushIntervalMs, 250);
  assert.equal(loadConfig(['--config', file('livenessRecover: 0\n')], {}).config.livenessRecoverMs, 0);
  assert.equal(loadConfig([], {}).config.reconnectBackoffCapMs, 30_000, "the agent's default cap");
  assert.equal(loadConfig(['--config', file('reconnectBackoffCap: 4000\n')], {}).config.reconnectBackoffCapMs, 4000);
  assert.equal(loadConfig(['--reconnect-backoff-cap', '0'], {}).config.reconnectBackoffCapMs, 0);
  assert.equal(loadConfig([], {}).config.api.watchHistoryBytes, 16 * 1024 * 1024);
  assert.equal(loadConfig(['--config', file('watchHistoryBytes: 1048576\n')], {}).config.api.watchHistoryBytes, 1_048_576);
  refused(['--watch-history-bytes', '1000'], {}, /watchHistoryBytes must be an integer from 65536/);
  refused(['--watch-history-bytes', '1e9x'], {}, /watchHistoryBytes/);
});

test('insecure accepts true/false/1/0 from any source and refuses anything else', () => {
  assert.equal(loadConfig(['--insecure'], {}).config.insecure, true);
  assert.equal(loadConfig([], { NODEKEEPER_COORDINATOR_INSECURE: '1' }).config.insecure, true);
  assert.equal(loadConfig([], { NODEKEEPER_COORDINATOR_INSECURE: 'false' }).config.insecure, false);
  assert.equal(loadConfig(['--config', file('insecure: true\n')], {}).config.insecure, true);
  refused([], { NODEKEEPER_COORDINATOR_INSECURE: 'yes' }, /insecure must be true or false/);
  refused(['--config', file('insecure: 2\n')], {}, /insecure must be true or false/);
});

test('TLS files go together; names come from flags, env or file', () => {
  const { config } = loadConfig(['--tls-cert', '/c.pem', '--tls-key', '/k.pem', '--tls-ca', '/ca.pem', '--tls-name', 'a.example', '--tls-name', '10.0.0.9'], {});
  assert.deepEqual(config.tls, { certFile: '/c.pem', keyFile: '/k.pem', caFile: '/ca.pem' });
  assert.deepEqual(config.tlsNames, ['a.example', '10.0.0.9']);
  assert.deepEqual(loadConfig([], { NODEKEEPER_COORDINATOR_TLS_NAME: 'x.example,y.example' }).config.tlsNames, ['x.example', 'y.example']);
  assert.deepEqual(loadConfig(['--config', file('tlsName: [f.example]\n')], {}).config.tlsNames, ['f.example']);
  refused(['--tls-cert', '/c.pem'], {}, /--tls-cert, --tls-key and --tls-ca go together/);
  refused(['--tls-cert', '/c.pem', '--tls-key', '/k.pem'], {}, /--tls-ca/);
  refused(['--config', file('tlsName: one.example\n')], {}, /tls names must be a list of strings/);
  refused(['--config', file('tlsName: [1, 2]\n')], {}, /tls names/);
  refused(['--tls-cert', '', '--tls-key', '/k', '--tls-ca', '/ca'], {}, /tlsCert/);
});

test('the advertised URL must be a URL of the scheme the coordinator serves', () => {
  assert.equal(loadConfig(['--advertise-url', 'https://nk.example:7443'], {}).config.advertiseUrl, 'https://nk.example:7443');
  assert.equal(loadConfig(['--insecure', '--advertise-url', 'http://127.0.0.1:8080'], {}).config.advertiseUrl, 'http://127.0.0.1:8080');
  refused(['--advertise-url', 'nk.example:7443'], {}, /advertise URL/);
  refused(['--advertise-url', 'not a url'], {}, /advertise URL/);
  // Agents would speak plain ws to a TLS port, or TLS to a plain one.
  refused(['--advertise-url', 'http://nk.example:7443'], {}, /advertise URL .*https/);
  refused(['--insecure', '--advertise-url', 'https://nk.example:7443'], {}, /advertise URL .*http:/);
});

test('unknown options are refused: flags, file keys, positionals', () => {
  refused(['--bogus'], {}, /bogus/);
  refused(['stray'], {}, /stray/);
  refused(['--config', file('bogus: 1\n')], {}, /unknown option "bogus"/);
  refused(['--config', file('heartbeat-interval: 1000\n')], {}, /unknown option "heartbeat-interval"/);
  refused(['--config', file('config: other.yaml\n')], {}, /unknown option "config"/);
  refused(['--config', file('help: true\n')], {}, /unknown option "help"/);
});

test('bad config files are refused and say which file', () => {
  refused(['--config', join(dir, 'missing.yaml')], {}, /cannot read config file .*missing\.yaml/);
  refused(['--config', file('port: [unclosed\n')], {}, /cannot read config file/);
  refused(['--config', file('- a\n')], {}, /must be a YAML mapping/);
  refused(['--config', file('42\n')], {}, /must be a YAML mapping/);
  assert.deepEqual(loadConfig(['--config', file('')], {}).config, defaults, 'an empty file changes nothing');
});

test('every bad value is refused with a message naming its option', () => {
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [['--port', 'abc'], {}, /port must be an integer from 0 to 65535, got "abc"/],
    [['--port', '65536'], {}, /port must be/],
    [['--port', '-1'], {}, /port/],
    [['--port', '80.5'], {}, /port/],
    [['--config', file('port: 80.5\n')], {}, /port/],
    [['--config', file('port: true\n')], {}, /port/],
    [[], { NODEKEEPER_COORDINATOR_PORT: '' }, /port/],
    [['--host', ' '], {}, /host must be a non-empty string/],
    [['--data-dir', ''], {}, /dataDir/],
    [['--heartbeat-interval', '99'], {}, /heartbeatInterval must be an integer from 100/],
    [['--liveness-grace', '1e5'], {}, /livenessGrace/],
    [['--liveness-recover', '86400001'], {}, /livenessRecover/],
    [['--reconnect-backoff-cap', 'soon'], {}, /reconnectBackoffCap must be an integer from 0/],
    [['--config', file('reconnectBackoffCap: 3600001\n')], {}, /reconnectBackoffCap/],
    [['--flush-interval', '9'], {}, /flushInterval/],
    [['--max-pending-upgrades', '0'], {}, /maxPendingUpgrades must be an integer from 1/],
    [['--max-upgrades-per-second', 'fast'], {}, /maxUpgradesPerSecond must be an integer/],
    [['--log-level', 'chatty'], {}, /log level must be one of/],
    [['--config', file('logLevel: 3\n')], {}, /log level/],
  ];
  for (const [argv, env, names] of cases) refused(argv, env, names);
});

test('admission control on the upgrade path: defaults, flags and env', () => {
  assert.deepEqual(loadConfig([], {}).config.admission, { maxPending: 500, perSecond: 1000, maxLoopDelayMs: 500, maxLoopUtilization: 0.9 });
  const { config } = loadConfig(['--max-pending-upgrades', '50'], { NODEKEEPER_COORDINATOR_MAX_UPGRADES_PER_SECOND: '200' });
  assert.deepEqual(config.admission, { maxPending: 50, perSecond: 200, maxLoopDelayMs: 500, maxLoopUtilization: 0.9 });
});

test('the liveness grace must exceed the heartbeat interval', () => {
  refused(['--heartbeat-interval', '5000', '--liveness-grace', '5000'], {}, /liveness grace \(5000 ms\) must exceed the heartbeat interval \(5000 ms\)/);
  assert.equal(loadConfig(['--heartbeat-interval', '5000', '--liveness-grace', '5001'], {}).config.livenessGraceMs, 5001);
});

test('certificate names and state paths follow the config', () => {
  const { config } = loadConfig(['--host', '10.1.2.3', '--tls-name', 'nk.example', '--data-dir', '/d'], {});
  const names = certificateNames(config);
  for (const n of ['localhost', '127.0.0.1', '::1', 'nk.example', '10.1.2.3']) assert.ok(names.includes(n), n);
  assert.ok(!certificateNames(defaults).includes('0.0.0.0'), 'a wildcard listen address is not a name');
  assert.equal(paths(config).db, '/d/state.db');
  assert.equal(paths(config).adminCredential, '/d/admin.credential');
});

test('host registration options go together and are checked before anything is sent', () => {
  const full = ['--host-kubeconfig', '/h.yaml', '--host-token', 'abcdef.0123456789abcdef', '--host-ca-hash', `sha256:${'a'.repeat(64)}`, '--cluster-name', 'alpha'];
  const { config } = loadConfig(full, {});
  assert.deepEqual(config.hostRegistration, { kubeconfig: '/h.yaml', token: 'abcdef.0123456789abcdef', caHash: `sha256:${'a'.repeat(64)}`, clusterName: 'alpha' });
  refused(full.slice(0, 4), {}, /--host-kubeconfig, --host-token, --host-ca-hash and --cluster-name go together/);
  refused([...full.slice(0, 2), '--host-token', 'nope', ...full.slice(4)], {}, /--host-token must look like/);
  refused([...full.slice(0, 4), '--host-ca-hash', 'md5:x', ...full.slice(6)], {}, /--host-ca-hash must be sha256/);
  refused(['--host-token-ttl', '60'], {}, /hostTokenTtl must be an integer from 600/);
  assert.equal(loadConfig([], {}).config.hostSyncIntervalMs, 10_000);
});

test('--host-mirror: only machines that need an eye by default, all on request, nothing else', () => {
  assert.equal(loadConfig([], {}).config.hostMirror, 'unhealthy');
  assert.equal(loadConfig(['--host-mirror', 'all'], {}).config.hostMirror, 'all');
  refused(['--host-mirror', 'everything'], {}, /hostMirror must be one of unhealthy, all, got "everything"/);
  assert.equal(loadConfig([], {}).config.hostMirrorLingerMs, 300_000);
  assert.equal(loadConfig(['--host-mirror-linger', '1000'], {}).config.hostMirrorLingerMs, 1000);
  refused(['--host-mirror-linger', '5m'], {}, /hostMirrorLinger must be an integer/);
});

test('packages drained before a rollout install: a list, or none', () => {
  assert.deepEqual(loadConfig([], {}).config.drainBeforeInstall, ['kubelet', 'containerd']);
  assert.deepEqual(loadConfig(['--drain-before-install', 'kubelet'], {}).config.drainBeforeInstall, ['kubelet']);
  assert.deepEqual(loadConfig(['--drain-before-install', 'none'], {}).config.drainBeforeInstall, []);
  refused(['--drain-before-install', 'Kubelet;rm'], {}, /drainBeforeInstall must be package names/);
});

test('HTTP limits: defaults, flags, and a request timeout shorter than the header timeout refused', () => {
  assert.deepEqual(loadConfig([], {}).config.http, { headersTimeoutMs: 10_000, requestTimeoutMs: 900_000, keepAliveTimeoutMs: 65_000, maxConnections: 4096 });
  const c = loadConfig(['--http-headers-timeout', '2000', '--http-request-timeout', '5000', '--http-keep-alive-timeout', '1000', '--http-max-connections', '10'], {}).config.http;
  assert.deepEqual(c, { headersTimeoutMs: 2000, requestTimeoutMs: 5000, keepAliveTimeoutMs: 1000, maxConnections: 10 });
  assert.equal(loadConfig([], { NODEKEEPER_COORDINATOR_HTTP_MAX_CONNECTIONS: '7' }).config.http.maxConnections, 7);
  assert.throws(() => loadConfig(['--http-headers-timeout', '20000', '--http-request-timeout', '10000'], {}), { code: 'NK_CONFIG_INVALID' });
  assert.throws(() => loadConfig(['--http-max-connections', '0'], {}), { code: 'NK_CONFIG_INVALID' });
});

test('retention: documented defaults, flags in seconds, 0 keeps forever', () => {
  const r = loadConfig([], {}).config.retention;
  assert.equal(r.eventsMaxAgeMs, 30 * 86_400_000);
  assert.equal(r.eventsMaxRows, 1_000_000);
  assert.equal(r.commandsMaxAgeMs, 14 * 86_400_000);
  assert.equal(r.tokensMaxAgeMs, 7 * 86_400_000);
  assert.equal(r.observationsMaxAgeMs, 14 * 86_400_000);
  assert.equal(r.intervalMs, 600_000);
  const c = loadConfig(['--retain-events', '0', '--retain-events-max', '10', '--retain-commands', '60', '--retain-tokens', '1', '--retain-observations', '3600', '--retention-interval', '500'], {}).config.retention;
  assert.deepEqual([c.eventsMaxAgeMs, c.eventsMaxRows, c.commandsMaxAgeMs, c.tokensMaxAgeMs, c.observationsMaxAgeMs, c.intervalMs], [0, 10, 60_000, 1000, 3_600_000, 500]);
  assert.throws(() => loadConfig(['--retain-events', '-1'], {}), { code: 'NK_CONFIG_INVALID' });
});

test('install allow-list: --allow-install-path and --allow-install-service repeat; bad entries are refused', () => {
  const { config } = loadConfig(['--allow-install-path', '/usr/local/bin/crictl', '--allow-install-path', '/opt/tools/', '--allow-install-service', 'crio.service'], {});
  assert.deepEqual(config.allowInstallPaths, ['/usr/local/bin/crictl', '/opt/tools/']);
  assert.deepEqual(config.allowInstallServices, ['crio.service']);
  assert.deepEqual(loadConfig([], { NODEKEEPER_COORDINATOR_ALLOW_INSTALL_PATH: '/a/b,/c/' }).config.allowInstallPaths, ['/a/b', '/c/']);
  refused(['--allow-install-path', '/'], {}, /allow install path "\/"/);
  refused(['--allow-install-path', '/etc/../x'], {}, /allow install path/);
  refused(['--allow-install-service', 'poweroff.target'], {}, /allow install service "poweroff.target"/);
});

test('--storm-max-unhealthy sets the storm guard floor; a bad value is refused', () => {
  const { config } = loadConfig(['--storm-max-unhealthy', '2'], {});
  assert.equal(config.remediation?.settings.maxUnhealthy.absolute, 2);
  assert.equal(config.remediation?.settings.maxUnhealthy.percent, 10);
  refused(['--storm-max-unhealthy', 'two'], {}, /storm max unhealthy/);
});

test('--machine-credential-ttl: 30 days by default, milliseconds from flag, env or file, bounded', () => {
  assert.equal(defaults.machineCredentialTtlMs, 30 * 86_400_000);
  assert.equal(loadConfig(['--machine-credential-ttl', '86400000'], {}).config.machineCredentialTtlMs, 86_400_000);
  assert.equal(loadConfig([], { NODEKEEPER_COORDINATOR_MACHINE_CREDENTIAL_TTL: '60000' }).config.machineCredentialTtlMs, 60_000);
  assert.equal(loadConfig(['--config', file('machineCredentialTtl: 120000\n')], {}).config.machineCredentialTtlMs, 120_000);
  // Below 10 s a credential could expire between its rotation and the agent's save.
  refused(['--machine-credential-ttl', '9999'], {}, /machine-credential-ttl|machineCredentialTtl/);
  refused(['--machine-credential-ttl', '30d'], {}, /machine-credential-ttl|machineCredentialTtl/);
  refused(['--machine-credential-ttl', String(4 * 366 * 86_400_000)], {}, /machine-credential-ttl|machineCredentialTtl/);
});

test('Node conditions: on by default, rate limit and writers from flags or env, bad values refused', () => {
  assert.deepEqual(loadConfig([], {}).config.nodeConditions, { enabled: true, minIntervalMs: 10_000, maxConcurrent: 8 });
  const c = loadConfig(['--node-conditions', 'false', '--node-condition-interval', '2500', '--node-condition-writers', '3'], {}).config.nodeConditions;
  assert.deepEqual(c, { enabled: false, minIntervalMs: 2500, maxConcurrent: 3 });
  assert.equal(loadConfig([], { NODEKEEPER_COORDINATOR_NODE_CONDITION_INTERVAL: '0' }).config.nodeConditions.minIntervalMs, 0);
  refused(['--node-conditions', 'maybe'], {}, /nodeConditions must be true or false/);
  refused(['--node-condition-writers', '0'], {}, /nodeConditionWriters must be an integer from 1 to 1000/);
  refused(['--node-condition-interval=-5'], {}, /nodeConditionInterval must be an integer/);
});

test('max-unavailable is parsed once into a count or a percent (budget/int-or-percent.ts); zero, over 100% and other shapes are refused', () => {
  assert.equal(defaults.maxUnavailable, '10%');
  assert.equal(loadConfig(['--max-unavailable', '3'], {}).config.maxUnavailable, 3);
  assert.equal(loadConfig(['--max-unavailable', '025%'], {}).config.maxUnavailable, '25%');
  assert.equal(loadConfig(['--config', file('maxUnavailable: 7\n')], {}).config.maxUnavailable, 7);
  for (const bad of ['0', '0%', '101%', '1.5', '-2', 'ten', '10 %']) refused([`--max-unavailable=${bad}`], {}, /maxUnavailable must be a positive count or a percentage from 1% to 100%/);
});

test('--tls-ticket-rotation: whole seconds from 5 to 302400; anything else is refused by name, never clamped', () => {
  assert.equal(loadConfig([], {}).config.tlsTicketRotationMs, 12 * 3_600_000);
  assert.equal(loadConfig(['--tls-ticket-rotation', '60'], {}).config.tlsTicketRotationMs, 60_000);
  refused(['--tls-ticket-rotation', '4'], {}, /tlsTicketRotation must be an integer/);
  refused(['--tls-ticket-rotation', '302401'], {}, /tlsTicketRotation must be an integer/);
  refused(['--tls-ticket-rotation', '12h'], {}, /tlsTicketRotation must be an integer/);
});

test('--gateway-workers: 0 (in-process) by default, up to 16; YAML gatewayWorkers; anything else is refused by name', () => {
  assert.equal(loadConfig([], {}).config.gatewayWorkers, 0);
  assert.equal(loadConfig(['--gateway-workers', '2'], {}).config.gatewayWorkers, 2);
  assert.equal(loadConfig(['--config', file('gatewayWorkers: 4\n')], {}).config.gatewayWorkers, 4);
  for (const bad of ['17', '-1', '1.5', 'two', '']) refused([`--gateway-workers=${bad}`], {}, /gatewayWorkers must be an integer from 0 to 16/);
});
