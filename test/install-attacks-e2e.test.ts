/**
 * The install attacks of issue 10 replayed end to end, with real processes: a
 * coordinator, an agent whose kubelet runs under the supervisor, containerd, artifacts
 * pushed and objects applied with the real nkctl.
 *
 * 1. Refusal at apply: the manifest (`/etc/systemd/system/evil.service` ->
 *    `../../…/etc/passwd`, `/usr/bin/evil`), a `..` target on an allowed path and a
 *    `reboot.target` service are answered 400 with their code and the JSON path of the
 *    field; nothing is stored.
 * 2. Refusal on the node: with the coordinator's allow-list widened by its operator (the
 *    agent's is not), a rollout of each remaining attack reaches the agent, which refuses
 *    it with its code: a link path the agent does not allow (adopting /etc/victim.conf),
 *    a link through a symlinked parent leading outside the host root (the chained escape),
 *    and an archive symlink leading out. The host root's /etc and the directory outside
 *    it are byte for byte as before.
 * 3. A pin of a package whose stored manifest a later coordinator no longer allows is refused.
 * 4. Signed install metadata: on an agent with a trusted key, a ClusterPackageVersion
 *    signed with `nkctl sign` installs; the same signature with the manifest changed
 *    afterwards is refused NK_INSTALL_SIGNATURE_INVALID.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { generateKeyPairSync } from 'node:crypto';
import { parseAllDocuments } from 'yaml';
import { kubeletArtifact } from './harness/artifacts.ts';
import { hostileTar } from './harness/hostile-tar.ts';
import { startContainerdWithNetwork, type RunningContainerd } from './harness/containerd.ts';
import { createToken, nkctl, nkctlOk, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { makeSupervisedNode, startNodeAgent, stopNode, type SupervisedNode } from './harness/supervised-node.ts';

const ARGS = ['--heartbeat-interval', '500', '--liveness-grace', '5000', '--liveness-recover', '500', '--control-plane-version', 'v1.32.1'];
/** What this coordinator's operator allowed, beyond the built-in paths; the agent allows /etc/escape/ only. */
const WIDENED = ['--allow-install-path', '/etc/victim.conf', '--allow-install-path', '/etc/escape/', '--allow-install-path', '/etc/evil.conf'];

async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (p: string): Promise<void> => {
    const st = await lstat(p);
    const rel = path.relative(dir, p) || '.';
    if (st.isSymbolicLink()) out.push(`${rel} -> ${await readlink(p)}`);
    else if (st.isDirectory()) {
      out.push(`${rel}/`);
      for (const n of (await readdir(p)).sort()) await walk(path.join(p, n));
    } else out.push(`${rel} ${createHash('sha256').update(await readFile(p)).digest('hex').slice(0, 16)}`);
  };
  await walk(dir);
  return out;
}

