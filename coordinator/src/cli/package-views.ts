/**
 * Tables and texts for packages and artifacts: `get packages`, `artifact list`, and
 * what `artifact push` prints, with the ClusterPackageVersion entry to paste. Pure.
 */
import { ageSince } from './machines-view.ts';
import { toYaml } from './output.ts';
import type { Artifact as ArtifactObject, PackageSummary } from '@nodekeeper/api';
import { renderTable } from './table.ts';

/** Bytes as people read them: `512 B`, `12.3 MiB`. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) throw new RangeError(`not a byte count: ${n}`);
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return `${v.toFixed(1)} ${units[u] ?? 'TiB'}`;
}

/** `1.31.3=7,1.31.2=3`: most common first, so the straggler versions are at the end. */
export function versionsCell(versions: Readonly<Record<string, number>>): string {
  const entries = Object.entries(versions).sort(([va, a], [vb, b]) => b - a || va.localeCompare(vb));
  return entries.map(([v, n]) => `${v}=${n}`).join(',');
}

/** NAME DESIRED MACHINES AT-DESIRED HEALTHY VERSIONS */
export function renderPackages(items: readonly PackageSummary[]): string {
  return renderTable(
    ['NAME', 'DESIRED', 'MACHINES', 'AT-DESIRED', 'HEALTHY', 'VERSIONS'],
    items.map((p) => [
      p.name,
      p.desiredVersion ?? '<unset>',
      String(p.machines),
      p.desiredVersion === null ? '-' : `${p.atDesired}/${p.machines}`,
      `${p.healthy}/${p.machines}`,
      versionsCell(p.versions),
    ]),
  );
}

/** PACKAGE VERSION SHA256 SIZE SIGNED AGE (the digest shortened as git shortens commits). */
export function renderArtifacts(items: readonly ArtifactObject[], now: number): string {
  return renderTable(
    ['PACKAGE', 'VERSION', 'SHA256', 'SIZE', 'SIGNED', 'AGE'],
    items.map((a) => [a.package, a.version, a.sha256.slice(0, 12), formatBytes(a.size), a.signature === null ? 'no' : 'yes', ageSince(a.createdAt, now)]),
  );
}

/** The `spec.packages` entry that deploys this artifact. */
export function cpvEntry(a: ArtifactObject): Record<string, unknown> {
  return {
    name: a.package,
    version: a.version,
    artifact: { url: a.url, sha256: a.sha256, size: a.size, ...(a.signature === null ? {} : { signature: a.signature }) },
  };
}

/** What `artifact push` prints: the artifact, then the entry to paste into the ClusterPackageVersion. */
export function renderPushed(a: ArtifactObject, now: number): string {
  const snippet = toYaml([cpvEntry(a)]).trimEnd().split('\n').map((l) => `    ${l}`).join('\n');
  const unsigned = a.signature === null
    ? '\nThe artifact is unsigned: agents configured with trusted keys will refuse it (push with --sign KEYFILE).\n'
    : '';
  return renderArtifacts([a], now) + unsigned + '\n' +
    'To make it the cluster default, add this entry to spec.packages of the ClusterPackageVersion\n' +
    '(nkctl get cpv -o yaml > cpv.yaml; edit; nkctl apply -f cpv.yaml):\n\n' +
    snippet + '\n';
}
