/**
 * The host bootstrap token is a secret of the host cluster: it must reach only a server
 * that proved it holds a certificate issued by the pinned CA. An attacker in the path
 * (a real TLS server on loopback, with a certificate of its own CA) records every
 * credential it is sent while `nkctl register` runs against it through a real
 * coordinator; it must see none, and the registration fails with NK_HOST_CA_MISMATCH.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { ensurePki, type TlsMaterial } from '../coordinator/src/tls/pki.ts';
import { nkctl, startCoordinator, type CoordinatorProc } from './harness/processes.ts';

const HOST_TOKEN = 'abcdef.0123456789abcdef';

/** A cluster-info ConfigMap whose kubeconfig names `caPem`, as kube-public holds it. */
function clusterInfo(server: string, caPem: string): string {
  const kubeconfig = toYaml({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: '', cluster: { server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') } }] });
  return JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cluster-info', namespace: 'kube-public' }, data: { kubeconfig } });
}

interface Impostor {
  readonly url: string;
  /** Every Authorization header it was sent, with the path. */
  readonly seen: Array<{ path: string; authorization: string | undefined }>;
  close(): Promise<void>;
}

/** An https server with `tls`'s certificate that answers like a kube-apiserver would. */
async function impostor(tls: TlsMaterial, servedCaPem: () => string): Promise<Impostor> {
  const seen: Impostor['seen'] = [];
  const server = https.createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    seen.push({ path: req.url ?? '', authorization: req.headers.authorization });
    res.setHeader('Content-Type', 'application/json');
    if (req.url?.endsWith('/configmaps/cluster-info')) res.end(clusterInfo(url, servedCaPem()));
    else res.end(JSON.stringify({ status: { token: 'stolen-session', expirationTimestamp: new Date(Date.now() + 3_600_000).toISOString() } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    seen,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

describe('the host bootstrap token is sent only after the CA pin is checked', { timeout: 60_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc;
  let genuine: TlsMaterial;
  let attacker: TlsMaterial;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-host-pin-'));
    genuine = await ensurePki(path.join(dir, 'genuine-host'), ['127.0.0.1']);
    attacker = await ensurePki(path.join(dir, 'attacker'), ['127.0.0.1']);
    coord = await startCoordinator(path.join(dir, 'coordinator'));
  });

  after(async () => {
    await coord?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const cases: Array<[string, () => string]> = [
    // The genuine CA is public (it is in cluster-info): an impostor can serve it, and
    // the pin then matches; only the handshake shows the impostor's certificate.
    ['an impostor that serves the genuine (public) CA in its cluster-info', () => genuine.caPem],
    ['an impostor that serves its own CA', () => attacker.caPem],
  ];
  for (const [name, served] of cases) {
    test(`${name}: nkctl register fails with NK_HOST_CA_MISMATCH and the impostor never sees the token`, async () => {
      const host = await impostor(attacker, served);
      try {
        const r = await nkctl(coord.nkctlConfig, ['register', '--cluster', 'alpha', '--host-server', host.url, '--host-token', HOST_TOKEN, '--discovery-ca-hash', genuine.caHash]);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /NK_HOST_CA_MISMATCH/);
        const leaked = host.seen.filter((s) => s.authorization !== undefined);
        assert.deepEqual(leaked, [], 'no credential reached the impostor');
        assert.ok(host.seen.length <= 1, 'at most the anonymous discovery read');
        assert.match((await nkctl(coord.nkctlConfig, ['host', 'status'])).stdout, /Not registered/);
      } finally {
        await host.close();
      }
    });
  }

  test('the genuine host: discovery is anonymous, and the token goes only over a connection verified against the pinned CA', async () => {
    const host = await impostor(genuine, () => genuine.caPem);
    try {
      const r = await nkctl(coord.nkctlConfig, ['register', '--cluster', 'alpha', '--host-server', host.url, '--host-token', HOST_TOKEN, '--discovery-ca-hash', genuine.caHash, '-o', 'json']);
      // The stand-in host answers nothing beyond the TokenRequest: registration may stop
      // at the next step; what matters here is who was sent what.
      const discovery = host.seen.filter((s) => s.path.endsWith('/configmaps/cluster-info'));
      assert.equal(discovery.length, 1, r.stderr);
      assert.equal(discovery[0]!.authorization, undefined, 'cluster-info is read without the token');
      const tokenRequest = host.seen.find((s) => s.path.endsWith('/serviceaccounts/nodekeeper-member/token'));
      assert.equal(tokenRequest?.authorization, `Bearer ${HOST_TOKEN}`, 'the TokenRequest carried the bootstrap token');
    } finally {
      await host.close();
      await nkctl(coord.nkctlConfig, ['unregister', '--local-only']);
    }
  });
});
