/**
 * Artifacts and the ClusterPackageVersion through a real coordinator: uploads are
 * stored content-addressed and served to agents with their digest; bad input is
 * refused with its code and changes nothing.
 */
import { rawPublicKey } from '@nodekeeper/common';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createToken, nkctl, startCoordinator, type CoordinatorProc } from './harness/processes.ts';

describe('packages API', { timeout: 60_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc;
  let ca: string;
  let admin: string;
  let machineCredential: string;

  function call(method: string, pathname: string, opts: { body?: Buffer | string; credential?: string; headers?: Record<string, string> } = {}) {
    return new Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }>((resolve, reject) => {
      const headers: Record<string, string> = { ...opts.headers };
      if (opts.credential !== undefined) headers['Authorization'] = `Bearer ${opts.credential}`;
      const req = https.request(new URL(pathname, coord.url), { method, ca, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
      });
      req.on('error', reject);
      req.end(opts.body);
    });
  }
  const json = (r: { body: Buffer }) => JSON.parse(r.body.toString('utf8'));

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-pkgapi-'));
    coord = await startCoordinator(path.join(dir, 'coordinator'));
    ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
    admin = (await readFile(path.join(coord.dataDir, 'admin.credential'), 'utf8')).trim();
    const { token } = await createToken(coord.nkctlConfig, 1);
    const r = await call('POST', '/v1/enroll', {
      body: JSON.stringify({ token, identity: { machineId: 'a'.repeat(32), hostname: 'node-a', addresses: [], zone: null, labels: {} }, agentVersion: 't', publicKey: rawPublicKey(generateKeyPairSync('ed25519').publicKey) }),
      headers: { 'Content-Type': 'application/json' },
    });
    machineCredential = json(r).credential;
  });

  after(async () => {
    await coord?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('an artifact is stored by digest, with its signature, and served to a machine', async () => {
    const bytes = Buffer.alloc(300_000, 7);
    const sha = createHash('sha256').update(bytes).digest();
    const { privateKey } = generateKeyPairSync('ed25519');
    const signature = sign(null, sha, privateKey).toString('base64');
    const put = await call('PUT', '/v1/artifacts?package=kubelet&version=1.31.3', { body: bytes, credential: admin, headers: { 'X-Nodekeeper-Signature': signature } });
    assert.equal(put.status, 201, put.body.toString());
    const artifact = json(put);
    assert.equal(artifact.sha256, sha.toString('hex'));
    assert.equal(artifact.size, bytes.length);
    assert.equal(artifact.signature, signature);
    assert.equal(artifact.url, `${coord.url}/v1/artifacts/sha256/${artifact.sha256}`);

    const get = await call('GET', new URL(artifact.url).pathname, { credential: machineCredential });
    assert.equal(get.status, 200);
    assert.ok(get.body.equals(bytes));
    const anonymous = await call('GET', new URL(artifact.url).pathname);
    assert.equal(json(anonymous).code, 'NK_AUTH_CREDENTIAL_MISSING');
    const missing = await call('GET', `/v1/artifacts/sha256/${'0'.repeat(64)}`, { credential: machineCredential });
    assert.equal(missing.status, 404);
    assert.equal(json(missing).code, 'NK_ARTIFACT_NOT_FOUND');
  });

  test('bad uploads are refused and leave no artifact behind', async () => {
    const before = json(await call('GET', '/v1/artifacts', { credential: admin })).items.length;
    for (const [query, headers, code] of [
      ['package=Kubelet&version=1.0.0', {}, 'NK_HTTP_BAD_REQUEST'],
      ['package=kubelet&version=latest', {}, 'NK_HTTP_BAD_REQUEST'],
      ['package=kubelet&version=1.0.0', { 'X-Nodekeeper-Signature': 'nope' }, 'NK_HTTP_BAD_REQUEST'],
    ] as const) {
      const r = await call('PUT', `/v1/artifacts?${query}`, { body: 'x', credential: admin, headers });
      assert.equal(json(r).code, code, query);
    }
    const empty = await call('PUT', '/v1/artifacts?package=kubelet&version=1.0.0', { body: '', credential: admin });
    assert.equal(json(empty).code, 'NK_ARTIFACT_EMPTY');
    const ro = (await readFile(path.join(coord.dataDir, 'read-only.credential'), 'utf8')).trim();
    assert.equal((await call('PUT', '/v1/artifacts?package=kubelet&version=1.0.0', { body: 'x', credential: ro })).status, 403);
    assert.equal(json(await call('GET', '/v1/artifacts', { credential: admin })).items.length, before);
  });

  test('the ClusterPackageVersion is validated, stored with a generation, and summarised', async () => {
    const artifact = { url: 'https://example.invalid/kubelet.tgz', sha256: 'b'.repeat(64), size: 10 };
    const cpv = (packages: unknown[]) => JSON.stringify({ apiVersion: 'nodekeeper.io/v1alpha1', kind: 'ClusterPackageVersion', metadata: { name: 'cluster' }, spec: { packages } });
    for (const [body, fragment] of [
      [cpv([{ name: 'kubelet', version: 'latest', artifact }]), '/spec/packages/0/version'],
      [cpv([{ name: 'kubelet', version: '1.31.3', artifact }, { name: 'kubelet', version: '1.31.4', artifact }]), 'listed twice'],
      [cpv([{ name: 'my-agent', version: '1.0.0', artifact }]), 'give it a manifest'],
      [cpv([{ name: 'kubelet', version: '1.31.3', artifact: { ...artifact, sha256: 'xyz' } }]), '/spec/packages/0/artifact/sha256'],
      ['{"kind":"Rollout"}', '/apiVersion'],
    ] as const) {
      const r = await call('PUT', '/v1/clusterpackageversion', { body, credential: admin });
      assert.equal(r.status, 400);
      assert.equal(json(r).code, 'NK_CPV_INVALID');
      assert.match(json(r).message, new RegExp(fragment.replace(/[/]/g, '\\/')));
    }
    assert.equal(json(await call('GET', '/v1/clusterpackageversion', { credential: admin })).metadata.generation, 0, 'nothing was stored');

    const ok = await call('PUT', '/v1/clusterpackageversion', { body: cpv([{ name: 'kubelet', version: '1.31.3', artifact }]), credential: admin });
    assert.equal(ok.status, 201, ok.body.toString()); // created (docs/declarative.md, "Objects")
    assert.equal(json(ok).metadata.generation, 1);
    const again = await call('PUT', '/v1/clusterpackageversion', { body: cpv([{ name: 'kubelet', version: '1.31.3', artifact }]), credential: admin });
    assert.equal(json(again).metadata.generation, 1, 'an unchanged apply does not move the generation');
    const packages = json(await call('GET', '/v1/packages', { credential: admin }));
    const kubelet = packages.items.find((p: { name: string }) => p.name === 'kubelet');
    assert.equal(kubelet.desiredVersion, '1.31.3');
  });

  test('a machine pins package versions; rollouts of another version leave it out', async () => {
    const pin = await nkctl(coord.nkctlConfig, ['machine', 'pin', 'node-a', 'containerd=1.6.20', 'kubelet=1.31.2']);
    assert.equal(pin.code, 0, pin.stderr);
    assert.match(pin.stdout, /pinned: containerd=1\.6\.20, kubelet=1\.31\.2/);
    const m = JSON.parse((await nkctl(coord.nkctlConfig, ['get', 'machine', 'node-a', '-o', 'json'])).stdout);
    assert.deepEqual(m.spec.packages, [{ name: 'containerd', version: '1.6.20' }, { name: 'kubelet', version: '1.31.2' }]);

    const bad = await nkctl(coord.nkctlConfig, ['machine', 'pin', 'node-a', 'containerd']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /NK_CLI_USAGE/);
    const body = await call('PUT', '/v1/machines/node-a/packages', { body: JSON.stringify({ packages: [{ name: 'kubelet', version: 'latest' }] }), credential: admin });
    assert.equal(json(body).code, 'NK_HTTP_BAD_REQUEST');

    const bytes = Buffer.from('not really containerd');
    assert.equal((await call('PUT', '/v1/artifacts?package=containerd&version=1.7.0', { body: bytes, credential: admin })).status, 201);
    const rollout = await call('POST', '/v1/rollouts', {
      body: JSON.stringify({ apiVersion: 'nodekeeper.io/v1alpha1', kind: 'Rollout', metadata: { name: 'containerd-1-7' }, spec: { packages: [{ package: 'containerd', version: '1.7.0' }] } }),
      credential: admin,
    });
    assert.equal(json(rollout).code, 'NK_ROLLOUT_NO_MACHINES', 'the only machine pins another containerd');

    const unpin = await nkctl(coord.nkctlConfig, ['machine', 'unpin', 'node-a', 'containerd']);
    assert.equal(unpin.code, 0, unpin.stderr);
    assert.match(unpin.stdout, /still pinned: kubelet=1\.31\.2/);
    const created = await call('POST', '/v1/rollouts', {
      body: JSON.stringify({ apiVersion: 'nodekeeper.io/v1alpha1', kind: 'Rollout', metadata: { name: 'containerd-1-7' }, spec: { packages: [{ package: 'containerd', version: '1.7.0' }] } }),
      credential: admin,
    });
    assert.equal(created.status, 201, created.body.toString());
    assert.deepEqual(json(created).status.machines.map((x: { name: string }) => x.name), ['node-a']);
  });

  test('an upload that asks first (Expect: 100-continue) is refused before its body is sent', async () => {
    const ro = (await readFile(path.join(coord.dataDir, 'read-only.credential'), 'utf8')).trim();
    const ask = (credential: string, size: number) => new Promise<{ status: number; code: string; continued: boolean }>((resolve, reject) => {
      let continued = false;
      const req = https.request(new URL('/v1/artifacts?package=kubelet&version=9.9.9', coord.url), {
        method: 'PUT', ca, agent: false,
        headers: { Authorization: `Bearer ${credential}`, 'Content-Length': String(size), Expect: '100-continue' },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, code: JSON.parse(Buffer.concat(chunks).toString('utf8')).code, continued });
          req.destroy();
        });
      });
      req.on('continue', () => {
        continued = true;
        req.destroy();
      });
      req.on('error', (err) => (continued ? undefined : reject(err)));
      req.flushHeaders();
    });
    assert.deepEqual(await ask(admin, 3 * 1024 ** 3), { status: 413, code: 'NK_ARTIFACT_TOO_LARGE', continued: false });
    assert.deepEqual(await ask(ro, 10), { status: 403, code: 'NK_AUTH_FORBIDDEN', continued: false });
    assert.deepEqual(await ask('nka.bogus', 10), { status: 401, code: 'NK_AUTH_CREDENTIAL_INVALID', continued: false });
  });
});
