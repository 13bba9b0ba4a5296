/**
 * The API contract against a real coordinator (one process, port 0, a temp data dir):
 *   - `/openapi/v3` serves the document generated from @nodekeeper/api, to a read-only
 *     credential, and refuses without one;
 *   - drift: every operation of the document is a route of the server with the same
 *     method and access (probed without a credential, with a read-only one), and a path
 *     of the document answers no other method;
 *   - real answers (machine list with a reporting machine, a rollout, every list, an
 *     error body) pass TypeBox's Value.Check against their schemas in the contract.
 * The server also refuses to start when its routes differ from the table (createApi).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { WebSocket } from 'ws';
import { API_VERSION, ErrorBody, PATHS, SCHEMAS, openApiDocument, samplePath, type PathEntry } from '@nodekeeper/api';
import type { MachineIdentity } from '@nodekeeper/protocol';
import { sampleReport } from '@nodekeeper/protocol/testing';
import { enrollByHand } from './harness/machine-key.ts';
import { startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';

interface Answer {
  readonly status: number;
  readonly type: string;
  readonly text: string;
}

describe('the API contract against a real coordinator', { timeout: 120_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc;
  let ca: string;
  let admin: string;
  let readOnly: string;
  let ws: WebSocket | null = null;

  const call = (method: string, target: string, credential?: string, body?: unknown) =>
    new Promise<Answer>((resolve, reject) => {
      const headers: Record<string, string> = body === undefined ? {} : { 'Content-Type': 'application/json' };
      if (credential !== undefined) headers['Authorization'] = `Bearer ${credential}`;
      const req = https.request(new URL(target, coord.url), { method, ca, headers }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), text }));
      });
      req.on('error', reject);
      req.end(body === undefined ? undefined : Buffer.isBuffer(body) ? body : JSON.stringify(body));
    });
  const json = (a: Answer): any => JSON.parse(a.text);
  /** Value.Check, with the first error named when it fails. */
  const conforms = (schema: (typeof SCHEMAS)[keyof typeof SCHEMAS], value: unknown, what: string) => {
    const first = Value.Errors(schema, value).First();
    assert.equal(first, undefined, `${what} does not match its schema: ${first?.path} ${first?.message} (value ${JSON.stringify(first?.value)?.slice(0, 200)})`);
  };
  const identity = (hostname: string): MachineIdentity => ({ machineId: 'c'.repeat(32), hostname, addresses: ['10.0.0.7'], zone: 'z1', labels: { pool: 'a' } });

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-openapi-'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), ['--liveness-grace', '600000', '--flush-interval', '100', '--control-plane-version', 'v1.32.1']);
    ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
    admin = (await readFile(path.join(coord.dataDir, 'admin.credential'), 'utf8')).trim();
    const cred = await call('POST', '/v1/apicredentials', admin, { role: 'read-only', description: 'openapi test' });
    assert.equal(cred.status, 201, cred.text);
    readOnly = json(cred).credential;

    // One machine that reports, so the Machine checked below has every status section.
    const token = await call('POST', '/v1/tokens', admin, { uses: 1 });
    const enrolled = await enrollByHand(coord.url, ca, json(token).token, identity('node-api'));
    assert.equal(enrolled.status, 201);
    ws = new WebSocket(`${coord.url.replace('https', 'wss')}/v1/agent/connect`, { ca, headers: { Authorization: `Bearer ${enrolled.body.credential}` } });
    await new Promise((resolve, reject) => ws!.once('open', resolve).once('error', reject));
    ws.send(JSON.stringify({ type: 'hello', minProtocolVersion: 1, maxProtocolVersion: 1, agentVersion: 'test', identity: identity('node-api') }));
    ws.send(JSON.stringify({ type: 'report', seq: 1, full: true, report: { ...sampleReport, identity: identity('node-api') } }));
    await waitFor('the report to reach the API', async () => json(await call('GET', '/v1/machines/node-api', readOnly)).status?.kubelet !== undefined);
  });

  after(async () => {
    ws?.close();
    await coord?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('GET /openapi/v3 serves the contract to a read-only credential, and to nobody without one', async () => {
    const doc = await call('GET', '/openapi/v3', readOnly);
    assert.equal(doc.status, 200);
    assert.match(doc.type, /^application\/json/);
    assert.deepEqual(json(doc), openApiDocument(), 'the document is the contract, whole');
    assert.equal(json(doc).openapi, '3.1.0');
    assert.equal(json(doc).info.version, API_VERSION);

    const anonymous = await call('GET', '/openapi/v3');
    assert.equal(anonymous.status, 401);
    assert.equal(json(anonymous).code, 'NK_AUTH_CREDENTIAL_MISSING');
    const forged = await call('GET', '/openapi/v3', 'nka.0000000000000000.not-a-secret');
    assert.equal(forged.status, 401);
    assert.equal(json(forged).code, 'NK_AUTH_CREDENTIAL_INVALID');
    const posted = await call('POST', '/openapi/v3', admin, {});
    assert.equal(posted.status, 405);
    assert.equal(json(posted).code, 'NK_HTTP_METHOD_NOT_ALLOWED');
    const below = await call('GET', '/openapi/v3/paths', readOnly);
    assert.equal(below.status, 404);
    assert.equal(json(below).code, 'NK_HTTP_NOT_FOUND');
  });

  test('no drift: every operation of the document is a server route with the same method and access', async () => {
    const doc = json(await call('GET', '/openapi/v3', readOnly)) as { paths: Record<string, Record<string, { 'x-nodekeeper-access': string; 'x-nodekeeper-route': string }>> };
    const ops = Object.entries(doc.paths).flatMap(([p, methods]) => Object.entries(methods).map(([m, op]) => ({ p, m: m.toUpperCase(), op })));
    assert.equal(ops.length, PATHS.length);
    const problems: string[] = [];
    for (const { p, m, op } of ops) {
      const entry = PATHS.find((e) => e.path === p && e.method === m) as PathEntry;
      const target = samplePath(entry);
      const access = op['x-nodekeeper-access'];
      if (access === 'none') {
        // The route answers (a bad or missing body is a 400, not a 404 or 405). Enrollment is not probed: it would count as a failure.
        if (entry.name === 'enroll') continue;
        const a = await call(m, target);
        // Sign-in takes no session but checks the credential it exchanges itself: its answer without one says so.
        if (entry.name === 'session-create') {
          if (a.status !== 401 || json(a).code !== 'NK_AUTH_CREDENTIAL_MISSING') problems.push(`${m} ${p} without a credential: ${a.status} ${a.text.slice(0, 120)}`);
          continue;
        }
        if (a.status === 404 && a.text.includes('NK_HTTP_NOT_FOUND') || a.status === 405 || a.status === 401) problems.push(`${m} ${p}: ${a.status} ${a.text.slice(0, 120)}`);
        continue;
      }
      // A route that needs a credential says so; no route answers 404 NK_HTTP_NOT_FOUND or 405.
      const bare = await call(m, target);
      if (bare.status !== 401 || json(bare).code !== 'NK_AUTH_CREDENTIAL_MISSING') problems.push(`${m} ${p} without a credential: ${bare.status} ${bare.text.slice(0, 120)}`);
      if (access === 'admin') {
        // Read-only is refused before anything happens: nothing is changed by this probe.
        const ro = await call(m, target, readOnly);
        if (ro.status !== 403 || json(ro).code !== 'NK_AUTH_FORBIDDEN') problems.push(`${m} ${p} (admin) with a read-only credential: ${ro.status} ${ro.text.slice(0, 120)}`);
      } else if (m === 'GET') {
        const ro = await call(m, target, readOnly);
        const code = ro.type.startsWith('application/json') && ro.status >= 400 ? json(ro).code : null;
        if ([401, 403, 405].includes(ro.status) || code === 'NK_HTTP_NOT_FOUND') problems.push(`${m} ${p} (${access}) with a read-only credential: ${ro.status} ${ro.text.slice(0, 120)}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  test('no undocumented methods: a documented path answers 405 to every other method', async () => {
    const problems: string[] = [];
    for (const p of new Set(PATHS.map((e) => e.path))) {
      const rows = PATHS.filter((e) => e.path === p);
      const target = samplePath(rows[0]!);
      // A method documented on a templated path that takes this one too (GET /v1/remediations/{name} takes /v1/remediations/pause) is that route.
      const elsewhere = (m: string) => PATHS.some((e) => e.method === m && new RegExp(`^${e.path.replace(/\{[a-zA-Z]+\}/g, '[^/]+')}$`).test(target));
      for (const m of ['GET', 'POST', 'PUT', 'DELETE'].filter((x) => !elsewhere(x))) {
        const a = await call(m, target, readOnly);
        if (a.status !== 405) problems.push(`${m} ${p}: ${a.status} ${a.text.slice(0, 120)}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  test('real answers match their schemas: every list, a machine that reports, a rollout, an error body', async () => {
    // Every GET without parameters that answers JSON: the lists and the singletons.
    // (The session's own GET answers only a session cookie: it is checked after a sign-in below.)
    for (const e of PATHS.filter((x) => x.method === 'GET' && x.params === undefined && 'schema' in x.response && x.name !== 'session')) {
      const a = await call('GET', e.path, admin);
      assert.equal(a.status, 200, `${e.path}: ${a.text.slice(0, 200)}`);
      conforms(SCHEMAS[(e.response as { schema: keyof typeof SCHEMAS }).schema], json(a), `GET ${e.path}`);
    }
    const signedIn = await call('POST', '/v1/sessions', readOnly);
    assert.equal(signedIn.status, 201, signedIn.text);
    conforms(SCHEMAS.Session, json(signedIn), 'POST /v1/sessions');
    const machines = json(await call('GET', '/v1/machines', readOnly));
    assert.equal(machines.items.length, 1);
    assert.ok(machines.items[0].status.kubelet !== undefined && machines.items[0].status.host !== undefined, 'the reported sections are there to be checked');
    conforms(SCHEMAS.Machine, json(await call('GET', '/v1/machines/node-api', readOnly)), 'GET /v1/machines/node-api');
    conforms(SCHEMAS.EventList, json(await call('GET', '/v1/machines/node-api/events', readOnly)), 'machine events');

    const pushed = await call('PUT', '/v1/artifacts?package=kubelet&version=1.31.3', admin, Buffer.alloc(1000, 1));
    assert.equal(pushed.status, 201, pushed.text);
    conforms(SCHEMAS.Artifact, json(pushed), 'PUT /v1/artifacts');
    const created = await call('POST', '/v1/rollouts', admin, {
      apiVersion: API_VERSION, kind: 'Rollout', metadata: { name: 'contract' },
      spec: { packages: [{ package: 'kubelet', version: '1.31.3' }], selector: { names: ['node-api'] }, strategy: { canary: { count: 0 }, batches: [100] } },
    });
    assert.equal(created.status, 201, created.text);
    conforms(SCHEMAS.RolloutInput, { apiVersion: API_VERSION, kind: 'Rollout', metadata: { name: 'x' }, spec: { packages: [{ package: 'kubelet', version: '1.31.3' }] } }, 'a minimal rollout body');
    conforms(SCHEMAS.Rollout, json(created), 'POST /v1/rollouts');
    conforms(SCHEMAS.Rollout, json(await call('GET', '/v1/rollouts/contract', readOnly)), 'GET /v1/rollouts/contract');
    conforms(SCHEMAS.RolloutList, json(await call('GET', '/v1/rollouts', readOnly)), 'GET /v1/rollouts');
    conforms(SCHEMAS.Remediation, json(await call('GET', '/v1/remediations/node-api', readOnly)), 'GET /v1/remediations/node-api');

    const missing = await call('GET', '/v1/rollouts/no-such-rollout', readOnly);
    assert.equal(missing.status, 404);
    conforms(ErrorBody, json(missing), 'a 404 body');
    const bad = await call('POST', '/v1/rollouts', admin, { apiVersion: API_VERSION, kind: 'Rollout', metadata: { name: 'bad' }, spec: { packages: [{ package: 'kubelet', version: 'x' }] } });
    assert.equal(bad.status, 400);
    conforms(ErrorBody, json(bad), 'a 400 body');
    assert.equal(json(await call('GET', '/v1/rollouts/bad', readOnly)).code, 'NK_ROLLOUT_NOT_FOUND', 'the refused body changed nothing');
  });
});
