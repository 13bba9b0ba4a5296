/**
 * Deletes of objects that have rules about when they may go (docs/declarative.md,
 * "Objects"): `DELETE /v1/rollouts/{name}` (finished ones only) and
 * `DELETE /v1/artifacts/sha256/{hex}` (only when nothing refers to it). Machines,
 * remediation rules and tokens have their own delete routes already.
 */
import { rm } from 'node:fs/promises';
import type { DeleteStatus } from '@nodekeeper/api';
import { AppError } from '@nodekeeper/common';
import type { RolloutController } from '../controllers/rollout-controller.ts';
import { NAME, httpError, readJson, send, type ApiDeps, type Route } from './http-util.ts';

/** What refers to an artifact, in words, or null when nothing does. */
export function artifactReferrer(
  sha256: string,
  artifact: { readonly package: string; readonly version: string },
  cpv: ReadonlyArray<{ readonly name: string; readonly version: string; readonly artifact: { readonly sha256: string } }>,
  machines: ReadonlyArray<{ readonly name: string; readonly packageOverrides?: Readonly<Record<string, { readonly artifact?: { readonly sha256: string } }>> }>,
  runningRollout: string | null,
): string | null {
  const entry = cpv.find((p) => p.artifact.sha256 === sha256);
  if (entry !== undefined) return `the ClusterPackageVersion (${entry.name} ${entry.version})`;
  for (const m of machines) {
    for (const [pkg, pin] of Object.entries(m.packageOverrides ?? {})) {
      if (pin.artifact?.sha256 === sha256) return `the pin of ${pkg} on machine ${m.name}`;
    }
  }
  if (runningRollout !== null) return `rollout ${runningRollout}, which installs ${artifact.package} ${artifact.version} and is not finished`;
  return null;
}

export function deleteRoutes(deps: ApiDeps, rollouts: RolloutController): Route[] {
  const { store, fleet, artifacts, log } = deps;
  return [
    {
      method: 'DELETE', pattern: new RegExp(`^/v1/rollouts/${NAME}$`), name: 'rollout-delete', access: 'admin',
      handler: async ({ req, res, params }) => {
        const name = params[0] ?? '';
        await readJson(req, null); // no body is expected; an oversized one is refused
        rollouts.delete(name);
        send(res, 200, { kind: 'Status', status: 'Success', details: { kind: 'rollouts', name }, deleted: true } satisfies DeleteStatus);
      },
    },
    {
      method: 'DELETE', pattern: /^\/v1\/artifacts\/sha256\/([0-9a-f]{64})$/, name: 'artifact-delete', access: 'admin',
      handler: async ({ req, res, params }) => {
        const sha = params[0] ?? '';
        await readJson(req, null);
        const a = store.getArtifact(sha);
        if (a === null) throw httpError('NK_ARTIFACT_NOT_FOUND', `no artifact sha256:${sha}`);
        const referrer = artifactReferrer(sha, a, store.getClusterPackageVersion()?.packages ?? [], fleet.list(), rollouts.runningWith(a.package, a.version));
        if (referrer !== null) {
          throw new AppError('NK_ARTIFACT_IN_USE', `artifact sha256:${sha} (${a.package} ${a.version}) is in use by ${referrer}; change that first`, { context: { sha256: sha, referrer } });
        }
        store.transaction(() => {
          store.deleteArtifact(sha);
          store.recordEvent({ object: `artifact/${sha}`, type: 'Normal', reason: 'Deleted', message: `artifact ${a.package} ${a.version} (${a.size} bytes) deleted` });
        });
        // The row goes first: a crash between leaves unreferenced bytes, never a row without them.
        await rm(artifacts.path(sha), { force: true });
        log.info({ sha256: sha, package: a.package, version: a.version }, 'artifact deleted');
        send(res, 200, { kind: 'Status', status: 'Success', details: { kind: 'artifacts', name: `sha256:${sha}` }, deleted: true } satisfies DeleteStatus);
      },
    },
  ];
}
