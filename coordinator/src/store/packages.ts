/**
 * The ClusterPackageVersion (one per cluster, kept whole) and the artifact catalogue.
 * Artifact bytes live on disk (artifacts/artifact-store.ts); rows here describe them.
 */
import type { StoreContext } from './context.ts';
import { parseJson } from './context.ts';
import type { ArtifactRecord, ClusterPackageVersionRecord, PackageDefault, UpdateStrategyInput } from '../model/packages.ts';

interface CpvRow { spec: string; generation: number; created_at: number; updated_at: number; uid: string | null; resource_version: number }
interface ArtifactRow { sha256: string; package: string; version: string; size: number; signature: string | null; created_at: number }

/** The cluster's desired package versions, or null before the first apply. */
export function getClusterPackageVersion(ctx: StoreContext): ClusterPackageVersionRecord | null {
  const row = ctx.stmt('SELECT * FROM cluster_package_version WHERE name = ?').get('cluster') as CpvRow | undefined;
  if (row === undefined) return null;
  const spec = parseJson<{ packages: PackageDefault[]; updateStrategy?: UpdateStrategyInput }>(row.spec, 'cluster package version');
  return {
    packages: spec.packages,
    ...(spec.updateStrategy === undefined ? {} : { updateStrategy: spec.updateStrategy }),
    generation: row.generation,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    meta: { uid: row.uid ?? '', resourceVersion: String(row.resource_version), generation: row.generation, createdAt: row.created_at },
  };
}

/**
 * Replaces the desired package versions and the default updateStrategy (absent: none);
 * the generation moves only when they change. A spec without an updateStrategy is kept
 * exactly as before it existed, so generations of stored CPVs do not move on upgrade.
 */
export function putClusterPackageVersion(ctx: StoreContext, packages: readonly PackageDefault[], updateStrategy?: UpdateStrategyInput): ClusterPackageVersionRecord {
  return ctx.tx(() => {
    const now = ctx.now();
    const before = getClusterPackageVersion(ctx);
    const specOf = (p: readonly PackageDefault[], u: UpdateStrategyInput | undefined) => JSON.stringify(u === undefined ? { packages: p } : { packages: p, updateStrategy: u });
    const spec = specOf(packages, updateStrategy);
    if (before === null) {
      ctx.stmt('INSERT INTO cluster_package_version (name, spec, generation, created_at, updated_at) VALUES (?, ?, 1, ?, ?)').run('cluster', spec, now, now);
    } else if (specOf(before.packages, before.updateStrategy) !== spec) {
      ctx.stmt('UPDATE cluster_package_version SET spec = ?, generation = generation + 1, updated_at = ? WHERE name = ?').run(spec, now, 'cluster');
    }
    return getClusterPackageVersion(ctx)!;
  });
}

const toArtifact = (r: ArtifactRow): ArtifactRecord => ({
  sha256: r.sha256,
  package: r.package,
  version: r.version,
  size: r.size,
  signature: r.signature,
  createdAt: r.created_at,
});

/** Records an artifact whose bytes are already stored; the same digest twice is one row. */
export function addArtifact(ctx: StoreContext, a: Omit<ArtifactRecord, 'createdAt'>): ArtifactRecord {
  return ctx.tx(() => {
    ctx.stmt(
      `INSERT INTO artifacts (sha256, package, version, size, signature, created_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (sha256) DO UPDATE SET package = excluded.package, version = excluded.version,
         signature = COALESCE(excluded.signature, artifacts.signature)
       -- The same push again is no write (and no new resourceVersion).
       WHERE artifacts.package IS NOT excluded.package OR artifacts.version IS NOT excluded.version
         OR (excluded.signature IS NOT NULL AND artifacts.signature IS NOT excluded.signature)`,
    ).run(a.sha256, a.package, a.version, a.size, a.signature, ctx.now());
    return getArtifact(ctx, a.sha256)!;
  });
}

export function getArtifact(ctx: StoreContext, sha256: string): ArtifactRecord | null {
  const row = ctx.stmt('SELECT * FROM artifacts WHERE sha256 = ?').get(sha256) as ArtifactRow | undefined;
  return row === undefined ? null : toArtifact(row);
}

export function listArtifacts(ctx: StoreContext): ArtifactRecord[] {
  return (ctx.stmt('SELECT * FROM artifacts ORDER BY package, created_at').all() as ArtifactRow[]).map(toArtifact);
}

/** Deletes an artifact's row (the caller checked nothing refers to it and removes the bytes); false when there was none. */
export function deleteArtifact(ctx: StoreContext, sha256: string): boolean {
  return ctx.tx(() => ctx.stmt('DELETE FROM artifacts WHERE sha256 = ?').run(sha256).changes === 1);
}
