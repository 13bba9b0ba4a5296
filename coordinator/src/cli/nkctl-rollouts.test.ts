/**
 * The real nkctl (bin/nkctl, a separate process) for packages, artifacts and rollouts,
 * against the fixture server speaking the documented API over real HTTP.
 */
import { installStatement } from '@nodekeeper/protocol';
import { builtinManifests } from '../packages/manifests.ts';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { toMachineObject } from '../api/objects.ts';
import { artifactsAt, cpvAt, packageSummaries } from './fixture-packages.ts';
import { startFixtureServer, type FixtureServer } from './fixture-server.ts';
import { brokenCniRecord, machineRecord, pendingRecord, revokedRecord } from './fixtures.ts';

const NKCTL = fileURLToPath(new URL('../../bin/nkctl', import.meta.url));
const NODE_DIR = dirname(process.execPath);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let dir: string;
let server: FixtureServer;

function run(args: readonly string[], opts: { token?: string; stdin?: string } = {}): Promise<Run> {
  const env = { PATH: `${NODE_DIR}:/usr/bin:/bin`, HOME: dir };
  return new Promise((resolve) => {
    const child = execFile(NKCTL, [...args, '--server', server.url, '--token', opts.token ?? 'adm'], { env, cwd: dir, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
    child.stdin?.end(opts.stdin ?? '');
  });
}

function expectError(r: Run, exit: number, code: string, text?: string): void {
  assert.equal(r.code, exit, `exit code; stderr: ${r.stderr}`);
  const last = r.stderr.trimEnd().split('\n').at(-1) ?? '';
  assert.match(last, new RegExp(`^error: .+ \\(${code}\\)$`));
  if (text !== undefined) assert.ok(r.stderr.includes(text), `${r.stderr} lacks ${text}`);
}

const writes = () => server.requests.filter((q) => q.method !== 'GET').length;

function file(name: string, text: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const rolloutYaml = (name: string, version = '1.31.3') => `apiVersion: nodekeeper.io/v1alpha1
kind: Rollout
metadata:
  name: ${name}
spec:
  packages: [{package: kubelet, version: "${version}"}]
  selector: {matchLabels: {role: worker}}
  strategy: {canary: {count: 1}, soakSeconds: 0, batches: [50, 100], maxUnavailable: 1, maxFailures: 1, onFailure: Pause}
`;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nkctl-rollouts-'));
  const now = Date.now();
  server = await startFixtureServer({
    machines: [machineRecord('node-1', {}, now), brokenCniRecord('node-2', now), pendingRecord('node-3', now), revokedRecord('node-4', now)].map((r) => toMachineObject(r, now)),
    events: {},
    tokens: [],
    credentials: { adm: 'admin', ro: 'read-only' },
    caCertHash: null,
    failVersions: ['1.31.9'],
    maxArtifactBytes: 4 * 1024 * 1024,
  });
  const artifacts = artifactsAt(server.url, now);
  const bad = { ...artifacts[3]!, version: '1.31.9', sha256: 'e'.repeat(64) };
  const old = { ...artifacts[2]!, version: '1.30.6', sha256: 'f'.repeat(64) };
  server.data.artifacts = [...artifacts, bad, old];
  server.data.packages = packageSummaries();
  server.data.cpv = cpvAt(artifacts, server.data.packages, now);
});

after(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('nkctl get packages and clusterpackageversion', () => {
  it('get packages: one row per package against its desired version', async () => {
    const r = await run(['get', 'packages']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, [
      'NAME         DESIRED  MACHINES  AT-DESIRED  HEALTHY  VERSIONS',
      'cni-plugins  1.1.1    2         2/2         2/2      1.1.1=2',
      'containerd   1.6.20   3         3/3         3/3      1.6.20=3',
      'kubelet      1.31.2   3         2/3         3/3      1.31.2=2,1.30.6=1',
      '',
    ].join('\n'));
    const json = await run(['get', 'pkg', '-o', 'json']);
    assert.deepEqual(JSON.parse(json.stdout), { kind: 'PackageList', items: server.data.packages });
  });

  it('get cpv -o yaml prints the object as the server has it; the table shows each package', async () => {
    const y = await run(['get', 'cpv', '-o', 'yaml']);
    assert.equal(y.code, 0, y.stderr);
    assert.deepEqual(parseYaml(y.stdout), JSON.parse(JSON.stringify(server.data.cpv)));
    const t = await run(['get', 'clusterpackageversion']);
    assert.match(t.stdout, /^PACKAGE {6}VERSION {2}SHA256 {8}SIZE {6}SIGNED {2}AT-DESIRED {2}URL$/m);
    assert.match(t.stdout, /^kubelet {6}1\.31\.2 {3}a2a2a2a2a2a2 {2}73\.0 MiB {2}yes {5}2\/3 {9}http:\/\/127\.0\.0\.1:\d+\/v1\/artifacts\/sha256\/a2a2/m);
  });
});

describe('nkctl apply', () => {
  it('applies several documents in order, routed by kind; -f - reads stdin', async () => {
    const cpv = structuredClone(server.data.cpv!) as unknown as { spec: { packages: { version: string; name: string }[] }; status?: unknown };
    delete cpv.status;
    const before = server.requests.length;
    const generation = server.data.cpv!.metadata.generation;
    const text = `${JSON.stringify(cpv)}\n---\n${rolloutYaml('apply-a')}---\n${rolloutYaml('apply-b')}`;
    const r = await run(['apply', '-f', file('multi.yaml', text)]);
    assert.equal(r.code, 0, r.stderr);
    // The CPV as the server has it: applying it is a no-op (unchanged, same generation).
    assert.equal(r.stdout, `clusterpackageversion/cluster unchanged (generation ${generation})\nrollout/apply-a created\nrollout/apply-b created\n`);
    // Each object is read (to say created, configured or unchanged), then PUT by name.
    const sent = server.requests.slice(before).filter((q) => q.method !== 'GET');
    assert.deepEqual(sent.map((q) => `${q.method} ${q.url}`), ['PUT /v1/clusterpackageversion', 'PUT /v1/rollouts/apply-a', 'PUT /v1/rollouts/apply-b']);
    assert.deepEqual(sent[0]?.body, cpv);
    assert.equal((sent[2]?.body as { metadata: { name: string } }).metadata.name, 'apply-b');

    const stdin = await run(['apply', '-f', '-'], { stdin: rolloutYaml('apply-stdin') });
    assert.deepEqual([stdin.code, stdin.stdout], [0, 'rollout/apply-stdin created\n']);
  });

  it('sends nothing when any document is bad, and says which', async () => {
    const before = writes();
    const text = `${rolloutYaml('never-1')}---\n${rolloutYaml('never-2')}---\napiVersion: nodekeeper.io/v1alpha1\nkind: Rolout\nmetadata: {name: x}\n`;
    expectError(await run(['apply', '-f', file('bad-kind.yaml', text)]), 1, 'NK_CLI_BAD_MANIFEST', 'bad-kind.yaml, document 3: kind "Rolout" is not one of');
    expectError(await run(['apply', '-f', file('bad-yaml.yaml', `${rolloutYaml('never-3')}---\nspec: {a: [\n`)]), 1, 'NK_CLI_BAD_MANIFEST', 'document 2: not valid YAML');
    expectError(await run(['apply', '-f', 'missing.yaml']), 1, 'NK_CLI_FILE_UNREADABLE', 'missing.yaml');
    assert.equal(writes(), before, 'nothing sent');
  });

  it('apply of an existing rollout is unchanged or configured; rollout create -f of an existing name is reported and exits non-zero', async () => {
    const same = await run(['apply', '-f', file('again.yaml', rolloutYaml('apply-a'))]);
    assert.deepEqual([same.code, same.stdout], [0, 'rollout/apply-a unchanged\n'], same.stderr);
    const changed = await run(['apply', '-f', file('again2.yaml', rolloutYaml('apply-a').replace('soakSeconds: 0', 'soakSeconds: 7'))]);
    assert.deepEqual([changed.code, changed.stdout], [0, 'rollout/apply-a configured\n'], changed.stderr);
    const r = await run(['rollout', 'create', '-f', file('again.yaml', rolloutYaml('apply-a'))]);
    expectError(r, 5, 'NK_ROLLOUT_EXISTS', 'rollout/apply-a already exists and rollout create makes new rollouts only');
    assert.match(r.stderr, /nkctl rollout pause\|resume\|abort\|rollback apply-a/);
    const invalid = { apiVersion: 'nodekeeper.io/v1alpha1', kind: 'ClusterPackageVersion', spec: {} };
    expectError(await run(['apply', '-f', file('cpv-bad.json', JSON.stringify(invalid))]), 5, 'NK_CPV_INVALID', '/spec/packages');
  });
});

describe('nkctl artifact', () => {
  it('push streams exactly the file, signed over its install statement, and prints the CPV entry', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const key = file('signing.pem', privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    // Not a multiple of any buffer size, and random so a reordered chunk would show.
    const bytes = createHash('sha512').update('seed').digest();
    const content = Buffer.concat(Array.from({ length: 40_000 }, (_, i) => Buffer.concat([bytes, Buffer.from([i & 0xff])])));
    const path = file('kubelet-1.31.4.tar.gz', content);
    const r = await run(['artifact', 'push', path, '--package', 'kubelet', '--version', '1.31.4', '--sign', key]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '', 'no progress output when stderr is not a terminal');
    const up = server.uploads.at(-1);
    assert.ok(up !== undefined);
    assert.ok(up.bytes.equals(content), 'the server received the file byte for byte');
    assert.equal(up.contentType, 'application/octet-stream');
    assert.deepEqual([up.package, up.version], ['kubelet', '1.31.4']);
    const digest = createHash('sha256').update(content).digest();
    // The statement with the built-in kubelet manifest (no --manifest given).
    const statement = installStatement({ package: 'kubelet', version: '1.31.4', artifact: { sha256: digest.toString('hex'), size: content.length }, manifest: builtinManifests['kubelet']! });
    assert.ok(verify(null, Buffer.from(statement), createPublicKey(publicKey.export({ type: 'spki', format: 'pem' })), Buffer.from(up.signature ?? '', 'base64')), 'signature verifies');
    const hex = digest.toString('hex');
    assert.match(r.stdout, new RegExp(`^kubelet {2}1\\.31\\.4 {3}${hex.slice(0, 12)} {2}2\\.5 MiB {2}yes {5}0s$`, 'm'));
    const entry = parseYaml(r.stdout.slice(r.stdout.indexOf('    - name:'))) as unknown[];
    assert.deepEqual(entry, [{ name: 'kubelet', version: '1.31.4', artifact: { url: `${server.url}/v1/artifacts/sha256/${hex}`, sha256: hex, size: content.length, signature: up.signature } }]);

    const unsigned = await run(['artifact', 'push', path, '--package', 'kubelet', '--version', '1.31.4', '-o', 'json']);
    assert.equal(unsigned.code, 0, unsigned.stderr);
    assert.equal(server.uploads.at(-1)?.signature, undefined);
    assert.equal((JSON.parse(unsigned.stdout) as { signature: unknown }).signature, null);
  });

  it('refuses bad keys and files before sending; a too-large artifact is the server\'s 413', async () => {
    const before = server.uploads.length;
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const small = file('small.bin', 'x'.repeat(100));
    expectError(await run(['artifact', 'push', small, '--package', 'kubelet', '--version', '1.31.4', '--sign', file('rsa.pem', rsa)]), 1, 'NK_CLI_BAD_KEY', 'is rsa, not ed25519');
    expectError(await run(['artifact', 'push', small, '--package', 'kubelet', '--version', '1.31.4', '--sign', file('junk.pem', 'junk')]), 1, 'NK_CLI_BAD_KEY', 'not a PEM private key');
    expectError(await run(['artifact', 'push', join(dir, 'none.bin'), '--package', 'kubelet', '--version', '1.31.4']), 1, 'NK_CLI_FILE_UNREADABLE');
    expectError(await run(['artifact', 'push', small, '--version', '1.31.4']), 1, 'NK_CLI_USAGE', '--package');
    const big = file('big.bin', Buffer.alloc(5 * 1024 * 1024, 7));
    expectError(await run(['artifact', 'push', big, '--package', 'kubelet', '--version', '1.31.5']), 5, 'NK_ARTIFACT_TOO_LARGE', 'exceeds the limit');
    assert.equal(server.uploads.length, before);
    expectError(await run(['artifact', 'push', small, '--package', 'kubelet', '--version', '1.31.4'], { token: 'ro' }), 3, 'NK_AUTH_FORBIDDEN');
  });

  it('list shows what is stored', async () => {
    const r = await run(['artifact', 'list']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^PACKAGE {6}VERSION {2}SHA256 {8}SIZE {6}SIGNED {2}AGE$/m);
    assert.match(r.stdout, /^containerd {3}1\.6\.20 {3}c0c0c0c0c0c0 {2}30\.0 MiB {2}no {6}3d$/m);
  });
});

describe('nkctl rollout', () => {
  it('create with flags sends the spec they describe; -f sends the file; --dry-run sends nothing', async () => {
    const r = await run(['rollout', 'create', 'web-kubelet', '--package', 'kubelet=1.31.3', '--selector', 'role=worker', '--canary', '1', '--soak', '0s', '--batches', '50,100', '--max-failures', '1']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'rollout/web-kubelet created\nFollow it with: nkctl rollout status web-kubelet -w\n');
    assert.deepEqual(server.requests.at(-1)?.body, {
      apiVersion: 'nodekeeper.io/v1alpha1', kind: 'Rollout', metadata: { name: 'web-kubelet' },
      spec: {
        packages: [{ package: 'kubelet', version: '1.31.3' }], selector: { matchLabels: { role: 'worker' } },
        strategy: { canary: { count: 1 }, soakSeconds: 0, batches: [50, 100], maxUnavailable: 1, maxFailures: 1, onFailure: 'Pause' },
      },
    });
    const f = await run(['rollout', 'create', '-f', file('canary-bad.yaml', rolloutYaml('canary-bad', '1.31.9'))]);
    assert.equal(f.code, 0, f.stderr);
    const before = writes();
    const dry = await run(['rollout', 'create', 'dry', '--package', 'containerd=1.7.22', '--dry-run']);
    assert.equal((parseYaml(dry.stdout) as { kind: string }).kind, 'Rollout');
    expectError(await run(['rollout', 'create', 'x', '-f', file('x.yaml', rolloutYaml('x'))]), 1, 'NK_CLI_USAGE', '-f cannot be combined');
    expectError(await run(['rollout', 'create', '-f', file('cpv-only.yaml', 'apiVersion: nodekeeper.io/v1alpha1\nkind: ClusterPackageVersion\n')]), 1, 'NK_CLI_BAD_MANIFEST', 'not one of Rollout');
    expectError(await run(['rollout', 'create', 'x', '--package', 'kubelet']), 1, 'NK_CLI_USAGE', 'NAME=VERSION');
    assert.equal(writes(), before, 'nothing sent');
  });

  it('the server refuses unknown versions and downgrades with its own codes', async () => {
    expectError(await run(['rollout', 'create', 'nope', '--package', 'kubelet=1.32.0']), 5, 'NK_ROLLOUT_UNKNOWN_PACKAGE', 'nkctl artifact push');
    expectError(await run(['rollout', 'create', 'down', '--package', 'kubelet=1.30.6']), 5, 'NK_ROLLOUT_DOWNGRADE');
    assert.equal((await run(['rollout', 'create', 'down', '--package', 'kubelet=1.30.6', '--allow-downgrade'])).code, 0);
  });

  it('status -w follows a rollout to Completed and exits 0', async () => {
    const r = await run(['rollout', 'status', 'web-kubelet', '-w', '--interval', '20ms']);
    assert.equal(r.code, 0, r.stderr);
    const phases = [...r.stdout.matchAll(/^rollout\/web-kubelet: (\w+)/gm)].map((m) => m[1]);
    // 3 machines: one canary, then 50% (one more), then the last: install and soak each.
    assert.deepEqual(phases, ['Canary', 'Soaking', 'Progressing', 'Progressing', 'Progressing', 'Progressing', 'Completed']);
    assert.match(r.stdout, /^MACHINE {2}PHASE {7}PACKAGE {2}FROM {7}TO {6}STEP {6}SINCE {2}MESSAGE$/m);
    assert.match(r.stdout, /^rollout\/web-kubelet: Completed, batch 2\/2 \[#{20}\] 3\/3 succeeded \(0 in progress, 0 failed, 0 waiting\)$/m);
    assert.match(r.stdout, /^Rollout web-kubelet Completed: AllMachinesUpgraded: 3\/3 machine upgrades succeeded\n$/m);
    assert.equal(r.stderr, '');
  });

  it('status -w stops at Paused, says why and what continues it, and exits 6', async () => {
    const r = await run(['rollout', 'status', 'canary-bad', '-w', '--interval', '20ms']);
    expectError(r, 6, 'NK_CLI_ROLLOUT_STOPPED', 'rollout/canary-bad is Paused (CanaryFailed), not Completed');
    assert.match(r.stdout, /^ {2}node-1 kubelet: Installing -> Failed \(step health\): HealthCheckFailed: kubelet did not become healthy/m);
    assert.match(r.stdout, /Rollout canary-bad Paused: CanaryFailed: 1 machine\(s\) failed in the canary \(maxFailures 1\)\nTo continue: nkctl rollout rollback canary-bad\n$/);
  });

  it('onFailure Rollback: rolls the canary back by itself; status exits 6', async () => {
    const yaml = rolloutYaml('auto-back', '1.31.9').replace('onFailure: Pause', 'onFailure: Rollback');
    assert.equal((await run(['apply', '-f', file('auto-back.yaml', yaml)])).code, 0);
    const r = await run(['rollout', 'status', 'auto-back', '-w', '--interval', '20ms']);
    expectError(r, 6, 'NK_CLI_ROLLOUT_STOPPED', 'is RolledBack');
    const phases = [...r.stdout.matchAll(/^rollout\/auto-back: (\w+)/gm)].map((m) => m[1]);
    assert.deepEqual(phases, ['Canary', 'RollingBack', 'RolledBack']);
    assert.match(r.stdout, /Nothing continues it/);
  });

  it('pause, resume, abort, rollback; a transition the phase does not allow is refused with what it allows', async () => {
    assert.equal((await run(['apply', '-f', file('ops.yaml', rolloutYaml('ops'))])).code, 0);
    const pause = await run(['rollout', 'pause', 'ops']);
    assert.equal(pause.stdout, 'rollout/ops paused (phase Paused)\nTo continue: nkctl rollout resume ops\n');
    const status = await run(['rollout', 'status', 'ops']);
    expectError(status, 6, 'NK_CLI_ROLLOUT_STOPPED', 'is Paused (PausedByUser)');
    assert.match(status.stdout, /To continue: nkctl rollout resume ops\n$/);
    expectError(await run(['rollout', 'pause', 'ops']), 5, 'NK_ROLLOUT_BAD_TRANSITION', 'it allows resume, abort, rollback');
    assert.equal((await run(['rollout', 'resume', 'ops'])).stdout, 'rollout/ops resumed (phase Pending)\n');
    const moving = await run(['rollout', 'status', 'ops']);
    assert.equal(moving.code, 0, 'a rollout still moving is not a failure without -w');
    assert.equal((await run(['rollout', 'abort', 'ops'])).stdout, 'rollout/ops aborted (phase Failed)\nTo continue: nkctl rollout rollback ops\n');
    assert.match((await run(['rollout', 'rollback', 'ops'])).stdout, /^rollout\/ops rolling back \(phase RollingBack\)\n$/);
    expectError(await run(['rollout', 'abort', 'ghost']), 2, 'NK_ROLLOUT_NOT_FOUND');
    expectError(await run(['rollout', 'pause', 'ops'], { token: 'ro' }), 3, 'NK_AUTH_FORBIDDEN');
  });

  it('list and describe', async () => {
    const list = await run(['rollout', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^NAME {9}PHASE {8}PACKAGES {8}PROGRESS {2}AGE$/m);
    assert.match(list.stdout, /^web-kubelet {2}Completed {4}kubelet=1\.31\.3 {2}3\/3 {7}\d+s$/m);
    const d = await run(['rollout', 'describe', 'canary-bad']);
    assert.equal(d.code, 0, d.stderr);
    for (const re of [
      /^Name: {13}canary-bad$/m,
      /^Selector: {9}role=worker$/m,
      /^Strategy:\n {2}Canary: {11}1 machine\n {2}Soak: {13}none\n {2}Batches: {10}50%, 100%$/m,
      /^ {2}Max Failures: {5}1 machine, then Pause$/m,
      /^ {2}Phase: {10}Paused$/m,
      /^ {2}Continue With: {2}nkctl rollout rollback canary-bad$/m,
      /^Machines:\n {2}MACHINE {2}PHASE/m,
      /^ {2}node-1 {3}Failed {3}kubelet {2}1\.31\.2 {5}1\.31\.9 {2}health/m,
      /^Events:\n {2}Type {5}Reason/m,
      /^ {2}Warning {2}CanaryFailed {3}\d+s +1 machine\(s\) failed in the canary/m,
    ]) assert.match(d.stdout, re);
  });
});
