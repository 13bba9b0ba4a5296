/**
 * Refusal at apply (architecture invariant 9): a package manifest that breaks the install
 * rules (packages/protocol install-policy.ts: link paths on the allow-list, targets inside
 * the version directory, `*.service` units) is refused when it enters the coordinator,
 * by a ClusterPackageVersion apply, a pin, or a host ClusterPackageVersion, with the JSON
 * path of the bad field, and nothing is stored. Agents check again; this keeps a bad
 * manifest from ever being sent. Pure.
 */
import { AppError } from '@nodekeeper/common';
import { DEFAULT_INSTALL_ALLOW_LIST, manifestProblems, withExtras, type InstallAllowList, type PackageManifest } from '@nodekeeper/protocol';

/** The coordinator's allow-list: the built-in packages' paths and services plus its own flags. */
export function coordinatorAllowList(extra: { paths?: readonly string[]; services?: readonly string[] } = {}): InstallAllowList {
  return withExtras(DEFAULT_INSTALL_ALLOW_LIST, { paths: extra.paths ?? [], services: extra.services ?? [] });
}

/**
 * Throws the first broken rule of `manifest` as an AppError with its code (e.g.
 * NK_INSTALL_PATH_NOT_ALLOWED, HTTP 400) and `context.path`, the field's JSON path under
 * `at` (e.g. `spec.packages[0].manifest` -> `spec.packages[0].manifest.links[0].target`).
 */
export function checkManifestAtApply(manifest: PackageManifest, allow: InstallAllowList, at: string): void {
  const first = manifestProblems(manifest, allow)[0];
  if (first === undefined) return;
  const path = `${at}.${first.path}`;
  throw new AppError(first.code, `${path}: ${first.message}`, { context: { path } });
}
