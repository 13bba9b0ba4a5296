/**
 * Objects that behave like Kubernetes objects, through one real coordinator
 * (docs/declarative.md, "Objects"): apply is create-or-update and idempotent for every
 * kind (the same files again from a directory say `unchanged` and write nothing), stale
 * or foreign preconditions and immutable Rollout fields are refused with 409/422 and
 * change nothing in the store, spec.paused pauses and resumes, and deletes follow their
 * rules (finished rollouts, unreferenced artifacts) and record a Deleted event.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { rawPublicKey } from '@nodekeeper/common';
import { createToken, nkctl, nkctlOk, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { StateProbe, type Snapshot } from './harness/state-snapshot.ts';

const API = 'nodekeeper.io/v1alpha1';
type Answer = { status: number; body: any };
/** The controllers tick once a second (grace 3600 s): a store quiet for longer has settled. */
const SETTLE_QUIET_MS = 1300;

describe('objects: apply, conflicts, immutability, delete', { timeout: 120_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc;
  let ca: string;
  let admin: string;
  let artifact: { url: string; sha256: string; size: number };
  let spare: string;
  let probe: StateProbe;

  function call(method: string, pathname: string, body?: unknown, raw?: Buffer): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const payload = raw ?? (body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)));
      const headers: Record<string, string> = { Authorization: `Bearer ${admin}` };
      if (payload !== undefined) headers['Content-Type'] = raw === undefined ? 'application/json' : 'application/octet-stream';
      const req = https.request(new URL(pathname, coord.url), { method, ca, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, body: text === '' ? null : JSON.parse(text) });
        });
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  /**
   * The store once it settled (quiet for longer than a controller tick): what the
   * coordinator's own timers set off (the remediation controller's first tick, liveness
   * flushes after enrollment) is not blamed on the request under test.
   */
  const settled = () => probe.settle(SETTLE_QUIET_MS, 15_000);
  const assertUnchanged = (before: Snapshot, what: string) => assert.equal(StateProbe.diff(before, probe.snapshot()), '', `${what}: the store changed`);
  /** Runs `fn`, which must be refused, and checks the store is the same after it. */
  async function refusedUnchanged(what: string, fn: () => Promise<Answer>, status: number, code: string, message?: RegExp): Promise<Answer> {
    const before = await settled();
    const r = await fn();
    assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.code, code, what);
    if (message !== undefined) assert.match(r.body.message, message, what);
    assertUnchanged(before, what);
    return r;
  }
  /** Reasons of the events about `object`, read from the store (they outlive the object). */
  function storedEvents(object: string): string[] {
    const db = new Database(path.join(coord.dataDir, 'state.db'), { readonly: true });
    try {
      return (db.prepare('SELECT reason FROM events WHERE object = ? ORDER BY id').all(object) as Array<{ reason: string }>).map((e) => e.reason);
    } finally {
      db.close();
    }
  }
  const events = async (object: string) => ((await call('GET', `/v1/${object}/events?limit=100`)).body.items as Array<{ reason: string }>).map((e) => e.reason);
  const rolloutObject = (name: string, spec: Record<string, unknown> = {}) => ({
    apiVersion: API, kind: 'Rollout', metadata: { name },
    spec: { packages: [{ package: 'containerd', version: '1.7.99' }], selector: { names: ['node-a', 'node-b'] }, strategy: { canary: { count: 1 }, soakSeconds: 30, batches: [50, 100] }, ...spec },
  });

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-objects-'));
    // A long liveness grace: the never-connected machines stay Pending, so nothing but the
    // requests under test writes to the store while the test compares it.
    coord = await startCoordinator(path.join(dir, 'coordinator'), ['--control-plane-version', 'v1.32.1', '--liveness-grace', '3600000']);
    probe = new StateProbe(coord.dataDir);
    ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
    admin = (await readFile(path.join(coord.dataDir, 'admin.credential'), 'utf8')).trim();
    const { token } = await createToken(coord.nkctlConfig, 2);
    // Two enrolled machines that never connect: rollouts select them and wait, nothing installs.
    for (const [i, name] of ['node-a', 'node-b'].entries()) {
      const r = await call('POST', '/v1/enroll', { token, identity: { machineId: `${i + 1}`.repeat(32), hostname: name, addresses: [], zone: null, labels: {} }, agentVersion: 't', publicKey: rawPublicKey(generateKeyPairSync('ed25519').publicKey) });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }
    const pushed = (await call('PUT', '/v1/artifacts?package=containerd&version=1.7.99', undefined, Buffer.alloc(64, 1))).body;
    artifact = { url: pushed.url, sha256: pushed.sha256, size: pushed.size };
    spare = (await call('PUT', '/v1/artifacts?package=containerd&version=1.7.98', undefined, Buffer.alloc(64, 2))).body.sha256;
  });

  after(async () => {
    probe?.close();
    await coord?.stop();
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(dir, { recursive: true, force: true });
  });

  test('every object carries uid, generation, resourceVersion, creationTimestamp and status.observedGeneration', async () => {
    const m = (await call('GET', '/v1/machines/node-a')).body;
    assert.match(m.metadata.uid, /^[0-9a-f-]{36}$/);
    assert.match(m.metadata.resourceVersion, /^\d+$/);
    assert.equal(m.metadata.generation, 1);
    assert.equal(m.status.observedGeneration, 1);
    const token = (await call('GET', '/v1/tokens')).body.items[0];
    assert.match(token.metadata.resourceVersion, /^\d+$/);
    assert.equal(token.status.conditions[0].type, 'Usable');
    const a = (await call('GET', '/v1/artifacts')).body.items.find((x: { sha256: string }) => x.sha256 === artifact.sha256);
    assert.match(a.metadata.uid, /^[0-9a-f-]{36}$/);
    assert.notEqual(a.metadata.uid, m.metadata.uid);
    assert.deepEqual(a.status.conditions.map((c: { type: string; status: string }) => [c.type, c.status]), [['Stored', 'True']]);
  });

  test('nkctl apply -f DIR: created, then the same files again are unchanged and write nothing', async () => {
    const objects = path.join(dir, 'objects');
    await mkdir(objects, { recursive: true });
    await writeFile(path.join(objects, '10-cpv.json'), JSON.stringify({ apiVersion: API, kind: 'ClusterPackageVersion', metadata: { name: 'cluster' }, spec: { packages: [{ name: 'containerd', version: '1.7.99', artifact }] } }));
    await writeFile(path.join(objects, '20-rule.json'), JSON.stringify({ apiVersion: API, kind: 'RemediationRule', metadata: { name: 'kubelet-down' }, spec: { fault: 'KubeletNotRunning', forSeconds: 60, ladder: [{ action: 'RestartService', target: 'kubelet.service', timeoutSeconds: 60 }, { action: 'CordonAndNotify' }], dryRun: true } }));
    // Paused in Git: it never steps on its own while the store is compared.
    await writeFile(path.join(objects, '30-rollout.json'), JSON.stringify(rolloutObject('gitops-containerd', { paused: true })));
    await writeFile(path.join(objects, 'README.md'), 'not a manifest');
    const first = await nkctlOk(coord.nkctlConfig, ['apply', '-f', objects]);
    assert.equal(first, 'clusterpackageversion/cluster created (generation 1)\nremediationrule/kubelet-down created\nrollout/gitops-containerd created\n');
    const stored = await settled();
    const eventsBefore = await events('rollouts/gitops-containerd');
    const again = await nkctl(coord.nkctlConfig, ['apply', '-f', objects]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, 'clusterpackageversion/cluster unchanged (generation 1)\nremediationrule/kubelet-down unchanged\nrollout/gitops-containerd unchanged\n');
    assertUnchanged(stored, 're-applying the same objects');
    assert.deepEqual(await events('rollouts/gitops-containerd'), eventsBefore, 'and recorded no event');
    // A real change says configured.
    await writeFile(path.join(objects, '30-rollout.json'), JSON.stringify(rolloutObject('gitops-containerd', { strategy: { canary: { count: 1 }, soakSeconds: 45, batches: [50, 100] }, paused: true })));
    assert.match(await nkctlOk(coord.nkctlConfig, ['apply', '-f', objects]), /rollout\/gitops-containerd configured\n$/);
    assert.equal((await call('GET', '/v1/rollouts/gitops-containerd')).body.metadata.generation, 2);
  });

  test('PUT /v1/rollouts/NAME: 201 on create, 200 with the same resourceVersion for the same spec; POST and rollout create still refuse the name', async () => {
    const created = await call('PUT', '/v1/rollouts/put-me', rolloutObject('put-me'));
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const meta = created.body.metadata;
    assert.equal(meta.generation, 1);
    const again = await call('PUT', '/v1/rollouts/put-me', rolloutObject('put-me'));
    assert.equal(again.status, 200);
    assert.equal(again.body.metadata.resourceVersion, (await call('GET', '/v1/rollouts/put-me')).body.metadata.resourceVersion);
    assert.equal(again.body.metadata.generation, 1);
    assert.equal(again.body.metadata.uid, meta.uid);
    // The object as served (defaults filled in, status, metadata and all) applies back unchanged.
    const served = (await call('GET', '/v1/rollouts/put-me')).body;
    const back = await call('PUT', '/v1/rollouts/put-me', served);
    assert.equal(back.status, 200, JSON.stringify(back.body));
    assert.equal(back.body.metadata.resourceVersion, served.metadata.resourceVersion);
    await refusedUnchanged('POST of an existing name', () => call('POST', '/v1/rollouts', rolloutObject('put-me')), 409, 'NK_ROLLOUT_EXISTS');
    const cli = await nkctl(coord.nkctlConfig, ['rollout', 'create', 'put-me', '--package', 'containerd=1.7.99']);
    assert.equal(cli.code, 5, cli.stderr);
    const types = (again.body.status.conditions as Array<{ type: string; observedGeneration: number }>).map((c) => c.type);
    assert.deepEqual(types, ['Progressing', 'Paused', 'Failed', 'Complete']);
    assert.equal(again.body.status.observedGeneration, 1);
  });

  test('hostile applies change nothing: stale or malformed resourceVersion, another uid, immutable fields', async () => {
    const current = (await call('GET', '/v1/rollouts/put-me')).body;
    const rv = current.metadata.resourceVersion as string;
    const withMeta = (extra: Record<string, unknown>, spec: Record<string, unknown> = { strategy: { soakSeconds: 99 } }) => {
      const o = rolloutObject('put-me', spec);
      return { ...o, metadata: { ...o.metadata, ...extra } };
    };
    await refusedUnchanged('a stale resourceVersion', () => call('PUT', '/v1/rollouts/put-me', withMeta({ resourceVersion: String(Number(rv) - 1) })), 409, 'NK_CONFLICT', new RegExp(`current one is ${rv}`));
    for (const bad of ['abc', '-1', '1e3', 42, '']) {
      await refusedUnchanged(`resourceVersion ${JSON.stringify(bad)}`, () => call('PUT', '/v1/rollouts/put-me', withMeta({ resourceVersion: bad })), 400, 'NK_OBJECT_METADATA_INVALID', /decimal string/);
    }
    await refusedUnchanged('another uid', () => call('PUT', '/v1/rollouts/put-me', withMeta({ uid: '00000000-0000-4000-8000-000000000000' })), 409, 'NK_CONFLICT', new RegExp(current.metadata.uid));
    await refusedUnchanged('a resourceVersion on a create', () => call('PUT', '/v1/rollouts/not-there', { ...rolloutObject('not-there'), metadata: { name: 'not-there', resourceVersion: '5' } }), 409, 'NK_CONFLICT');
    await refusedUnchanged('packages changed', () => call('PUT', '/v1/rollouts/put-me', rolloutObject('put-me', { packages: [{ package: 'containerd', version: '1.7.98' }] })), 422, 'NK_ROLLOUT_FIELD_IMMUTABLE', /spec\.packages/);
    await refusedUnchanged('selector changed', () => call('PUT', '/v1/rollouts/put-me', rolloutObject('put-me', { selector: { names: ['node-a'] } })), 422, 'NK_ROLLOUT_FIELD_IMMUTABLE', /spec\.selector/);
    await refusedUnchanged('a name that is not the URL', () => call('PUT', '/v1/rollouts/put-me', rolloutObject('other')), 400, 'NK_ROLLOUT_INVALID');
    const cpv = (await call('GET', '/v1/clusterpackageversion')).body;
    await refusedUnchanged('a stale CPV', () => call('PUT', '/v1/clusterpackageversion', { ...cpv, metadata: { name: 'cluster', resourceVersion: '1' }, spec: { packages: [] } }), 409, 'NK_CONFLICT');
    const rule = (await call('GET', '/v1/remediationrules')).body.items.find((r: { metadata: { name: string } }) => r.metadata.name === 'kubelet-down');
    assert.equal(rule.status.conditions[0].type, 'Accepted');
    // The rule as read back (metadata, status and all) applies unchanged.
    const readBack = await call('PUT', '/v1/remediationrules/kubelet-down', rule);
    assert.equal(readBack.status, 200, JSON.stringify(readBack.body));
    assert.equal(readBack.body.metadata.resourceVersion, rule.metadata.resourceVersion);
    await refusedUnchanged('a stale rule', () => call('PUT', '/v1/remediationrules/kubelet-down', { ...rule, metadata: { name: 'kubelet-down', resourceVersion: '1' }, spec: { ...rule.spec, forSeconds: 120 } }), 409, 'NK_CONFLICT');
    // The current resourceVersion is accepted, and the change moves the generation.
    const ok = await call('PUT', '/v1/rollouts/put-me', withMeta({ resourceVersion: rv, uid: current.metadata.uid }));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.metadata.generation, 2);
    assert.equal(ok.body.spec.strategy.soakSeconds, 99);
    assert.ok((await events('rollouts/put-me')).includes('Applied'));
  });

  test('spec.paused pauses and resumes through the controller, and the Paused condition says so', async () => {
    const paused = await call('PUT', '/v1/rollouts/put-me', rolloutObject('put-me', { strategy: { soakSeconds: 99 }, paused: true }));
    assert.equal(paused.status, 200, JSON.stringify(paused.body));
    assert.equal(paused.body.status.phase, 'Paused');
    assert.equal(paused.body.status.conditions.find((c: { type: string }) => c.type === 'Paused').status, 'True');
    const describe = await nkctlOk(coord.nkctlConfig, ['describe', 'rollout', 'put-me']);
    assert.match(describe, /Conditions:\n(.*\n)*\s+Paused\s+True\s+PausedByOperator/);
    const resumed = await call('PUT', '/v1/rollouts/put-me', rolloutObject('put-me', { strategy: { soakSeconds: 99 } }));
    assert.notEqual(resumed.body.status.phase, 'Paused');
    assert.equal(resumed.body.status.conditions.find((c: { type: string }) => c.type === 'Paused').status, 'False');
    // Created paused: held before any machine is touched.
    const held = await call('PUT', '/v1/rollouts/born-paused', rolloutObject('born-paused', { paused: true }));
    assert.equal(held.status, 201);
    assert.equal(held.body.status.phase, 'Paused');
    assert.ok(held.body.status.machines.every((m: { phase: string }) => m.phase === 'Waiting'));
  });

  test('delete: a running rollout and an artifact in use are refused unchanged; finished and unreferenced ones go, with a Deleted event', async () => {
    await refusedUnchanged('a running rollout', () => call('DELETE', '/v1/rollouts/put-me'), 409, 'NK_ROLLOUT_NOT_FINISHED', /abort it first/);
    const cli = await nkctl(coord.nkctlConfig, ['delete', 'rollout', 'put-me']);
    assert.equal(cli.code, 5);
    assert.match(cli.stderr, /NK_ROLLOUT_NOT_FINISHED/);
    await refusedUnchanged('an artifact the CPV names', () => call('DELETE', `/v1/artifacts/sha256/${artifact.sha256}`), 409, 'NK_ARTIFACT_IN_USE', /ClusterPackageVersion/);
    await nkctlOk(coord.nkctlConfig, ['rollout', 'abort', 'put-me']);
    await waitFor('the aborted rollout to hold nothing', async () => (await call('DELETE', '/v1/rollouts/put-me')).status === 200, 20_000, 200);
    assert.equal((await call('GET', '/v1/rollouts/put-me')).status, 404);
    assert.ok(storedEvents('rollout/put-me').includes('Deleted'), 'the event outlives the rollout');

    const bytes = path.join(coord.dataDir, 'artifacts', 'sha256', spare);
    assert.ok(existsSync(bytes), `the bytes are at ${bytes}`);
    assert.equal(await nkctlOk(coord.nkctlConfig, ['delete', 'artifact', `sha256:${spare}`]), `artifact/sha256:${spare} deleted\n`);
    assert.equal((await call('GET', `/v1/artifacts/sha256/${spare}`)).status, 404);
    assert.equal(existsSync(bytes), false, 'the bytes are gone too');
    assert.deepEqual(storedEvents(`artifact/${spare}`), ['Deleted']);
    await refusedUnchanged('an artifact that is gone', () => call('DELETE', `/v1/artifacts/sha256/${spare}`), 404, 'NK_ARTIFACT_NOT_FOUND');

    assert.equal(await nkctlOk(coord.nkctlConfig, ['delete', 'remediationrule', 'kubelet-down']), 'remediationrule/kubelet-down deleted\n');
    const tokenId = (await call('GET', '/v1/tokens')).body.items[0].id as string;
    assert.equal(await nkctlOk(coord.nkctlConfig, ['delete', 'token', tokenId]), `token/${tokenId} deleted\n`);
  });
});
