import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PathEntry } from '@nodekeeper/api';
import { contractProblems } from './contract-check.ts';

const table: PathEntry[] = [
  { name: 'rollout', method: 'GET', path: '/v1/rollouts/{name}', access: 'read-only', summary: '', params: { name: { schema: {} as never, sample: 'r1' } }, response: { status: 200, schema: 'Rollout' } },
  { name: 'healthz', method: 'GET', path: '/healthz', access: 'none', summary: '', response: { status: 200, contentType: 'text/plain' } },
];
const rollout = { method: 'GET', pattern: /^\/v1\/rollouts\/([a-z0-9-]+)$/, name: 'rollout', access: 'read-only' as const };
const healthz = { method: 'GET', pattern: /^\/healthz$/, name: 'healthz', access: null };

test('routes that match the table have no problems (access null is the table\'s none)', () => {
  assert.deepEqual(contractProblems([rollout, healthz], table), []);
});

test('each kind of drift is named: method, access, a path the pattern refuses, a route or a row missing', () => {
  const problems = contractProblems([
    { ...rollout, method: 'PUT', access: 'admin' },
    { ...healthz, pattern: /^\/health$/ },
    { method: 'GET', pattern: /^\/v1\/new$/, name: 'new-thing', access: 'read-only' },
  ], table);
  assert.equal(problems.length, 4, problems.join('\n'));
  assert.match(problems[0]!, /route rollout: method PUT, the contract says GET/);
  assert.match(problems[1]!, /route rollout: access admin, the contract says read-only/);
  assert.match(problems[2]!, /route healthz: its pattern .* does not accept the contract's path \/healthz/);
  assert.match(problems[3]!, /route new-thing .* has no row in the contract's path table/);
  assert.deepEqual(contractProblems([rollout], table), ["the contract's GET /healthz (healthz) has no route on the server"]);
});
