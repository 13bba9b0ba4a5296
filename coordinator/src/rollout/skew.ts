/**
 * Version rules of a rollout: the Kubernetes version-skew policy for kubelet, no
 * downgrade unless asked, and the order components change in on one machine.
 *
 * Version-skew policy: https://kubernetes.io/releases/version-skew-policy/#kubelet
 * kubelet must not be newer than kube-apiserver, and may be up to three minor versions
 * older (two before Kubernetes 1.28). The policy speaks of minor versions, so a kubelet
 * patch release newer than the apiserver's patch is allowed, as upstream allows it.
 */
import semver from 'semver';
import { toSemver } from '@nodekeeper/common';
import { COMPONENT_ORDER } from '@nodekeeper/protocol';

/** The minor version since which kubelet may be three minors older (else two). */
const THREE_MINOR_SKEW_SINCE = 28;

/** The semver reading of a version as nodes and specs write it (`v1.31.2`, `1.6.20~ds1`), or null. */
export function readVersion(raw: string | null | undefined): string | null {
  return raw === null || raw === undefined ? null : toSemver(raw);
}

/** Compares two raw versions by their semver readings; null when either has none. */
export function compareVersions(a: string | null | undefined, b: string | null | undefined): -1 | 0 | 1 | null {
  const x = readVersion(a);
  const y = readVersion(b);
  if (x === null || y === null) return null;
  return semver.compare(x, y);
}

/** True when `current` is the same version as `target` (by semver, else verbatim). */
export function sameVersion(current: string | null | undefined, target: string): boolean {
  if (current === null || current === undefined) return false;
  const c = compareVersions(current, target);
  return c === null ? current.trim() === target.trim() : c === 0;
}

/**
 * Why a kubelet at `kubelet` would break the version-skew policy against a control
 * plane at `controlPlane`, or null when it is within the policy.
 */
export function kubeletSkewProblem(kubelet: string, controlPlane: string | null): string | null {
  const k = readVersion(kubelet);
  if (k === null) return `kubelet version "${kubelet}" is not a semver version`;
  if (controlPlane === null) return 'the control plane (kube-apiserver) version is unknown, so kubelet cannot be checked against the version-skew policy';
  const cp = readVersion(controlPlane);
  if (cp === null) return `control plane version "${controlPlane}" is not a semver version`;
  const [km, kn, cm, cn] = [semver.major(k), semver.minor(k), semver.major(cp), semver.minor(cp)];
  if (km !== cm) return `kubelet ${kubelet} and the control plane ${controlPlane} differ in major version`;
  if (kn > cn) return `kubelet ${kubelet} would be newer than the control plane ${controlPlane}; upgrade kube-apiserver first (https://kubernetes.io/releases/version-skew-policy/)`;
  const allowed = cn >= THREE_MINOR_SKEW_SINCE ? 3 : 2;
  if (cn - kn > allowed) return `kubelet ${kubelet} would be ${cn - kn} minor versions older than the control plane ${controlPlane}; at most ${allowed} are allowed (https://kubernetes.io/releases/version-skew-policy/)`;
  return null;
}

export interface SkewInput {
  /** kube-apiserver's version, or null when unknown. */
  readonly controlPlane: string | null;
  /** Package -> target version. */
  readonly targets: Readonly<Record<string, string>>;
  /** Package -> version active now on the machine (null when none or unknown). */
  readonly current: Readonly<Record<string, string | null>>;
  readonly allowDowngrade?: boolean;
}

export interface SkewReason {
  readonly package: string;
  /** `KubeletSkew`, `Downgrade` or `UnreadableVersion`. */
  readonly reason: 'KubeletSkew' | 'Downgrade' | 'UnreadableVersion';
  readonly message: string;
}

/**
 * Checks the move of one machine from `current` to `targets`: the kubelet skew policy
 * and no downgrade (unless `allowDowngrade`). Returns every problem; [] when allowed.
 */
export function checkSkew(input: SkewInput): SkewReason[] {
  const reasons: SkewReason[] = [];
  for (const [pkg, target] of Object.entries(input.targets)) {
    if (readVersion(target) === null) {
      reasons.push({ package: pkg, reason: 'UnreadableVersion', message: `target version "${target}" of ${pkg} is not a semver version` });
      continue;
    }
    if (pkg === 'kubelet') {
      const problem = kubeletSkewProblem(target, input.controlPlane);
      if (problem !== null) reasons.push({ package: pkg, reason: 'KubeletSkew', message: problem });
    }
    const cur = input.current[pkg] ?? null;
    if (input.allowDowngrade !== true && cur !== null && compareVersions(target, cur) === -1) {
      reasons.push({ package: pkg, reason: 'Downgrade', message: `${pkg} ${target} is older than the active ${cur}; set allowDowngrade: true to downgrade` });
    }
  }
  return reasons;
}

/** Rank of a package in COMPONENT_ORDER; unknown packages come after, by name. */
function rank(pkg: string): number {
  const i = (COMPONENT_ORDER as readonly string[]).indexOf(pkg);
  return i < 0 ? COMPONENT_ORDER.length : i;
}

/**
 * Packages in the order one machine gets them: containerd, then kubelet, then
 * cni-plugins (a kubelet must never meet an older runtime than it was tested with),
 * then any other package by name. Rollbacks go in the reverse order.
 */
export function componentOrder(packages: readonly string[]): string[] {
  return [...packages].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The skew guard for versions set outside a rollout: a ClusterPackageVersion applied
 * through the API or pulled from the host, and a machine pin. Why the versions must not
 * become desired, or null: a kubelet version that breaks the version-skew policy against
 * a known control plane. An unknown control plane refuses nothing here: a desired
 * version moves nothing by itself, and whatever moves it (a rollout, a remediation
 * reinstall) checks again and refuses then.
 */
export function desiredSkewProblem(packages: ReadonlyArray<{ readonly name: string; readonly version: string }>, controlPlane: string | null): string | null {
  if (controlPlane === null) return null;
  for (const p of packages) {
    if (p.name !== 'kubelet') continue;
    const problem = kubeletSkewProblem(p.version, controlPlane);
    if (problem !== null) return problem;
  }
  return null;
}

/**
 * The skew guard for a remediation reinstall of `version` on a node whose active version
 * is `active`: null when allowed. A reinstall of the version already active moves nothing
 * and is allowed; any other kubelet version must be within the skew policy against a
 * control plane whose version is known, as for a rollout.
 */
export function reinstallSkewProblem(pkg: string, version: string, active: string | null, controlPlane: string | null): string | null {
  if (pkg !== 'kubelet' || sameVersion(active, version)) return null;
  return kubeletSkewProblem(version, controlPlane);
}
