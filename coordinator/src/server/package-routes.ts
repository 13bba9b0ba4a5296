/**
 * Routes for artifacts, the ClusterPackageVersion and the package summary.
 * Artifacts are streamed in and out: an upload is never held in memory.
 */
import type { IncomingMessage } from 'node:http';
import type { Artifact, ArtifactList, PackageList } from '@nodekeeper/api';
import { AppError } from '@nodekeeper/common';
import { parseClusterPackageVersionSpec, summarizePackages, toCpvObject } from '../packages/cluster-package-version.ts';
import { apiMeta, checkPreconditions, readPreconditions } from '../api/object-meta.ts';
import type { ObjectMeta } from '../store/object-meta.ts';
import type { ArtifactRecord } from '../store/types.ts';
import { httpError, readJson, refuseSkew, send, type ApiDeps, type Route } from './http-util.ts';

const VERSION = /^v?\d+\.\d+\.\d+([-+~][0-9A-Za-z.~+-]*)?$/;
const PACKAGE = /^[a-z][a-z0-9-]{0,62}$/;
/** base64 of a 64-byte ed25519 signature. */
const SIGNATURE = /^[A-Za-z0-9+/]{86}==$/;

/** Refuses an upload whose declared Content-Length is over the limit (before reading it). */
export function checkDeclaredSize(req: IncomingMessage, max: number): void {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) throw new AppError('NK_ARTIFACT_TOO_LARGE', `artifact of ${declared} bytes exceeds the limit of ${max}`);
}

export function packageRoutes(deps: ApiDeps): Route[] {
  const { store, fleet, artifacts, log } = deps;
  const artifactObject = (a: ArtifactRecord, meta: ObjectMeta | null = store.objectMeta('artifact', a.sha256)): Artifact => ({
    kind: 'Artifact',
    // Kubernetes-style metadata beside the flat fields older clients read.
    metadata: { name: `sha256:${a.sha256}`, ...(meta === null ? {} : apiMeta(meta)) },
    status: {
      observedGeneration: meta?.generation ?? 1,
      // Stored: the bytes are on disk (agents can download it), not only its row.
      conditions: [((present: boolean) => ({ type: 'Stored', status: present ? 'True' : 'False', reason: present ? 'BytesPresent' : 'BytesMissing', message: present ? '' : `no bytes at ${artifacts.path(a.sha256)}`, lastTransitionTime: new Date(a.createdAt).toISOString(), observedGeneration: meta?.generation ?? 1 }))(artifacts.has(a.sha256))],
    },
    package: a.package,
    version: a.version,
    sha256: a.sha256,
    size: a.size,
    signature: a.signature,
    url: `${deps.url()}/v1/artifacts/sha256/${a.sha256}`,
    createdAt: new Date(a.createdAt).toISOString(),
  });

  return [
    {
      method: 'PUT', pattern: /^\/v1\/artifacts$/, name: 'artifact-push', access: 'admin',
      handler: async ({ req, res, url }) => {
        const pkg = url.searchParams.get('package') ?? '';
        const version = url.searchParams.get('version') ?? '';
        const signature = req.headers['x-nodekeeper-signature'];
        if (!PACKAGE.test(pkg)) throw httpError('NK_HTTP_BAD_REQUEST', 'package must be a lower-case name such as kubelet');
        if (!VERSION.test(version)) throw httpError('NK_HTTP_BAD_REQUEST', `version "${version.slice(0, 64)}" is not a version such as 1.31.3`);
        if (signature !== undefined && (typeof signature !== 'string' || !SIGNATURE.test(signature))) {
          throw httpError('NK_HTTP_BAD_REQUEST', 'X-Nodekeeper-Signature must be a base64 ed25519 signature (64 bytes)');
        }
        checkDeclaredSize(req, deps.maxArtifactBytes);
        const { sha256, size } = await artifacts.put(req, deps.maxArtifactBytes);
        const record = store.addArtifact({ sha256, package: pkg, version, size, signature: signature ?? null });
        log.info({ package: pkg, version, sha256, size }, 'artifact stored');
        send(res, 201, artifactObject(record));
      },
    },
    {
      method: 'GET', pattern: /^\/v1\/artifacts$/, name: 'artifacts', access: 'read-only',
      handler: ({ res }) => {
        const metas = store.objectMetas('artifact');
        send(res, 200, { kind: 'ArtifactList', items: store.listArtifacts().map((a) => artifactObject(a, metas.get(a.sha256) ?? null)) } satisfies ArtifactList);
      },
    },
    {
      method: 'GET', pattern: /^\/v1\/artifacts\/sha256\/([0-9a-f]{64})$/, name: 'artifact-download', access: 'agent',
      handler: ({ res, params }) => {
        const sha = params[0] ?? '';
        const record = store.getArtifact(sha);
        if (record === null || !artifacts.has(sha)) throw httpError('NK_ARTIFACT_NOT_FOUND', `no artifact sha256:${sha}`);
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': record.size, 'X-Content-Sha256': sha });
        const stream = artifacts.read(sha);
        stream.on('error', () => res.destroy());
        stream.pipe(res);
      },
    },
    {
      method: 'GET', pattern: /^\/v1\/clusterpackageversion$/, name: 'cpv', access: 'read-only',
      handler: ({ res }) => send(res, 200, toCpvObject(store.getClusterPackageVersion(), fleet.list(), deps.cpvStatusExtras?.() ?? {})),
    },
    {
      method: 'PUT', pattern: /^\/v1\/clusterpackageversion$/, name: 'cpv-apply', access: 'admin',
      handler: async ({ req, res }) => {
        const body = await readJson(req, null);
        const pre = readPreconditions(body, 'the ClusterPackageVersion');
        const { packages, updateStrategy } = parseClusterPackageVersionSpec(body, deps.installAllowList);
        refuseSkew(packages, deps, 'ClusterPackageVersion');
        // Nothing awaits from here to the write: the precondition holds for the write.
        const before = store.getClusterPackageVersion();
        checkPreconditions(pre, before?.meta ?? null, 'the ClusterPackageVersion');
        const record = store.transaction(() => {
          const r = store.putClusterPackageVersion(packages, updateStrategy);
          // The same spec again: no write (same resourceVersion), no event.
          if (before === null || r.meta?.resourceVersion !== before.meta?.resourceVersion) {
            store.recordEvent({ object: 'clusterpackageversion/cluster', type: 'Normal', reason: 'Applied', message: `generation ${r.generation}: ${packages.map((p) => `${p.name}=${p.version}`).join(', ') || 'no packages'}` });
          }
          return r;
        });
        send(res, before === null ? 201 : 200, toCpvObject(record, fleet.list(), deps.cpvStatusExtras?.() ?? {}));
      },
    },
    {
      method: 'GET', pattern: /^\/v1\/packages$/, name: 'packages', access: 'read-only',
      handler: ({ res }) => send(res, 200, { kind: 'PackageList', items: summarizePackages(store.getClusterPackageVersion(), fleet.list()) } satisfies PackageList),
    },
  ];
}
