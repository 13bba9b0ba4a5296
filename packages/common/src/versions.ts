/**
 * Reading versions as nodes report them. Real strings are messy: `Kubernetes v1.31.2`,
 * `1.6.20~ds1`, `v1.34.1-eks-abc`, `containerd github.com/containerd/containerd 1.7.1 abc`.
 * We keep the raw string and add the best semver reading, or null; never throw.
 */
import semver from 'semver';

const VERSION_TOKEN = /v?(\d+)\.(\d+)(?:\.(\d+))?([-+~][0-9A-Za-z.~+-]*)?/;

/** Best semver reading of a version string, or null when it has none. */
export function toSemver(raw: string): string | null {
  const m = VERSION_TOKEN.exec(raw);
  if (m === null) return null;
  const [, major, minor, patch = '0', rest = ''] = m;
  // Debian's `~ds1`, `+deb12u3` and the like are packaging suffixes, not prereleases.
  let suffix = '';
  if (rest.startsWith('-')) {
    const pre = rest.slice(1).split(/[~+]/)[0]?.replace(/[^0-9A-Za-z.-]/g, '') ?? '';
    if (pre !== '') suffix = `-${pre}`;
  }
  const candidate = `${Number(major)}.${Number(minor)}.${Number(patch)}${suffix}`;
  return semver.valid(candidate, { loose: false }) ?? semver.valid(`${Number(major)}.${Number(minor)}.${Number(patch)}`);
}

/** A VersionInfo for the wire: raw kept (trimmed, bounded), semver reading, source. */
export function versionInfo(raw: string, source: string): { raw: string; semver: string | null; source: string } {
  const trimmed = raw.trim().slice(0, 256);
  return { raw: trimmed, semver: toSemver(trimmed), source };
}

/** True when `a` reads as a lower semver than `b`; false when either has no semver reading. */
export function isLowerVersion(a: string, b: string): boolean {
  const sa = toSemver(a);
  const sb = toSemver(b);
  return sa !== null && sb !== null && semver.lt(sa, sb);
}
