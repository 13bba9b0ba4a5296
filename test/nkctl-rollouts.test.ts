/**
 * The real nkctl (a separate process) for packages, artifacts, apply and rollouts,
 * against the real coordinator with three scripted agents that install what they are
 * sent (1.31.9 fails its health check and is switched back; 1.31.4 is held, so a
 * rollout of it stays in flight while the test pauses and aborts it).
 */
import { installStatement } from '@nodekeeper/protocol';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { builtinManifests } from '../coordinator/src/packages/manifests.ts';
import { waitFor } from './harness/processes.ts';
import { identity, startNkctlCoordinator, type NkctlCoordinator, type Run } from './harness/nkctl-coordinator.ts';
import type { ScriptedAgent } from './harness/scripted-agent.ts';

const ARGS = ['--flush-interval', '100', '--liveness-grace', '600000', '--control-plane-version', 'v1.32.1', '--max-unavailable', '3'];
const NAMES = ['node-1', 'node-2', 'node-3'];

let nc: NkctlCoordinator;
const agents: ScriptedAgent[] = [];
const pushed = new Map<string, { url: string; sha256: string; size: number }>();
/** Versions whose installs the agents keep back until `follow` lets them go. */
const holding = new Set<string>(['1.31.4']);

const run = (args: readonly string[], opts: { token?: string; stdin?: string } = {}) => nc.nk(args, opts);
const api = (pathname: string) => nc.api('GET', pathname).then((a) => a.json);
const rollout = (name: string) => api(`/v1/rollouts/${name}`);

function expectError(r: Run, exit: number, code: string, text?: string): void {
  assert.equal(r.code, exit, `exit code; stderr: ${r.stderr}`);
  const last = r.stderr.trimEnd().split('\n').at(-1) ?? '';
  assert.match(last, new RegExp(`^error: .+ \\(${code}\\)$`));
  if (text !== undefined) assert.ok(r.stderr.includes(text), `${r.stderr} lacks ${text}`);
}

/** What a write may change: rollouts, artifacts and the CPV, as the coordinator serves them. */
const state = async () => JSON.stringify([(await api('/v1/rollouts')).items.map((r: any) => [r.metadata.name, r.metadata.resourceVersion]), (await api('/v1/artifacts')).items.length, (await api('/v1/clusterpackageversion')).metadata.generation]);

/**
 * `rollout status NAME -w` while the rollout moves: its canary install is held until the
 * watch has printed its first state, then let go, so the watch sees the phases change.
 */
async function follow(name: string, version: string): Promise<Run> {
  await waitFor(`the canary install of ${version} sent`, () => agents.some((a) => a.heldCount() > 0), 30_000);
  const watch = nc.start(['rollout', 'status', name, '-w', '--interval', '100ms']);
  await waitFor('the watch printed its first state', () => watch.stdout().includes(`rollout/${name}: `), 30_000, 50);
  holding.delete(version);
  for (const a of agents) a.release();
  return watch.done;
}

function file(name: string, text: string | Buffer): string {
  const path = join(nc.dir, name);
  writeFileSync(path, text);
  return path;
}

/** A rollout document; `paused: true` keeps one made only to test apply from touching machines. */
const rolloutYaml = (name: string, version = '1.31.3', extra = '') => `apiVersion: nodekeeper.io/v1alpha1
kind: Rollout
metadata:
  name: ${name}
spec:
  packages: [{package: kubelet, version: "${version}"}]
  selector: {matchLabels: {role: worker}}
  strategy: {canary: {count: 1}, soakSeconds: 0, batches: [50, 100], maxUnavailable: 1, maxFailures: 1, onFailure: Pause}
${extra}`;

/** The artifact's bytes as the coordinator serves them. */
const download = (url: string) => new Promise<Buffer>((resolve, reject) => {
  https.get(url, { ca: nc.ca, headers: { Authorization: `Bearer ${nc.admin}` } }, (res) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`GET ${url}: ${res.statusCode}`))));
  }).on('error', reject);
});

