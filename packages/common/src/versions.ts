/**
 * Reading versions as nodes report them. Real strings are messy: `Kubernetes v1.31.2`,
 * `1.6.20~ds1`, `v1.34.1-eks-abc`, `containerd github.com/containerd/containerd 1.7.1 abc`.
 * We keep the raw string and add the best semver reading, or null; never throw.
 */
import semver from 'semver';

const VERSION_TOKEN = /v?(\d+)\.(\d+)(?:\.(\d+))?([-+~][0-9A-Za-z.~+-]*)?/;

/**
 * Readings already made, by raw string. A fleet reports few distinct versions, and the
 * fleet's views read every machine's (the package summaries, /metrics, convergence): the
 * semver parse was the largest self time of a /metrics scrape at 19,000 machines.
 * Bounded, since agents choose these strings: only strings of up to MEMO_KEY_MAX
 * characters are kept, and past MEMO_MAX entries the memo starts again rather than grow.
 */
const memo = new Map<string, string | null>();
const MEMO_MAX = 4096;
const MEMO_KEY_MAX = 256;

/** Best semver reading of a version string, or null when it has none. */
export function toSemver(raw: string): string | null {
  const known = memo.get(raw);
  if (known !== undefined) return known;
  const reading = readSemver(raw);
  if (raw.length > MEMO_KEY_MAX) return reading;
  if (memo.size >= MEMO_MAX) memo.clear();
  memo.set(raw, reading);
  return reading;
}

function readSemver(raw: string): string | null {
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
