/**
 * --advertise-url is what nodes are told: artifact URLs and the join command use it,
 * the generated serving certificate names its host (re-issued, and logged, when it
 * changes), and an agent dialing that name verifies TLS against the pinned CA. A
 * coordinator on every interface without it refuses to start (a guessed address would
 * reach no remote node). 127.0.0.2 stands for "the name nodes use": it is loopback, so
 * the test needs no DNS, and it is not among the certificate's default names. A kubelet
 * rollout shows the install command carries the advertised artifact URL and the agent
 * downloads from it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import Database from 'better-sqlite3';
import { kubeletArtifact } from './harness/artifacts.ts';
import { startContainerdWithNetwork, type RunningContainerd } from './harness/containerd.ts';
import { BIN, createToken, nkctl, nkctlOk, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { freePort, makeSupervisedNode, startNodeAgent, stopNode, type SupervisedNode } from './harness/supervised-node.ts';

describe('--advertise-url: certificate names, artifact URLs, agents', { timeout: 120_000 }, () => {
  let dir: string;
  let coord: CoordinatorProc | undefined;
  let node: SupervisedNode | undefined;
  let containerd: RunningContainerd | undefined;
  let port: number;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nk-advertise-'));
    port = await freePort();
    containerd = await startContainerdWithNetwork(path.join(dir, 'containerd'));
  });

  after(async () => {
    if (node !== undefined) await stopNode(node);
    await coord?.stop();
    await containerd?.stop();
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(dir, { recursive: true, force: true });
  });

  test('on every interface with no --advertise-url: refused, naming the flag, nothing created', () => {
    const dataDir = path.join(dir, 'refused');
    const r = spawnSync(process.execPath, [BIN.coordinator, '--data-dir', dataDir, '--host', '0.0.0.0', '--port', '0'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /NK_ADVERTISE_URL_REQUIRED/);
    assert.match(r.stderr, /--advertise-url https:\/\/NAME:PORT/);
    assert.equal(existsSync(dataDir), false, 'no data dir, CA or credential made');
  });

  test('the advertised host is in the certificate, the artifact URLs and the join command; an agent dialing it verifies TLS', async () => {
    const advertise = `https://127.0.0.2:${port}`;
    coord = await startCoordinator(path.join(dir, 'coordinator'), ['--host', '0.0.0.0', '--port', String(port), '--advertise-url', advertise, '--heartbeat-interval', '500', '--liveness-grace', '5000', '--liveness-recover', '500', '--control-plane-version', 'v1.32.1']);
    assert.equal(coord.url, advertise);
    const cert = new X509Certificate(await readFile(path.join(coord.dataDir, 'pki', 'server.crt')));
    assert.equal(cert.checkIP('127.0.0.2'), '127.0.0.2', `SANs: ${cert.subjectAltName}`);
    assert.ok(cert.checkIssued(new X509Certificate(await readFile(path.join(coord.dataDir, 'ca.crt')))));

    // nkctl's config (written by the coordinator) uses the advertised URL, so does the join command.
    const created = await nkctl(coord.nkctlConfig, ['token', 'create', '--uses', '2', '--ttl', '1h']);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, new RegExp(`--server ${advertise.replace(/\./g, '\\.')} --token`));

    const artifact = path.join(dir, 'blob.tar.gz');
    await writeFile(artifact, 'not really a tarball');
    const pushed = JSON.parse(await nkctlOk(coord.nkctlConfig, ['artifact', 'push', artifact, '--package', 'kubelet', '--version', '1.31.3', '-o', 'json'])) as { url: string };
    assert.ok(pushed.url.startsWith(`${advertise}/v1/artifacts/sha256/`), pushed.url);

    // TLS to the advertised address verifies with the CA alone (hostname checked).
    const ca = await readFile(path.join(coord.dataDir, 'ca.crt'), 'utf8');
    const authorized = await new Promise<boolean>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.2', port, ca }, () => {
        resolve(s.authorized);
        s.end();
      });
      s.on('error', reject);
    });
    assert.equal(authorized, true);

    const { token, caCertHash } = await createToken(coord.nkctlConfig, 1);
    node = await makeSupervisedNode(dir, { name: 'node-adv', machineId: 'a'.repeat(32), kubeletVersion: 'v1.31.2', runtimeSocket: containerd!.socket });
    startNodeAgent(node, { server: advertise, token, caHash: caCertHash });
    await waitFor('the agent enrolled over the advertised name and Ready', async () => {
      const m = JSON.parse(await nkctlOk(coord!.nkctlConfig, ['get', 'machines', 'node-adv', '-o', 'json'])) as { status: { phase: string } };
      return m.status.phase === 'Ready';
    }, 60_000);

    // An install command's artifact URL is the advertised one, and the agent downloads it there.
    const kubelet = await kubeletArtifact(path.join(dir, 'artifacts'), { version: 'v1.31.3' });
    await nkctlOk(coord.nkctlConfig, ['artifact', 'push', kubelet.file, '--package', 'kubelet', '--version', '1.31.3']);
    await nkctlOk(coord.nkctlConfig, ['rollout', 'create', 'kubelet-adv', '--package', 'kubelet=1.31.3', '--canary', '1', '--soak', '5s']);
    const watch = await nkctl(coord.nkctlConfig, ['rollout', 'status', 'kubelet-adv', '-w', '--interval', '500ms']);
    assert.equal(watch.code, 0, `${watch.stdout}\n${watch.stderr}`);
    const db = new Database(path.join(coord.dataDir, 'state.db'), { readonly: true });
    try {
      const rows = db.prepare("SELECT params FROM commands WHERE kind = 'package.install'").all() as Array<{ params: string }>;
      assert.equal(rows.length, 1);
      assert.ok((JSON.parse(rows[0]!.params) as { artifact: { url: string } }).artifact.url.startsWith(`${advertise}/v1/artifacts/sha256/`), rows[0]!.params);
    } finally {
      db.close();
    }
  });

  test('a new advertised host at a later start re-issues the serving certificate (same CA), and says so', async () => {
    assert.ok(coord !== undefined, 'runs after the test above');
    const before = coord.caHash;
    await coord.stop();
    const advertise = `https://127.0.0.3:${port}`;
    coord = await startCoordinator(coord.dataDir, ['--host', '0.0.0.0', '--port', String(port), '--advertise-url', advertise, '--liveness-grace', '600000']);
    assert.equal(coord.caHash, before, 'the CA (what agents pin) is kept');
    const cert = new X509Certificate(await readFile(path.join(coord.dataDir, 'pki', 'server.crt')));
    assert.equal(cert.checkIP('127.0.0.3'), '127.0.0.3', `SANs: ${cert.subjectAltName}`);
    await waitFor('the re-issue logged with its reason', () => /serving certificate issued/.test(coord!.log()) && /names missing from it: 127\.0\.0\.3"/.test(coord!.log()));

    // The same names at the next start: the certificate is kept (::1 once compared as
    // text never matched the SAN's 0:0:0:0:0:0:0:1, and every start re-issued it).
    const issuedLines = () => coord!.log().split('\n').filter((l) => l.includes('serving certificate issued')).length;
    const issued = issuedLines();
    await coord.stop();
    coord = await startCoordinator(coord.dataDir, ['--host', '0.0.0.0', '--port', String(port), '--advertise-url', advertise, '--liveness-grace', '600000']);
    assert.equal(issuedLines(), issued, 'no re-issue when nothing changed');
    assert.equal(new X509Certificate(await readFile(path.join(coord.dataDir, 'pki', 'server.crt'))).serialNumber, cert.serialNumber);
  });
});
