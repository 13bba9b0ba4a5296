/**
 * MemberCluster tells /metrics how long each drain took and how it ended, against a
 * stand-in for the member's API server (a real HTTP server on port 0 at the edge): an
 * empty node drains at once (`ok`); a server that refuses the pod list ends the drain
 * with its error code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '@nodekeeper/common';
import { MemberCluster } from '../member/member-cluster.ts';

async function apiServer(answer: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(answer);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

function member(url: string, drained: (seconds: number, result: string) => void): MemberCluster {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'm', server: url, skipTLSVerify: true }], users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'm', cluster: 'm', user: 'u' }], currentContext: 'm',
  });
  return new MemberCluster(kc, { log: createLogger({ name: 'test', level: 'silent' }), drainTimeoutMs: 5_000, drained });
}

const options = { force: false, deleteEmptyDirData: false, timeoutMs: 5_000, gracePeriodSeconds: null };

test('a drain is timed, with its result: ok, or the error code', async () => {
  let refuse = false;
  const api = await apiServer((req, res) => {
    res.setHeader('Content-Type', 'application/json');
    if (refuse) {
      res.statusCode = 500;
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'etcd is down', code: 500 }));
      return;
    }
    res.end(JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: {}, items: [] }));
  });
  const seen: Array<[number, string]> = [];
  const m = member(api.url, (s, r) => seen.push([s, r]));
  try {
    assert.deepEqual(await m.drain('node-1', options), { evicted: [], skipped: [], refused: [] });
    refuse = true;
    const err = await m.drain('node-1', options).then(() => null, (e: unknown) => e as { code?: string });
    assert.ok(err?.code?.startsWith('NK_MEMBER_'), `a member API error, got ${JSON.stringify(err)}`);
    assert.deepEqual(seen.map(([, r]) => r), ['ok', err!.code]);
    for (const [s] of seen) assert.ok(s >= 0 && s < 5, `seconds: ${s}`);
  } finally {
    m.stop();
    await api.close();
  }
});