before(async () => {
  nc = await startNkctlCoordinator('nkctl-rollouts-', ARGS);
  for (const [i, name] of NAMES.entries()) {
    const a = await nc.enroll(identity(name, i), { failVersions: ['1.31.9'] });
    a.answer = ((def) => (f) => (f.kind === 'package.install' && holding.has(String(f.params['version'])) ? 'hold' : def(f)))(a.answer);
    await a.connect();
    agents.push(a);
  }
  // The agents are scripted: an artifact only has to exist for a rollout to be made.
  for (const v of ['1.31.2', '1.31.3', '1.31.4', '1.31.9', '1.30.6']) {
    const r = await run(['artifact', 'push', file(`kubelet-${v}.tar.gz`, `kubelet ${v}\n`), '--package', 'kubelet', '--version', v, '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const a = JSON.parse(r.stdout);
    pushed.set(v, { url: a.url, sha256: a.sha256, size: a.size });
  }
  const cpv = { apiVersion: 'nodekeeper.io/v1alpha1', kind: 'ClusterPackageVersion', metadata: { name: 'cluster' }, spec: { packages: [{ name: 'kubelet', version: '1.31.2', artifact: pushed.get('1.31.2') }] } };
  assert.equal((await nc.api('PUT', '/v1/clusterpackageversion', cpv)).status, 201);
  await waitFor('three Ready machines', async () => (await api('/v1/machines')).items.filter((m: any) => m.status.phase === 'Ready').length === 3, 30_000);
});

after(async () => {
  for (const a of agents) a.close();
  await nc?.stop();
});

describe('nkctl get packages and clusterpackageversion', () => {
  it('get packages: one row per package against its desired version, as the coordinator counts', async () => {
    const r = await run(['get', 'packages']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^NAME +DESIRED +MACHINES +AT-DESIRED +HEALTHY +VERSIONS$/m);
    assert.match(r.stdout, /^kubelet +1\.31\.2 +3 +3\/3 +3\/3 +1\.31\.2=3$/m);
    const json = await run(['get', 'pkg', '-o', 'json']);
    assert.deepEqual(JSON.parse(json.stdout), await api('/v1/packages'));
  });

  it('get cpv -o yaml prints the object as the server has it; the table shows each package', async () => {
    const y = await run(['get', 'cpv', '-o', 'yaml']);
    assert.equal(y.code, 0, y.stderr);
    assert.deepEqual(parseYaml(y.stdout), await api('/v1/clusterpackageversion'));
    const t = await run(['get', 'clusterpackageversion']);
    const a = pushed.get('1.31.2')!;
    assert.match(t.stdout, /^PACKAGE +VERSION +SHA256 +SIZE +SIGNED +AT-DESIRED +URL$/m);
    assert.match(t.stdout, new RegExp(`^kubelet +1\\.31\\.2 +${a.sha256.slice(0, 12)} +15 B +no +3/3 +${a.url}$`, 'm'));
  });
});

describe('nkctl apply', () => {
  it('applies several documents in order, routed by kind; -f - reads stdin', async () => {
    const cpv = await api('/v1/clusterpackageversion');
    const generation = cpv.metadata.generation;
    delete cpv.status;
    const text = `${JSON.stringify(cpv)}\n---\n${rolloutYaml('apply-a', '1.31.3', '  paused: true\n')}---\n${rolloutYaml('apply-b', '1.31.3', '  paused: true\n')}`;
    const r = await run(['apply', '-f', file('multi.yaml', text)]);
    assert.equal(r.code, 0, r.stderr);
    // The CPV as the server has it: applying it is a no-op (unchanged, same generation).
    assert.equal(r.stdout, `clusterpackageversion/cluster unchanged (generation ${generation})\nrollout/apply-a created\nrollout/apply-b created\n`);
    assert.equal((await api('/v1/clusterpackageversion')).metadata.generation, generation);
    const made = (await api('/v1/rollouts')).items.map((x: any) => x.metadata.name);
    assert.deepEqual(made, ['apply-a', 'apply-b']);
    assert.equal((await rollout('apply-b')).spec.paused, true);

    const stdin = await run(['apply', '-f', '-'], { stdin: rolloutYaml('apply-stdin', '1.31.3', '  paused: true\n') });
    assert.deepEqual([stdin.code, stdin.stdout], [0, 'rollout/apply-stdin created\n'], stdin.stderr);
  });

  it('sends nothing when any document is bad, and says which', async () => {
    const before = await state();
    const text = `${rolloutYaml('never-1')}---\n${rolloutYaml('never-2')}---\napiVersion: nodekeeper.io/v1alpha1\nkind: Rolout\nmetadata: {name: x}\n`;
    expectError(await run(['apply', '-f', file('bad-kind.yaml', text)]), 1, 'NK_CLI_BAD_MANIFEST', 'bad-kind.yaml, document 3: kind "Rolout" is not one of');
    expectError(await run(['apply', '-f', file('bad-yaml.yaml', `${rolloutYaml('never-3')}---\nspec: {a: [\n`)]), 1, 'NK_CLI_BAD_MANIFEST', 'document 2: not valid YAML');
    expectError(await run(['apply', '-f', 'missing.yaml']), 1, 'NK_CLI_FILE_UNREADABLE', 'missing.yaml');
    assert.equal(await state(), before, 'nothing changed');
  });

  it('apply of an existing rollout is unchanged or configured; rollout create -f of an existing name is reported and exits non-zero', async () => {
    const paused = '  paused: true\n';
    const same = await run(['apply', '-f', file('again.yaml', rolloutYaml('apply-a', '1.31.3', paused))]);
    assert.deepEqual([same.code, same.stdout], [0, 'rollout/apply-a unchanged\n'], same.stderr);
    const changed = await run(['apply', '-f', file('again2.yaml', rolloutYaml('apply-a', '1.31.3', paused).replace('soakSeconds: 0', 'soakSeconds: 7'))]);
    assert.deepEqual([changed.code, changed.stdout], [0, 'rollout/apply-a configured\n'], changed.stderr);
    assert.equal((await rollout('apply-a')).spec.strategy.soakSeconds, 7);
    const r = await run(['rollout', 'create', '-f', file('again.yaml', rolloutYaml('apply-a', '1.31.3', paused))]);
    expectError(r, 5, 'NK_ROLLOUT_EXISTS', 'rollout/apply-a already exists and rollout create makes new rollouts only');
    assert.match(r.stderr, /nkctl rollout pause\|resume\|abort\|rollback apply-a/);
    const invalid = { apiVersion: 'nodekeeper.io/v1alpha1', kind: 'ClusterPackageVersion', spec: {} };
    expectError(await run(['apply', '-f', file('cpv-bad.json', JSON.stringify(invalid))]), 5, 'NK_CPV_INVALID', '/spec/packages');
    // Done with them: aborted, so they are finished and hold nothing.
    for (const n of ['apply-a', 'apply-b', 'apply-stdin']) assert.equal((await run(['rollout', 'abort', n])).code, 0);
  });
});

describe('nkctl artifact', () => {
  it('push streams exactly the file, signed over its install statement, and prints the CPV entry', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const key = file('signing.pem', privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    // Not a multiple of any buffer size, and random so a reordered chunk would show.
    const bytes = createHash('sha512').update('seed').digest();
    const content = Buffer.concat(Array.from({ length: 40_000 }, (_, i) => Buffer.concat([bytes, Buffer.from([i & 0xff])])));
    const path = file('kubelet-1.31.5.tar.gz', content);
    const r = await run(['artifact', 'push', path, '--package', 'kubelet', '--version', '1.31.5', '--sign', key]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '', 'no progress output when stderr is not a terminal');
    const digest = createHash('sha256').update(content).digest();
    const hex = digest.toString('hex');
    const stored = (await api('/v1/artifacts')).items.find((a: any) => a.sha256 === hex);
    assert.ok(stored !== undefined, 'the coordinator stored it under its digest');
    assert.deepEqual([stored.package, stored.version, stored.size], ['kubelet', '1.31.5', content.length]);
    assert.ok((await download(stored.url)).equals(content), 'the coordinator received the file byte for byte');
    // The statement with the built-in kubelet manifest (no --manifest given).
    const statement = installStatement({ package: 'kubelet', version: '1.31.5', artifact: { sha256: hex, size: content.length }, manifest: builtinManifests['kubelet']! });
    assert.ok(verify(null, Buffer.from(statement), createPublicKey(publicKey.export({ type: 'spki', format: 'pem' })), Buffer.from(stored.signature ?? '', 'base64')), 'signature verifies');
    assert.match(r.stdout, new RegExp(`^kubelet {2}1\\.31\\.5 {3}${hex.slice(0, 12)} {2}2\\.5 MiB {2}yes {5}\\d+s$`, 'm'));
    const entry = parseYaml(r.stdout.slice(r.stdout.indexOf('    - name:'))) as unknown[];
    assert.deepEqual(entry, [{ name: 'kubelet', version: '1.31.5', artifact: { url: stored.url, sha256: hex, size: content.length, signature: stored.signature } }]);

    const unsigned = await run(['artifact', 'push', file('kubelet-1.31.6.tar.gz', 'six\n'), '--package', 'kubelet', '--version', '1.31.6', '-o', 'json']);
    assert.equal(unsigned.code, 0, unsigned.stderr);
    assert.equal((JSON.parse(unsigned.stdout) as { signature: unknown }).signature, null);
  });

  it('refuses bad keys and files before sending; a read-only credential may not push', async () => {
    const before = await state();
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const small = file('small.bin', 'x'.repeat(100));
    expectError(await run(['artifact', 'push', small, '--package', 'kubelet', '--version', '1.31.7', '--sign', file('rsa.pem', rsa)]), 1, 'NK_CLI_BAD_KEY', 'is rsa, not ed25519');
    expectError(await run(['artifact', 'push', small, '--package', 'kubelet', '--version', '1.31.7', '--sign', file('junk.pem', 'junk')]), 1, 'NK_CLI_BAD_KEY', 'not a PEM private key');
    expectError(await run(['artifact', 'push', join(nc.dir, 'none.bin'), '--package', 'kubelet', '--version', '1.31.7']), 1, 'NK_CLI_FILE_UNREADABLE');
    expectError(await run(['artifact', 'push', small, '--version', '1.31.7']), 1, 'NK_CLI_USAGE', '--package');
    expectError(await run(['artifact', 'push', small, '--package', 'kubelet', '--version', '1.31.7'], { token: nc.readOnly }), 3, 'NK_AUTH_FORBIDDEN');
    assert.equal(await state(), before, 'nothing stored');
  });

  it('list shows what is stored', async () => {
    const r = await run(['artifact', 'list']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^PACKAGE {2}VERSION {2}SHA256 {8}SIZE {5}SIGNED {2}AGE$/m);
    const a = pushed.get('1.30.6')!;
    assert.match(r.stdout, new RegExp(`^kubelet {2}1\\.30\\.6 {3}${a.sha256.slice(0, 12)} {2}15 B {5}no {6}\\d+[smhd](?:\\d+[smh])?$`, 'm'));
    assert.equal(r.stdout.trimEnd().split('\n').length, 1 + (await api('/v1/artifacts')).items.length);
  });
});

describe('nkctl rollout', () => {
  it('the server refuses unknown versions and downgrades with its own codes', async () => {
    expectError(await run(['rollout', 'create', 'nope', '--package', 'kubelet=1.32.0']), 5, 'NK_ROLLOUT_UNKNOWN_PACKAGE', 'nkctl artifact push');
    expectError(await run(['rollout', 'create', 'down', '--package', 'kubelet=1.30.6']), 5, 'NK_ROLLOUT_DOWNGRADE');
    assert.equal((await run(['rollout', 'create', 'down', '--package', 'kubelet=1.30.6', '--allow-downgrade', '--soak', '0s'])).code, 0);
    await waitFor('the downgrade Completed', async () => (await rollout('down')).status.phase === 'Completed', 60_000, 200);
    assert.ok(agents.every((a) => a.versions['kubelet'] === '1.30.6'));
  });

  it('create with flags sends the spec they describe; -f sends the file; --dry-run sends nothing', async () => {
    holding.add('1.31.3');
    const r = await run(['rollout', 'create', 'web-kubelet', '--package', 'kubelet=1.31.3', '--selector', 'role=worker', '--canary', '1', '--soak', '0s', '--batches', '50,100', '--max-failures', '1']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'rollout/web-kubelet created\nFollow it with: nkctl rollout status web-kubelet -w\n');
    const made = await rollout('web-kubelet');
    assert.deepEqual(made.spec.packages, [{ package: 'kubelet', version: '1.31.3' }]);
    assert.deepEqual(made.spec.selector, { matchLabels: { role: 'worker' } });
    assert.deepEqual(
      [made.spec.strategy.canary, made.spec.strategy.soakSeconds, made.spec.strategy.batches, made.spec.strategy.maxUnavailable, made.spec.strategy.maxFailures, made.spec.strategy.onFailure],
      [{ count: 1 }, 0, [50, 100], 1, 1, 'Pause'],
    );
    const before = await state();
    const dry = await run(['rollout', 'create', 'dry', '--package', 'kubelet=1.31.3', '--dry-run']);
    assert.equal((parseYaml(dry.stdout) as { kind: string }).kind, 'Rollout');
    expectError(await run(['rollout', 'create', 'x', '-f', file('x.yaml', rolloutYaml('x'))]), 1, 'NK_CLI_USAGE', '-f cannot be combined');
    expectError(await run(['rollout', 'create', '-f', file('cpv-only.yaml', 'apiVersion: nodekeeper.io/v1alpha1\nkind: ClusterPackageVersion\n')]), 1, 'NK_CLI_BAD_MANIFEST', 'not one of Rollout');
    expectError(await run(['rollout', 'create', 'x', '--package', 'kubelet']), 1, 'NK_CLI_USAGE', 'NAME=VERSION');
    // The rollout made above moves on by itself; nothing else was made.
    assert.deepEqual(JSON.parse(await state())[0].map((x: string[]) => x[0]), JSON.parse(before)[0].map((x: string[]) => x[0]));
  });

  it('status -w follows a rollout to Completed and exits 0', async () => {
    const r = await follow('web-kubelet', '1.31.3');
    assert.equal(r.code, 0, r.stderr);
    const phases = [...r.stdout.matchAll(/^rollout\/web-kubelet: (\w+)/gm)].map((m) => m[1] ?? '');
    // The phases it saw, in the order a rollout moves through them, ending Completed.
    const order = ['Pending', 'Canary', 'Soaking', 'Progressing', 'Completed'];
    assert.deepEqual([...phases].sort((a, b) => order.indexOf(a) - order.indexOf(b)), phases, phases.join(' '));
    assert.equal(phases.at(-1), 'Completed');
    assert.ok(new Set(phases).size >= 2, `it saw the rollout move: ${phases.join(' ')}`);
    assert.match(r.stdout, /^MACHINE +PHASE +PACKAGE +FROM +TO +STEP +SINCE +MESSAGE$/m);
    assert.match(r.stdout, /^Packages: {2}kubelet=1\.31\.3\nProgress: {2}\[-{30}\] 0\/3 succeeded \(1 in progress, 0 failed, 2 waiting\)$/m, 'the first state in full');
    assert.match(r.stdout, /^rollout\/web-kubelet: Completed, batch \d\/\d \[#{20}\] 3\/3 succeeded \(0 in progress, 0 failed, 0 waiting\)$/m);
    // Then one line per machine that moved.
    assert.equal([...r.stdout.matchAll(/^ {2}node-\d kubelet: \w+ -> Succeeded$/gm)].length, 3, r.stdout);
    const done = await rollout('web-kubelet');
    assert.ok(r.stdout.endsWith(`\nRollout web-kubelet Completed: ${done.status.message}\n`), r.stdout);
    assert.equal(r.stderr, '');
    assert.ok(agents.every((a) => a.versions['kubelet'] === '1.31.3'));
  });

  it('status -w stops at Paused, says why and what continues it, and exits 6', async () => {
    holding.add('1.31.9');
    assert.equal((await run(['rollout', 'create', '-f', file('canary-bad.yaml', rolloutYaml('canary-bad', '1.31.9'))])).code, 0);
    const r = await follow('canary-bad', '1.31.9');
    expectError(r, 6, 'NK_CLI_ROLLOUT_STOPPED', 'rollout/canary-bad is Paused (CanaryFailed), not Completed');
    const canary = (await rollout('canary-bad')).status.canary[0] as string;
    assert.match(r.stdout, new RegExp(`^ {2}${canary} kubelet: Installing -> Failed.*: InstallFailed: kubelet 1\\.31\\.9 failed at health: HealthCheckFailed`, 'm'));
    assert.match(r.stdout, /Rollout canary-bad Paused: CanaryFailed: a canary failed; paused .*\nTo continue: nkctl rollout resume canary-bad\n$/);
  });

  it('onFailure Rollback: rolls the canary back by itself; status exits 6', async () => {
    const yaml = rolloutYaml('auto-back', '1.31.9').replace('onFailure: Pause', 'onFailure: Rollback');
    holding.add('1.31.9');
    assert.equal((await run(['apply', '-f', file('auto-back.yaml', yaml)])).code, 0);
    const r = await follow('auto-back', '1.31.9');
    expectError(r, 6, 'NK_CLI_ROLLOUT_STOPPED', 'is RolledBack');
    const phases = [...r.stdout.matchAll(/^rollout\/auto-back: (\w+)/gm)].map((m) => m[1]);
    assert.equal(phases.at(-1), 'RolledBack');
    assert.ok(phases.includes('Canary') || phases.includes('Pending'), phases.join(' '));
    assert.match(r.stdout, /Nothing continues it/);
  });

  it('pause, resume, abort, rollback; a transition the phase does not allow is refused with what it allows', async () => {
    // 1.31.4 installs are held by the agents: the rollout stays in flight until released.
    assert.equal((await run(['apply', '-f', file('ops.yaml', rolloutYaml('ops', '1.31.4'))])).code, 0);
    await waitFor('the canary install sent', () => agents.some((a) => a.commands.some((c) => c.params['version'] === '1.31.4')), 30_000);
    const pause = await run(['rollout', 'pause', 'ops']);
    assert.equal(pause.stdout, 'rollout/ops paused (phase Paused)\nTo continue: nkctl rollout resume ops\n', pause.stderr);
    const status = await run(['rollout', 'status', 'ops']);
    expectError(status, 6, 'NK_CLI_ROLLOUT_STOPPED', `is Paused (${(await rollout('ops')).status.reason})`);
    assert.match(status.stdout, /To continue: nkctl rollout resume ops\n$/);
    expectError(await run(['rollout', 'pause', 'ops']), 5, 'NK_ROLLOUT_BAD_TRANSITION', 'resume');
    const resumed = await run(['rollout', 'resume', 'ops']);
    assert.match(resumed.stdout, /^rollout\/ops resumed \(phase (Pending|Canary)\)\n$/, resumed.stderr);
    const moving = await run(['rollout', 'status', 'ops']);
    assert.equal(moving.code, 0, 'a rollout still moving is not a failure without -w');
    assert.equal((await run(['rollout', 'abort', 'ops'])).stdout, 'rollout/ops aborted (phase Failed)\nTo continue: nkctl rollout rollback ops\n');
    holding.delete('1.31.4');
    for (const a of agents) a.release();
    assert.match((await run(['rollout', 'rollback', 'ops'])).stdout, /^rollout\/ops rolling back \(phase RollingBack\)\n$/);
    expectError(await run(['rollout', 'abort', 'ghost']), 2, 'NK_ROLLOUT_NOT_FOUND');
    expectError(await run(['rollout', 'pause', 'ops'], { token: nc.readOnly }), 3, 'NK_AUTH_FORBIDDEN');
  });

  it('list and describe', async () => {
    const list = await run(['rollout', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^NAME +PHASE +PACKAGES +PROGRESS +AGE$/m);
    assert.match(list.stdout, /^web-kubelet +Completed +kubelet=1\.31\.3 +3\/3 +\d+[smhd](?:\d+[smh])?$/m);
    assert.equal(list.stdout.trimEnd().split('\n').length, 1 + (await api('/v1/rollouts')).items.length);
    const d = await run(['rollout', 'describe', 'canary-bad']);
    assert.equal(d.code, 0, d.stderr);
    const canary = (await rollout('canary-bad')).status.canary[0] as string;
    for (const re of [
      /^Name: {13}canary-bad$/m,
      /^Selector: {9}role=worker$/m,
      /^Strategy:\n {2}Canary: {11}1 machine\n {2}Soak: {13}none\n {2}Batches: {10}50%, 100%$/m,
      /^ {2}Max Failures: {5}1 machine, then Pause$/m,
      /^ {2}Phase: {10}Paused$/m,
      /^ {2}Continue With: {2}nkctl rollout resume canary-bad$/m,
      /^Machines:\n {2}MACHINE {2}PHASE/m,
      new RegExp(`^ {2}${canary} +Failed +kubelet +Kubernetes v1\\.31\\.3 +1\\.31\\.9 +- +\\d+[smhd](?:\\d+[smh])? +InstallFailed: kubelet 1\\.31\\.9 failed at health`, 'm'),
      /^Events:\n {2}Type {5}Reason/m,
      /^ {2}Warning {2}CanaryFailed {3}\d+[smhd](?:\d+[smh])? +/m,
    ]) assert.match(d.stdout, re);
  });
});
