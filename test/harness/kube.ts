/**
 * A real Kubernetes control plane for tests, like controller-runtime's envtest: etcd,
 * kube-apiserver and (optionally) kube-controller-manager built from the published Go
 * modules by scripts/lib/kube.sh, started on loopback with generated certificates, a
 * service-account signing key, static test users and RBAC.
 *
 * One etcd can serve several API servers (a host and a member cluster), each with its
 * own etcd prefix, so a test gets two independent clusters for the price of one etcd.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { ensurePki } from '../../coordinator/src/tls/pki.ts';
import { REPO, spawnLogged, waitFor, type Proc } from './processes.ts';
import { freePort } from './supervised-node.ts';

let binDir: string | null = null;

/** Where the reference binaries are: NK_KUBE_BIN (set by scripts/test), else built now. */
export function kubeBinDir(): string {
  if (binDir !== null) return binDir;
  const fromEnv = process.env['NK_KUBE_BIN'];
  if (fromEnv && existsSync(path.join(fromEnv, 'kube-apiserver'))) return (binDir = fromEnv);
  const out = execFileSync('bash', ['-c', `source "${REPO}/scripts/lib/env.sh" && source "${REPO}/scripts/lib/kube.sh" && nk_ensure_kube >&2 && echo "$NK_KUBE_BIN"`], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
  });
  return (binDir = out.trim());
}

export type BinaryProc = Proc;

const runBinary = (file: string, args: readonly string[], logFile: string): BinaryProc => spawnLogged(file, args, logFile, { stdoutToLog: true });

export interface Etcd extends BinaryProc {
  readonly url: string;
}

/** Starts etcd on loopback (no fsync: test data only). */
export async function startEtcd(dir: string): Promise<Etcd> {
  await mkdir(dir, { recursive: true });
  const [client, peer] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${client}`;
  const p = runBinary(path.join(kubeBinDir(), 'etcd'), [
    '--name', 'test', '--data-dir', path.join(dir, 'data'),
    '--listen-client-urls', url, '--advertise-client-urls', url,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-cluster', `test=http://127.0.0.1:${peer}`,
    '--unsafe-no-fsync', '--log-level', 'warn',
  ], path.join(dir, 'etcd.log'));
  await waitFor('etcd to serve', async () => {
    if (p.child.exitCode !== null) throw new Error(`etcd exited:\n${p.log().slice(-2000)}`);
    const r = await fetch(`${url}/health`).catch(() => null);
    return r?.ok === true;
  }, 60_000, 100);
  return { ...p, url };
}

/** A static user of the test API server (token authentication). */
export interface KubeUser {
  readonly name: string;
  readonly token: string;
  readonly groups: readonly string[];
}

export interface ApiServer extends BinaryProc {
  readonly name: string;
  readonly url: string;
  readonly dir: string;
  readonly caFile: string;
  readonly caPem: string;
  /** `sha256:<hex>` of the CA's public key, as kubeadm pins it. */
  readonly caHash: string;
  readonly admin: KubeUser;
  /** Writes a kubeconfig for a token (a static user, a bootstrap token, a service-account token). */
  kubeconfig(file: string, token: string, opts?: { embedCa?: boolean }): string;
  /** The admin's kubeconfig (system:masters). */
  readonly adminKubeconfig: string;
  /** Runs the real kubectl as the admin (or with another kubeconfig); returns stdout, throws with stderr. */
  kubectl(args: readonly string[], opts?: { kubeconfig?: string; input?: string }): string;
}

export interface ApiServerOptions {
  readonly etcd: Etcd;
  /** Names this cluster; the etcd prefix and the directory use it. */
  readonly name: string;
  readonly dir: string;
  /** Static users besides the admin. */
  readonly users?: readonly KubeUser[];
}

