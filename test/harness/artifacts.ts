/**
 * Test artifacts for the installer: tar.gz packages of the kubelet stand-in at a version
 * (healthy or failing), a repackaging of Debian's containerd binary, ed25519 signing,
 * and an http server on port 0 that serves them (and misbehaves on request).
 *
 *   const a = await kubeletArtifact(dir, { version: '1.31.2' });
 *   const srv = await serveArtifacts({ '/kubelet.tgz': a.file });
 *   params.artifact = { url: srv.url('/kubelet.tgz'), sha256: a.sha256, size: a.size };
 */
import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { installStatement, type ArtifactRef, type InstallParams, type PackageManifest } from '../../packages/protocol/src/index.ts';
import { CONTAINERD_BIN } from './containerd.ts';
import { installKubeletStandin, type StandinOptions } from './kubelet-standin.ts';

const run = promisify(execFile);

export interface Artifact {
  readonly file: string;
  readonly sha256: string;
  readonly size: number;
}

async function describe(file: string): Promise<Artifact> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return { file, sha256: h.digest('hex'), size: (await stat(file)).size };
}

/** tar.gz of the files `names` in `dir` (GNU tar; gzip -1: these are test fixtures). */
async function tarGz(dir: string, names: readonly string[], out: string): Promise<Artifact> {
  await run('tar', ['-C', dir, '--use-compress-program=gzip -1', '-cf', out, '--', ...names]);
  return describe(out);
}

/** A kubelet package at `version`: `kubelet` (the stand-in wrapper) at the archive root. */
export async function kubeletArtifact(dir: string, opts: StandinOptions): Promise<Artifact> {
  await mkdir(dir, { recursive: true });
  const build = await mkdtemp(path.join(dir, 'build-'));
  try {
    await installKubeletStandin(build, opts);
    return await tarGz(path.join(build, 'usr/bin'), ['kubelet'], path.join(dir, `kubelet-${opts.version}${opts.healthz === 'fail' ? '-failing' : ''}${opts.exitAtStart === true ? '-exiting' : ''}.tar.gz`));
  } finally {
    await rm(build, { recursive: true, force: true });
  }
}

/** Debian's /usr/bin/containerd, tarred up as a "new version" of containerd. */
export async function containerdArtifact(dir: string): Promise<Artifact> {
  await mkdir(dir, { recursive: true });
  return tarGz(path.dirname(CONTAINERD_BIN), [path.basename(CONTAINERD_BIN)], path.join(dir, 'containerd.tar.gz'));
}

/** Debian's CNI plugins (/usr/lib/cni), tarred up as a cni-plugins package (flat, as upstream ships them). */
export async function cniPluginsArtifact(dir: string, binDir = '/usr/lib/cni'): Promise<Artifact> {
  await mkdir(dir, { recursive: true });
  return tarGz(binDir, ['.'], path.join(dir, 'cni-plugins.tar.gz'));
}

/** A fresh ed25519 key pair: the private key signs, the PEM public key is what agents trust. */
export function signingKey(): { privateKey: KeyObject; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** base64 ed25519 signature over the raw 32 bytes of a hex sha256 digest (the format before the install statement). */
export function signDigest(sha256: string, privateKey: KeyObject): string {
  return sign(null, Buffer.from(sha256, 'hex'), privateKey).toString('base64');
}

/** base64 ed25519 signature over the install statement of `manifest`'s package at `version` from `artifact`. */
export function signInstall(manifest: PackageManifest, version: string, artifact: Pick<Artifact, 'sha256' | 'size'>, privateKey: KeyObject): string {
  const statement = installStatement({ package: manifest.name, version, artifact: { sha256: artifact.sha256, size: artifact.size }, manifest });
  return sign(null, Buffer.from(statement, 'utf8'), privateKey).toString('base64');
}

/** How a route answers: a file, or a behaviour for failure tests. */
export type Route =
  | string
  | { readonly file: string; readonly behaviour: 'truncate' | 'stall' | 'lie-length' | 'status-500' };

export interface ArtifactServer {
  url(route: string): string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves `routes` on 127.0.0.1:0. Behaviours: `truncate` announces the full length and
 * closes after half; `stall` sends half and then nothing; `lie-length` announces half
 * the length and sends it all; `status-500` fails.
 */
export async function serveArtifacts(routes: Readonly<Record<string, Route>>): Promise<ArtifactServer> {
  const server = http.createServer((req, res) => {
    void (async () => {
      const route = routes[req.url ?? ''];
      if (route === undefined) {
        res.writeHead(404).end('not found');
        return;
      }
      const file = typeof route === 'string' ? route : route.file;
      const behaviour = typeof route === 'string' ? 'ok' : route.behaviour;
      if (behaviour === 'status-500') {
        res.writeHead(500).end('boom');
        return;
      }
      const body = await readFile(file);
      const half = body.subarray(0, Math.floor(body.length / 2));
      if (behaviour === 'ok') res.writeHead(200, { 'content-length': body.length }).end(body);
      else if (behaviour === 'lie-length') res.writeHead(200, { 'content-length': half.length }).end(body);
      else {
        res.writeHead(200, { 'content-length': body.length });
        res.write(half, () => {
          if (behaviour === 'truncate') res.destroy();
        });
      }
    })().catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url: (route) => `http://127.0.0.1:${port}${route}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The kubelet's manifest as the coordinator would send it (a supervised or systemd `kubelet.service`). */
export function kubeletManifest(healthTimeoutMs = 8000): PackageManifest {
  return { name: 'kubelet', format: 'tar.gz', links: [{ path: '/usr/bin/kubelet', target: 'kubelet' }], service: 'kubelet.service', healthProbe: 'kubelet', healthTimeoutMs };
}

/** InstallParams for `artifact` served at `url`. */
export function installParams(manifest: PackageManifest, version: string, artifact: Artifact, url: string, signature?: string): InstallParams {
  const ref: ArtifactRef = { url, sha256: artifact.sha256, size: artifact.size, ...(signature === undefined ? {} : { signature }) };
  return { package: manifest.name, version, artifact: ref, manifest };
}