describe('install attacks, end to end', { timeout: 240_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc;
  let containerd: RunningContainerd;
  let node: SupervisedNode;
  let outside: string;
  const nk = (args: string[]) => nkctlOk(coord.nkctlConfig, args);

  function put(pathname: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    return new Promise((resolve, reject) => {
      void (async () => {
        const ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
        const admin = (await readFile(path.join(coord.dataDir, 'admin.credential'), 'utf8')).trim();
        const req = https.request(new URL(pathname, coord.url), { method: 'PUT', ca, headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> }));
        });
        req.on('error', reject);
        req.end(JSON.stringify(body));
      })().catch(reject);
    });
  }

  const cpv = (packages: unknown[]) => ({ apiVersion: 'nodekeeper.io/v1alpha1', kind: 'ClusterPackageVersion', metadata: { name: 'cluster' }, spec: { packages } });
  const generation = async () => (JSON.parse(await nk(['get', 'clusterpackageversion', '-o', 'json'])) as { metadata: { generation: number } }).metadata.generation;
  const artifactRef = { url: 'https://example.invalid/a.tgz', sha256: 'a'.repeat(64), size: 10 };
  const pkg = (name: string, links: unknown[], service: string | null = null) => ({
    name, version: '1.0.0', artifact: artifactRef,
    manifest: { name, format: 'tar.gz', links, service, healthProbe: 'none', healthTimeoutMs: 2000 },
  });

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-attacks-'));
    containerd = await startContainerdWithNetwork(path.join(dir, 'containerd'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), ARGS);
  });

  let signedNode: SupervisedNode | undefined;
  after(async () => {
    if (signedNode !== undefined) await stopNode(signedNode);
    if (node !== undefined) await stopNode(node);
    await coord?.stop();
    await containerd?.stop();
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(dir, { recursive: true, force: true });
  });

  test('refused at apply: 400, the code, the JSON path of the field, nothing stored', async () => {
    const before = await generation();
    const cases: Array<[unknown, string, string]> = [
      [pkg('evil', [{ path: '/etc/systemd/system/evil.service', target: '../../../../../../etc/passwd' }, { path: '/usr/bin/evil', target: 'evil' }]), 'NK_INSTALL_PATH_NOT_ALLOWED', 'spec.packages[0].manifest.links[0].path'],
      [pkg('kubelet', [{ path: '/usr/bin/kubelet', target: '../../../../../../etc/passwd' }], 'kubelet.service'), 'NK_INSTALL_TARGET_OUTSIDE', 'spec.packages[0].manifest.links[0].target'],
      [pkg('kubelet', [{ path: '/usr/bin/kubelet', target: 'kubelet' }], 'reboot.target'), 'NK_INSTALL_SERVICE_NOT_ALLOWED', 'spec.packages[0].manifest.service'],
      [pkg('esc-one', [{ path: '/usr/bin/kubelet', target: 'kubelet' }, { path: '/etc/escape', target: '.' }]), 'NK_INSTALL_PATH_NOT_ALLOWED', 'spec.packages[0].manifest.links[1].path'],
    ];
    for (const [p, code, at] of cases) {
      const r = await put('/v1/clusterpackageversion', cpv([p]));
      assert.equal(r.status, 400, JSON.stringify(r.json));
      assert.equal(r.json['code'], code);
      assert.equal(r.json['path'], at);
    }
    // The same through nkctl apply: one stderr line with the code and the field.
    await writeFile(path.join(dir, 'evil.yaml'), stringify(cpv([cases[0]![0]])));
    const applied = await nkctl(coord.nkctlConfig, ['apply', '-f', path.join(dir, 'evil.yaml')]);
    assert.notEqual(applied.code, 0);
    assert.match(applied.stderr, /spec\.packages\[0\]\.manifest\.links\[0\]\.path.*\(NK_INSTALL_PATH_NOT_ALLOWED\)/);
    assert.equal(await generation(), before, 'nothing stored');
  });

  test('refused on the node: what the coordinator\'s operator allowed, the agent still refuses; nothing outside the host root changes', async () => {
    await coord.stop();
    coord = await startCoordinator(coord.dataDir, [...ARGS, ...WIDENED]);
    node = await makeSupervisedNode(dir, { name: 'node-a', machineId: '1'.repeat(32), kubeletVersion: 'v1.31.2', runtimeSocket: containerd.socket });
    outside = path.join(dir, 'outside');
    await mkdir(outside);
    await writeFile(path.join(outside, 'passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
    // The victim's own file, and a symlink out of the host root that got there some other way.
    await writeFile(path.join(node.root, 'etc/victim.conf'), 'the admin\'s own config\n');
    await symlink(outside, path.join(node.root, 'etc/escape'));
    const { token, caCertHash } = await createToken(coord.nkctlConfig, 1);
    startNodeAgent(node, { server: coord.url, token, caHash: caCertHash, extraArgs: ['--allow-install-path', '/etc/escape/', '--allow-install-path', '/etc/evil.conf'] });
    await waitFor('node-a Ready', async () => {
      const items = (JSON.parse(await nk(['get', 'machines', '-o', 'json'])) as { items: Array<{ status: Record<string, unknown> }> }).items;
      return items.length === 1 && items[0]?.status['phase'] === 'Ready';
    }, 30_000);

    const art = path.join(dir, 'art');
    await mkdir(art);
    const plain = await hostileTar(art, 'victim.tgz', [{ name: 'victim.conf', body: 'attacker\n' }, { name: 'pwned', body: 'pwned\n' }]);
    const linkOut = await hostileTar(art, 'link-out.tgz', [{ name: 'evil', type: '2', linkname: '../../../../../../../../../outside/passwd' }]);
    const push = async (file: string, name: string) => JSON.parse(await nk(['artifact', 'push', file, '--package', name, '--version', '1.0.0', '-o', 'json'])) as { url: string; sha256: string; size: number };
    const attacks: Array<{ name: string; links: unknown[]; file: string; code: string }> = [
      { name: 'victim', links: [{ path: '/etc/victim.conf', target: 'victim.conf' }], file: plain.file, code: 'NK_INSTALL_PATH_NOT_ALLOWED' },
      { name: 'esc-two', links: [{ path: '/etc/escape/pwned', target: 'pwned' }], file: plain.file, code: 'NK_INSTALL_LINK_PARENT_UNSAFE' },
      { name: 'evil', links: [{ path: '/etc/evil.conf', target: 'evil' }], file: linkOut.file, code: 'NK_INSTALL_ARCHIVE_UNSAFE' },
    ];
    const packages = [];
    for (const a of attacks) {
      const pushed = await push(a.file, a.name);
      packages.push({ name: a.name, version: '1.0.0', artifact: { url: pushed.url, sha256: pushed.sha256, size: pushed.size }, manifest: { name: a.name, format: 'tar.gz', links: a.links, service: null, healthProbe: 'none', healthTimeoutMs: 2000 } });
    }
    await writeFile(path.join(dir, 'attacks.yaml'), stringify(cpv(packages)));
    await nk(['apply', '-f', path.join(dir, 'attacks.yaml')]);

    const etcBefore = await snapshot(path.join(node.root, 'etc'));
    const outsideBefore = await snapshot(outside);
    for (const a of attacks) {
      await nk(['rollout', 'create', `attack-${a.name}`, '--package', `${a.name}=1.0.0`, '--canary', '1', '--batches', '100']);
      const db = () => new Database(path.join(coord.dataDir, 'state.db'), { readonly: true });
      const error = await waitFor(`the agent's answer to ${a.name}`, () => {
        const d = db();
        try {
          const row = d.prepare("SELECT state, error FROM commands WHERE owner = ? AND kind = 'package.install'").get(`rollout/attack-${a.name}`) as { state: string; error: string | null } | undefined;
          return row !== undefined && (row.state === 'Failed' || row.state === 'Succeeded') ? row : undefined;
        } finally {
          d.close();
        }
      }, 60_000, 250);
      assert.equal(error.state, 'Failed');
      assert.equal((JSON.parse(error.error ?? '{}') as { code?: string }).code, a.code, error.error ?? '');
    }
    assert.deepEqual(await snapshot(outside), outsideBefore, 'nothing outside the host root changed');
    assert.deepEqual(await snapshot(path.join(node.root, 'etc')), etcBefore, 'nothing in the host root\'s /etc changed');
    assert.equal(await readFile(path.join(node.root, 'etc/victim.conf'), 'utf8'), 'the admin\'s own config\n');
    await assert.rejects(lstat(path.join(outside, 'pwned')));
  });

  test('a pin of a package whose stored manifest this coordinator does not allow is refused with the field', async () => {
    await coord.stop();
    coord = await startCoordinator(coord.dataDir, ARGS);
    const r = await put('/v1/machines/node-a/packages', { packages: [{ name: 'victim', version: '1.0.0' }] });
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.equal(r.json['code'], 'NK_INSTALL_PATH_NOT_ALLOWED');
    const stored = (JSON.parse(await nk(['get', 'clusterpackageversion', '-o', 'json'])) as { spec: { packages: Array<{ name: string }> } }).spec.packages;
    assert.equal(r.json['path'], `clusterpackageversion.spec.packages[${stored.findIndex((p) => p.name === 'victim')}].manifest.links[0].path`);
    const m = JSON.parse(await nk(['get', 'machines', '-o', 'json'])) as { items: Array<{ spec: { packages?: unknown[] } }> };
    assert.deepEqual(m.items[0]?.spec.packages ?? [], [], 'no pin stored');
  });

  test('signed install metadata: what nkctl sign signed installs; the same signature over a changed manifest is refused', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const key = path.join(dir, 'signing.pem');
    const pub = path.join(dir, 'signing.pub.pem');
    await writeFile(key, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await writeFile(pub, publicKey.export({ type: 'spki', format: 'pem' }));
    signedNode = await makeSupervisedNode(dir, { name: 'node-b', machineId: '2'.repeat(32), kubeletVersion: 'v1.31.2', runtimeSocket: containerd.socket });
    const { token, caCertHash } = await createToken(coord.nkctlConfig, 1);
    startNodeAgent(signedNode, { server: coord.url, token, caHash: caCertHash, extraArgs: ['--trusted-key', pub] });
    await waitFor('node-b Ready', async () => {
      const items = (JSON.parse(await nk(['get', 'machines', '-o', 'json'])) as { items: Array<{ metadata: { name: string }; status: Record<string, unknown> }> }).items;
      return items.find((m) => m.metadata.name === 'node-b')?.status['phase'] === 'Ready';
    }, 30_000);
    const art = await kubeletArtifact(path.join(dir, 'art'), { version: 'v1.31.3' });
    const pushed = JSON.parse(await nk(['artifact', 'push', art.file, '--package', 'kubelet', '--version', '1.31.3', '-o', 'json'])) as { url: string; sha256: string; size: number };
    const manifest = { name: 'kubelet', format: 'tar.gz', links: [{ path: '/usr/bin/kubelet', target: 'kubelet' }], service: 'kubelet.service', healthProbe: 'kubelet', healthTimeoutMs: 8000 };
    await writeFile(path.join(dir, 'kubelet.yaml'), stringify(cpv([{ name: 'kubelet', version: '1.31.3', artifact: { url: pushed.url, sha256: pushed.sha256, size: pushed.size }, manifest }])));
    const signedText = await nk(['sign', '-f', path.join(dir, 'kubelet.yaml'), '--key', key]);
    const signed = parseAllDocuments(signedText)[0]!.toJS() as ReturnType<typeof cpv> & { spec: { packages: Array<{ artifact: { signature?: string }; manifest: { healthTimeoutMs: number } }> } };
    assert.match(signed.spec.packages[0]?.artifact.signature ?? '', /^[A-Za-z0-9+/]{86}==$/);

    const outcome = async (rollout: string) => waitFor(`the agent's answer in ${rollout}`, () => {
      const d = new Database(path.join(coord.dataDir, 'state.db'), { readonly: true });
      try {
        const row = d.prepare("SELECT state, error FROM commands WHERE owner = ? AND kind = 'package.install'").get(`rollout/${rollout}`) as { state: string; error: string | null } | undefined;
        return row !== undefined && (row.state === 'Failed' || row.state === 'Succeeded') ? row : undefined;
      } finally {
        d.close();
      }
    }, 60_000, 250);
    // The manifest changed after signing (a longer health timeout), the signature kept.
    const tampered = structuredClone(signed);
    tampered.spec.packages[0]!.manifest.healthTimeoutMs = 9000;
    await writeFile(path.join(dir, 'tampered.yaml'), stringify(tampered));
    await nk(['apply', '-f', path.join(dir, 'tampered.yaml')]);
    await nk(['rollout', 'create', 'signed-tampered', '--package', 'kubelet=1.31.3', '--names', 'node-b', '--canary', '1', '--batches', '100']);
    const refused = await outcome('signed-tampered');
    assert.equal(refused.state, 'Failed');
    assert.equal((JSON.parse(refused.error ?? '{}') as { code?: string }).code, 'NK_INSTALL_SIGNATURE_INVALID', refused.error ?? '');
    await nk(['rollout', 'abort', 'signed-tampered']).catch(() => '');

    await writeFile(path.join(dir, 'signed.yaml'), signedText);
    await nk(['apply', '-f', path.join(dir, 'signed.yaml')]);
    await nk(['rollout', 'create', 'signed-ok', '--package', 'kubelet=1.31.3', '--names', 'node-b', '--canary', '1', '--batches', '100']);
    const ok = await outcome('signed-ok');
    assert.equal(ok.state, 'Succeeded', ok.error ?? '');
  });
});
