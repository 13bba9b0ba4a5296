/**
 * What a `package.install` of pkg@version sends to an agent: the artifact (the
 * ClusterPackageVersion's when it names that version, else the newest pushed one, served
 * by this coordinator) and the manifest (the ClusterPackageVersion's, else built in).
 * Shared by rollouts and remediation (a reinstall of the desired version).
 */
import { AppError } from '@nodekeeper/common';
import type { InstallParams, PackageManifest } from '@nodekeeper/protocol';
import type { Store } from '../store/db.ts';
import { manifestFor } from './manifests.ts';

/** The manifest for a package; `code` when there is none. */
export function packageManifest(store: Store, pkg: string, code: string): PackageManifest {
  const own = store.getClusterPackageVersion()?.packages.find((p) => p.name === pkg)?.manifest;
  const m = manifestFor(pkg, own);
  if (m === null) throw new AppError(code, `no manifest for package "${pkg}": give one in the ClusterPackageVersion`);
  return m;
}

/** InstallParams for pkg@version; `code` when no artifact is known for it. */
export function installParamsFor(store: Store, artifactBaseUrl: string, pkg: string, version: string, code: string): InstallParams {
  const manifest = packageManifest(store, pkg, code);
  const cpvEntry = store.getClusterPackageVersion()?.packages.find((p) => p.name === pkg && p.version === version);
  if (cpvEntry !== undefined) return { package: pkg, version, artifact: { ...cpvEntry.artifact }, manifest };
  const pushed = store.listArtifacts().filter((a) => a.package === pkg && a.version === version).at(-1);
  if (pushed === undefined) {
    throw new AppError(code, `no artifact for ${pkg} ${version}: push one with "nkctl artifact push FILE --package ${pkg} --version ${version}" or name it in the ClusterPackageVersion`);
  }
  return {
    package: pkg,
    version,
    artifact: { url: `${artifactBaseUrl}/v1/artifacts/sha256/${pushed.sha256}`, sha256: pushed.sha256, size: pushed.size, ...(pushed.signature === null ? {} : { signature: pushed.signature }) },
    manifest,
  };
}
