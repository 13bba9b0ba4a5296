/**
 * The host admin's side (`nkctl host ...`, with a host-admin kubeconfig): install the
 * CRDs and base objects, issue a member's bootstrap token, remove a member. Objects
 * are applied with server-side apply, so every command can be run again safely.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CustomObjectsApi, KubernetesObjectApi, PatchStrategy, setHeaderOptions, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { AppError, caCertHash } from '@nodekeeper/common';
import { bootstrapTokenSecret, hostBaseObjects, memberObjects, type KubeObject } from './host-manifests.ts';
import { hostError, statusOf } from './kube-client.ts';
import { checkClusterName, CLUSTER_LABEL, FIELD_MANAGER, GROUP, memberClusterRole, memberNamespace, VERSION } from './names.ts';

/** The CRDs shipped in the repository (coordinator/deploy/host/crds.yaml). */
/** How often `host install` checks whether the CRDs are served yet. */
const CRD_POLL_MS = 200;

/**
 * Beside the release bundle (lib/crds.yaml, put there by scripts/release: the bundle is
 * lib/nkctl.mjs) or in the sources (coordinator/deploy/host/, two levels up from here).
 */
const CRDS_CANDIDATES = ['./crds.yaml', '../../deploy/host/crds.yaml'].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
export const CRDS_FILE = CRDS_CANDIDATES.find((p) => existsSync(p)) ?? CRDS_CANDIDATES[CRDS_CANDIDATES.length - 1]!;

export function crdObjects(): KubeObject[] {
  return parseAllDocuments(readFileSync(CRDS_FILE, 'utf8')).map((d) => d.toJS() as KubeObject);
}

const serverSideApply = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);

async function apply(api: KubernetesObjectApi, obj: KubeObject, kc?: KubeConfig): Promise<void> {
  try {
    if (obj.kind === 'CustomResourceDefinition' && kc !== undefined) {
      // Not through the typed model: its serializer drops every key it spells otherwise
      // (x-kubernetes-validations, -int-or-string, -list-type, -preserve-unknown-fields).
      const custom = kc.makeApiClient(CustomObjectsApi);
      await custom.patchClusterCustomObject({ group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', name: obj.metadata.name, body: obj, fieldManager: FIELD_MANAGER, force: true }, serverSideApply);
      return;
    }
    await api.patch(obj as KubernetesObject, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
  } catch (err) {
    throw hostError(`apply ${obj.kind} ${obj.metadata.namespace ? `${obj.metadata.namespace}/` : ''}${obj.metadata.name}`, err);
  }
}

/** The host's server URL and CA, as the admin's kubeconfig names them. */
function hostIdentity(kc: KubeConfig): { server: string; caPem: string } {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new AppError('NK_HOST_KUBECONFIG_INVALID', 'the host kubeconfig has no current cluster');
  const caPem = cluster.caData ? Buffer.from(cluster.caData, 'base64').toString('utf8') : cluster.caFile ? readFileSync(cluster.caFile, 'utf8') : null;
  if (caPem === null) throw new AppError('NK_HOST_KUBECONFIG_INVALID', 'the host kubeconfig names no CA (certificate-authority or certificate-authority-data); members pin it by hash');
  return { server: cluster.server, caPem };
}

export interface InstallProgress {
  (line: string): void;
}

/** Applies the CRDs and waits until they are served, then the base RBAC and policy. */
export async function installHost(kc: KubeConfig, progress: InstallProgress, timeoutMs = 60_000): Promise<{ caHash: string; server: string }> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const { server, caPem } = hostIdentity(kc);
  for (const crd of crdObjects()) {
    await apply(api, crd, kc);
    progress(`customresourcedefinition/${crd.metadata.name} applied`);
  }
  // Served means listable: a CRD just applied answers 404, then "storage is (re)initializing", for a moment.
  const deadline = Date.now() + timeoutMs;
  for (const crd of crdObjects()) {
    const names = (crd['spec'] as { names: { plural: string; kind: string } }).names;
    for (;;) {
      try {
        await api.list(`${GROUP}/${VERSION}`, names.kind, undefined, undefined, undefined, undefined, undefined, undefined, 1);
        break;
      } catch (err) {
        if (Date.now() > deadline) throw hostError(`CRD ${crd.metadata.name} not served after ${timeoutMs} ms`, err);
        await new Promise((r) => setTimeout(r, CRD_POLL_MS));
      }
    }
  }
  progress('CRDs served');
  const clusterInfo = stringify({
    apiVersion: 'v1', kind: 'Config',
    clusters: [{ name: '', cluster: { server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') } }],
  });
  for (const obj of hostBaseObjects(clusterInfo)) {
    await apply(api, obj);
    progress(`${obj.kind.toLowerCase()}/${obj.metadata.name} applied`);
  }
  return { caHash: caCertHash(caPem), server };
}

export interface MemberToken {
  readonly cluster: string;
  readonly token: string;
  readonly expires: string;
  readonly server: string;
  readonly caHash: string;
}

/** Prepares a member's namespace, identity and RBAC, and issues its bootstrap token. */
export async function createMemberToken(kc: KubeConfig, o: { cluster: string; ttlMs: number; description: string; now: number }): Promise<MemberToken> {
  const cluster = checkClusterName(o.cluster);
  const api = KubernetesObjectApi.makeApiClient(kc);
  const { server, caPem } = hostIdentity(kc);
  await api.read({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: `clusters.${GROUP}` } }).catch((err: unknown) => {
    if (statusOf(err) === 404) throw new AppError('NK_HOST_NOT_INSTALLED', 'the host has no nodekeeper CRDs: run `nkctl host install` first');
    throw hostError('read the Cluster CRD', err);
  });
  for (const obj of memberObjects(cluster)) await apply(api, obj);
  const expires = new Date(o.now + o.ttlMs);
  const { token, secret } = bootstrapTokenSecret(cluster, expires, o.description);
  try {
    await api.create(secret as KubernetesObject);
  } catch (err) {
    throw hostError('create the bootstrap token', err);
  }
  return { cluster, token, expires: expires.toISOString(), server, caHash: caCertHash(caPem) };
}

/** Removes a member from the host: its Cluster, namespace (Machines, Lease...), RBAC and tokens. */
export async function removeMember(kc: KubeConfig, clusterName: string): Promise<string[]> {
  const cluster = checkClusterName(clusterName);
  const api = KubernetesObjectApi.makeApiClient(kc);
  const removed: string[] = [];
  const del = async (obj: KubernetesObject & { metadata: { name: string } }) => {
    try {
      await api.delete(obj);
      removed.push(`${obj.kind!.toLowerCase()}/${obj.metadata.name}`);
    } catch (err) {
      if (statusOf(err) !== 404) throw hostError(`delete ${obj.kind} ${obj.metadata.name}`, err);
    }
  };
  await del({ apiVersion: `${GROUP}/${VERSION}`, kind: 'Cluster', metadata: { name: cluster } });
  await del({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: memberNamespace(cluster) } });
  await del({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: memberClusterRole(cluster) } });
  await del({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: memberClusterRole(cluster) } });
  const secrets = await api.list('v1', 'Secret', 'kube-system', undefined, undefined, undefined, undefined, `${CLUSTER_LABEL}=${cluster}`).catch((err: unknown) => {
    throw hostError('list bootstrap tokens', err);
  });
  for (const s of secrets.items) await del({ apiVersion: 'v1', kind: 'Secret', metadata: { name: s.metadata!.name!, namespace: 'kube-system' } });
  return removed;
}
