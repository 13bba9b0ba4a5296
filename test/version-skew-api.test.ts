/**
 * The version-skew guard on desired versions, against a real coordinator that knows its
 * control plane (v1.32.1): a ClusterPackageVersion apply and a machine pin that would put
 * kubelet past kube-apiserver, or more minors behind it than the policy allows, are
 * refused with NK_VERSION_SKEW naming the rule, and nothing is stored (issue 10, item 4).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createToken, nkctl, nkctlOk, startCoordinator, type CoordinatorProc } from './harness/processes.ts';
import { newMachinePublicKey } from './harness/machine-key.ts';

const artifact = { url: 'https://artifacts.invalid/kubelet.tgz', sha256: 'd'.repeat(64), size: 1 };
const cpv = (version: string) => ({ apiVersion: 'nodekeeper.io/v1alpha1', kind: 'ClusterPackageVersion', metadata: { name: 'cluster' }, spec: { packages: [{ name: 'kubelet', version, artifact }] } });

describe('the version-skew guard on applies and pins', { timeout: 60_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc;
  let ca: string;
  let admin: string;

  function call(method: string, pathname: string, body?: unknown) {
    return new Promise<{ status: number; body: any }>((resolve, reject) => {
      const req = https.request(new URL(pathname, coord.url), { method, ca, headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      });
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-skew-api-'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), ['--control-plane-version', 'v1.32.1']);
    ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
    admin = (await readFile(path.join(coord.dataDir, 'admin.credential'), 'utf8')).trim();
    const { token } = await createToken(coord.nkctlConfig, 1);
    const r = await call('POST', '/v1/enroll', { token, identity: { machineId: 'a'.repeat(32), hostname: 'node-a', addresses: [], zone: null, labels: {} }, agentVersion: 't', publicKey: newMachinePublicKey() });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  });

  after(async () => {
    await coord?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('a ClusterPackageVersion with kubelet past the control plane, or too far behind it, is refused and not stored', async () => {
    const ok = await call('PUT', '/v1/clusterpackageversion', cpv('1.32.0'));
    assert.equal(ok.status, 201, JSON.stringify(ok.body)); // created (docs/declarative.md, "Objects")
    for (const [version, rule] of [['1.33.0', /kubelet 1\.33\.0 would be newer than the control plane v1\.32\.1/], ['1.28.5', /4 minor versions older than the control plane v1\.32\.1; at most 3 are allowed/]] as const) {
      const r = await call('PUT', '/v1/clusterpackageversion', cpv(version));
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.code, 'NK_VERSION_SKEW');
      assert.match(r.body.message, /ClusterPackageVersion refused by the version-skew guard/);
      assert.match(r.body.message, rule);
    }
    const stored = await call('GET', '/v1/clusterpackageversion');
    assert.deepEqual(stored.body.spec.packages.map((p: { name: string; version: string }) => `${p.name}=${p.version}`), ['kubelet=1.32.0'], 'nothing stored');
    // The same through nkctl apply: the code reaches the operator.
    await writeFile(path.join(dir, 'cpv.json'), JSON.stringify(cpv('1.33.0')));
    const applied = await nkctl(coord.nkctlConfig, ['apply', '-f', path.join(dir, 'cpv.json')]);
    assert.notEqual(applied.code, 0);
    assert.match(applied.stderr, /NK_VERSION_SKEW|version-skew guard/);
  });

  test('nkctl machine pin of a kubelet past the control plane is refused and pins nothing', async () => {
    const r = await nkctl(coord.nkctlConfig, ['machine', 'pin', 'node-a', 'kubelet=1.33.1']);
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stderr, /the pin of node-a refused by the version-skew guard: kubelet 1\.33\.1 would be newer than the control plane v1\.32\.1/);
    const m = JSON.parse(await nkctlOk(coord.nkctlConfig, ['get', 'machine', 'node-a', '-o', 'json']));
    assert.deepEqual(m.spec.packages ?? [], [], 'no pin stored');
    // Within the policy (and a package the guard does not govern) is accepted.
    assert.match(await nkctlOk(coord.nkctlConfig, ['machine', 'pin', 'node-a', 'kubelet=1.31.4', 'containerd=2.1.0']), /pinned: .*kubelet=1\.31\.4/);
  });
});