/** Starts kube-apiserver with RBAC, bootstrap-token auth and TokenRequest; waits for /readyz. */
export async function startApiServer(o: ApiServerOptions): Promise<ApiServer> {
  const dir = o.dir;
  await mkdir(dir, { recursive: true });
  const pki = await ensurePki(path.join(dir, 'pki'), ['127.0.0.1', 'localhost', 'kubernetes', 'kubernetes.default.svc']);
  const caFile = path.join(dir, 'pki', 'ca.crt');
  const sa = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(path.join(dir, 'sa.key'), sa.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(path.join(dir, 'sa.pub'), sa.publicKey.export({ type: 'spki', format: 'pem' }));
  const admin: KubeUser = { name: 'test-admin', token: randomBytes(24).toString('hex'), groups: ['system:masters'] };
  const users = [admin, ...(o.users ?? [])];
  writeFileSync(path.join(dir, 'tokens.csv'), users.map((u, i) => `${u.token},${u.name},uid-${i},"${u.groups.join(',')}"`).join('\n') + '\n', { mode: 0o600 });
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const p = runBinary(path.join(kubeBinDir(), 'kube-apiserver'), [
    `--etcd-servers=${o.etcd.url}`, `--etcd-prefix=/${o.name}`,
    '--bind-address=127.0.0.1', `--secure-port=${port}`, '--advertise-address=127.0.0.1',
    `--cert-dir=${path.join(dir, 'pki')}`,
    `--tls-cert-file=${path.join(dir, 'pki', 'server.crt')}`, `--tls-private-key-file=${path.join(dir, 'pki', 'server.key')}`,
    `--client-ca-file=${caFile}`,
    `--token-auth-file=${path.join(dir, 'tokens.csv')}`,
    '--enable-bootstrap-token-auth',
    '--authorization-mode=RBAC',
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${path.join(dir, 'sa.pub')}`,
    `--service-account-signing-key-file=${path.join(dir, 'sa.key')}`,
    '--service-cluster-ip-range=10.96.0.0/24',
    // No controller creates default service accounts unless a test starts one; pods here run nothing.
    '--disable-admission-plugins=ServiceAccount',
    '--allow-privileged=true',
    '--v=1',
  ], path.join(dir, 'kube-apiserver.log'));
  const kubeconfig = (file: string, token: string, opts: { embedCa?: boolean } = {}) => {
    writeFileSync(file, toYaml({
      apiVersion: 'v1', kind: 'Config', 'current-context': o.name,
      clusters: [{ name: o.name, cluster: { server: url, ...(opts.embedCa === false ? {} : { 'certificate-authority-data': Buffer.from(pki.caPem).toString('base64') }) } }],
      users: [{ name: 'user', user: { token } }],
      contexts: [{ name: o.name, context: { cluster: o.name, user: 'user' } }],
    }), { mode: 0o600 });
    return file;
  };
  const adminKubeconfig = kubeconfig(path.join(dir, 'admin.kubeconfig'), admin.token);
  const kubectl = (args: readonly string[], opts: { kubeconfig?: string; input?: string } = {}) =>
    execFileSync(path.join(kubeBinDir(), 'kubectl'), ['--kubeconfig', opts.kubeconfig ?? adminKubeconfig, ...args], {
      encoding: 'utf8', input: opts.input ?? '', stdio: ['pipe', 'pipe', 'pipe'],
    });
  await waitFor(`kube-apiserver ${o.name} to be ready`, async () => {
    if (p.child.exitCode !== null) throw new Error(`kube-apiserver exited:\n${p.log().slice(-3000)}`);
    return (await httpsStatus(`${url}/readyz`, pki.caPem, admin.token)) === 200;
  }, 120_000, 250);
  return { ...p, name: o.name, url, dir, caFile, caPem: pki.caPem, caHash: pki.caHash, admin, kubeconfig, adminKubeconfig, kubectl };
}

/** GET over TLS verified against the test CA; resolves with the status code, or 0 when unreachable. */
function httpsStatus(url: string, caPem: string, token: string): Promise<number> {
  return new Promise((resolve) => {
    const req = https.get(url, { ca: caPem, headers: { Authorization: `Bearer ${token}` }, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
  });
}

/**
 * Starts kube-controller-manager with the controllers tests need (by default the
 * disruption controller, which keeps PodDisruptionBudget status, plus service accounts).
 */
export async function startControllerManager(api: ApiServer, controllers = ['disruption', 'serviceaccount']): Promise<BinaryProc> {
  const kubeconfig = api.adminKubeconfig;
  const p = runBinary(path.join(kubeBinDir(), 'kube-controller-manager'), [
    `--kubeconfig=${kubeconfig}`, `--authentication-kubeconfig=${kubeconfig}`, `--authorization-kubeconfig=${kubeconfig}`,
    `--controllers=${controllers.join(',')}`,
    '--leader-elect=false', '--bind-address=127.0.0.1', `--secure-port=${await freePort()}`,
    '--use-service-account-credentials=false', '--v=1',
  ], path.join(api.dir, 'kube-controller-manager.log'));
  return p;
}

/** Starts etcd and one API server, for tests that need only one cluster. */
export async function startControlPlane(dir: string, name = 'host'): Promise<{ etcd: Etcd; api: ApiServer; stop(): Promise<void> }> {
  const etcd = await startEtcd(path.join(dir, 'etcd'));
  const api = await startApiServer({ etcd, name, dir: path.join(dir, name) }).catch(async (err) => {
    await etcd.stop();
    throw err;
  });
  return { etcd, api, async stop() { await api.stop(); await etcd.stop(); } };
}
