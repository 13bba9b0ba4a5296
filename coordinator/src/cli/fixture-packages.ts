/**
 * Package objects for nkctl's tests and the fixture server: the artifacts of Debian's
 * containerd and CNI plugins and of a kubelet build, the ClusterPackageVersion that
 * deploys them, and the fleet summary matching the machines of fixtures.ts (node-1
 * healthy, node-2 without CNI config, node-3 never reported, node-4 revoked).
 */
import type { Artifact as ArtifactObject, ClusterPackageVersion as ClusterPackageVersionObject, PackageSummary } from '@nodekeeper/api';

const sha = (c: string) => c.repeat(64).slice(0, 64);

/** Stored artifacts, as `GET /v1/artifacts` lists them, served from `server`. */
export function artifactsAt(server: string, now: number): ArtifactObject[] {
  const at = (ms: number) => new Date(now - ms).toISOString();
  const a = (pkg: string, version: string, digest: string, size: number, signature: string | null, age: number): ArtifactObject => ({
    kind: 'Artifact', package: pkg, version, sha256: digest, size, signature, url: `${server}/v1/artifacts/sha256/${digest}`, createdAt: at(age),
  });
  return [
    a('containerd', '1.6.20', sha('c0'), 31_457_280, null, 3 * 86_400_000),
    a('cni-plugins', '1.1.1', sha('d1'), 38_797_312, null, 3 * 86_400_000),
    a('kubelet', '1.31.2', sha('a2'), 76_546_048, 'A'.repeat(86) + '==', 2 * 86_400_000),
    a('kubelet', '1.31.3', sha('a3'), 76_611_584, 'B'.repeat(86) + '==', 3_600_000),
  ];
}

/** The ClusterPackageVersion deploying the older three artifacts. */
export function cpvAt(artifacts: readonly ArtifactObject[], packages: PackageSummary[], now: number): ClusterPackageVersionObject {
  const ref = (pkg: string, version: string) => {
    const a = artifacts.find((x) => x.package === pkg && x.version === version);
    if (a === undefined) throw new RangeError(`no fixture artifact ${pkg} ${version}`);
    return { url: a.url, sha256: a.sha256, size: a.size, ...(a.signature === null ? {} : { signature: a.signature }) };
  };
  return {
    apiVersion: 'nodekeeper.io/v1alpha1',
    kind: 'ClusterPackageVersion',
    metadata: { name: 'cluster', creationTimestamp: new Date(now - 86_400_000).toISOString(), generation: 3, resourceVersion: '3' },
    spec: {
      packages: [
        { name: 'containerd', version: '1.6.20', artifact: ref('containerd', '1.6.20') },
        { name: 'kubelet', version: '1.31.2', artifact: ref('kubelet', '1.31.2'), parameters: { 'max-pods': '110' } },
        { name: 'cni-plugins', version: '1.1.1', artifact: ref('cni-plugins', '1.1.1') },
      ],
    },
    status: { observedGeneration: 0, packages },
  };
}

/** The package summary of the fixture fleet: three machines reported, node-2 without CNI. */
export function packageSummaries(): PackageSummary[] {
  return [
    { name: 'cni-plugins', desiredVersion: '1.1.1', machines: 2, atDesired: 2, healthy: 2, versions: { '1.1.1': 2 } },
    { name: 'containerd', desiredVersion: '1.6.20', machines: 3, atDesired: 3, healthy: 3, versions: { '1.6.20': 3 } },
    { name: 'kubelet', desiredVersion: '1.31.2', machines: 3, atDesired: 2, healthy: 3, versions: { '1.31.2': 2, '1.30.6': 1 } },
  ];
}
