/**
 * Each program reads its own environment (issue 11, item 5): the coordinator
 * NODEKEEPER_COORDINATOR_*, the agent NODEKEEPER_AGENT_*, nkctl NKCTL_*. The real
 * binaries, started as a user's shell starts them: a coordinator in a shell where the
 * README's `export NKCTL_CONFIG=...` was run starts fine; the old shared
 * NODEKEEPER_CONFIG is refused by each with a hint naming its own variable, before it
 * creates or sends anything.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { makeHostRoot } from './harness/host-root.ts';
import { BIN, createToken, listeningLine, nkctl, spawnLogged, waitFor, type CoordinatorProc, type Proc } from './harness/processes.ts';

let dir: string;
let coord: CoordinatorProc | undefined;
let agent: Proc | undefined;

/** Runs a program to its exit; its stderr is in the log. */
async function exitOf(file: string, args: readonly string[], env: NodeJS.ProcessEnv, log: string): Promise<{ code: number | string; stderr: string }> {
  const p = spawnLogged(process.execPath, [file, ...args], log, { env });
  const code = await p.exited;
  await new Promise((r) => setTimeout(r, 50)); // let the log stream flush
  return { code, stderr: p.log() };
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'nk-config-env-'));
});

after(async () => {
  await agent?.stop();
  await coord?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('each program its own variables', { timeout: 120_000 }, () => {
  test('a coordinator started in a shell with NKCTL_CONFIG exported reads NODEKEEPER_COORDINATOR_CONFIG and starts', async () => {
    const dataDir = path.join(dir, 'coordinator');
    const own = path.join(dir, 'coordinator.yaml');
    await writeFile(own, `dataDir: ${dataDir}\nhost: 127.0.0.1\nport: 0\nheartbeatInterval: 1000\n`);
    // What the README and `scripts/demo --keep` have the user export: nkctl's file, whose keys the coordinator does not know.
    const nkctlYaml = path.join(dir, 'someone-elses-nkctl.yaml');
    await writeFile(nkctlYaml, 'server: https://127.0.0.1:1\ntoken: t\n');
    const p = spawnLogged(process.execPath, [BIN.coordinator], path.join(dir, 'coordinator.log'), {
      env: { NODEKEEPER_COORDINATOR_CONFIG: own, NKCTL_CONFIG: nkctlYaml, NKCTL_SERVER: 'https://127.0.0.1:1', NODEKEEPER_AGENT_CONFIG: nkctlYaml },
    });
    const line = await listeningLine(p);
    coord = { ...p, url: line.listening, port: line.port, caHash: line.caHash, dataDir, nkctlConfig: path.join(dataDir, 'nkctl.yaml') };
    assert.ok(existsSync(coord.nkctlConfig), 'the data dir came from its own config file');
  });

  test('nkctl reads NKCTL_CONFIG and refuses NODEKEEPER_CONFIG, naming NKCTL_CONFIG, sending nothing', async () => {
    assert.ok(coord);
    const ok = await nkctl(coord.nkctlConfig, ['get', 'machines', '-o', 'name']);
    assert.equal(ok.code, 0, ok.stderr);
    const old = await nkctl(coord.nkctlConfig, ['get', 'machines'], { NKCTL_CONFIG: undefined, NODEKEEPER_CONFIG: coord.nkctlConfig });
    assert.equal(old.code, 1, old.stderr);
    assert.equal(old.stdout, '');
    assert.match(old.stderr, /^error: NODEKEEPER_CONFIG is no longer read: nkctl reads NKCTL_CONFIG instead.* \(NK_CLI_ENV_RETIRED\)\n$/);
  });

  test('the agent reads NODEKEEPER_AGENT_CONFIG: it enrolls with what the file says', async () => {
    assert.ok(coord);
    const { token, caCertHash } = await createToken(coord.nkctlConfig, 1);
    const { root } = await makeHostRoot(path.join(dir, 'node-env'), { machineId: 'e'.repeat(32), hostname: 'node-env' });
    const own = path.join(dir, 'agent.yaml');
    await writeFile(own, [`server: ${coord.url}`, `token: ${token}`, `discoveryCaHash: "${caCertHash}"`, `stateDir: ${path.join(dir, 'agent-state')}`, `hostRoot: ${root}`, 'cniBinDir: [/usr/lib/cni]', ''].join('\n'));
    agent = spawnLogged(process.execPath, [BIN.agent], path.join(dir, 'agent.log'), { env: { NODEKEEPER_AGENT_CONFIG: own, NKCTL_CONFIG: coord.nkctlConfig } });
    await waitFor('node-env enrolled', async () => (await nkctl(coord!.nkctlConfig, ['get', 'machines', '-o', 'name'])).stdout.includes('node-env'), 30_000, 250);
  });

  test('the agent and the coordinator refuse NODEKEEPER_CONFIG, naming their own variable, before creating anything', async () => {
    assert.ok(coord);
    const stateDir = path.join(dir, 'never-agent');
    const a = await exitOf(BIN.agent, ['--server', coord.url, '--state-dir', stateDir], { NODEKEEPER_CONFIG: coord.nkctlConfig }, path.join(dir, 'refused-agent.log'));
    assert.equal(a.code, 2, a.stderr);
    assert.match(a.stderr, /nodekeeper-agent: NODEKEEPER_CONFIG is no longer read: nodekeeper-agent reads NODEKEEPER_AGENT_CONFIG instead.*\(NK_CONFIG_ENV_RETIRED\)/);
    assert.equal(existsSync(stateDir), false);

    const dataDir = path.join(dir, 'never-coordinator');
    const c = await exitOf(BIN.coordinator, ['--data-dir', dataDir, '--port', '0'], { NODEKEEPER_CONFIG: coord.nkctlConfig }, path.join(dir, 'refused-coordinator.log'));
    assert.equal(c.code, 2, c.stderr);
    assert.match(c.stderr, /nodekeeper-coordinator: NODEKEEPER_CONFIG is no longer read: nodekeeper-coordinator reads NODEKEEPER_COORDINATOR_CONFIG instead.*\(NK_CONFIG_ENV_RETIRED\)/);
    assert.equal(existsSync(dataDir), false);

    // An old per-flag name too: the message names the new one.
    const port = await exitOf(BIN.coordinator, ['--data-dir', dataDir], { NODEKEEPER_PORT: '0' }, path.join(dir, 'refused-port.log'));
    assert.equal(port.code, 2, port.stderr);
    assert.match(port.stderr, /NODEKEEPER_PORT is no longer read: nodekeeper-coordinator reads NODEKEEPER_COORDINATOR_PORT instead/);
    assert.equal(existsSync(dataDir), false);
  });
});
