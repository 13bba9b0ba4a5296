/**
 * Pulling desired versions authored on the host: which host ClusterPackageVersion
 * objects to apply to the member's own record, which to refuse and why. Pure.
 *
 * The member's store stays the source of truth for its own operation: an accepted host
 * object replaces the versions of the packages it names and leaves the others alone; a
 * deleted host object changes nothing; a host that cannot be reached stops nothing.
 * Each host generation is judged once (status.observedGeneration records it).
 */
import { AppError } from '@nodekeeper/common';
import type { InstallAllowList } from '@nodekeeper/protocol';
import { parseHostClusterPackageVersion } from '../packages/cluster-package-version.ts';
import { coordinatorAllowList } from '../packages/manifest-policy.ts';
import { desiredSkewProblem } from '../rollout/skew.ts';
import type { PackageDefault } from '../model/packages.ts';
import { API_VERSION } from './names.ts';

export interface HostCpv {
  readonly metadata: { readonly name: string; readonly generation?: number };
  readonly spec?: unknown;
  readonly status?: { readonly observedGeneration?: number };
}

export type CpvVerdict =
  | { readonly name: string; readonly generation: number; readonly accepted: true; readonly packages: PackageDefault[] }
  | { readonly name: string; readonly generation: number; readonly accepted: false; readonly reason: string; readonly message: string };

/**
 * Verdicts for the host objects whose generation has not been judged yet, in name
 * order. A package named by two host objects is taken from the first and refused in
 * the second (reason Conflict).
 */
export function judgeHostCpvs(objects: readonly HostCpv[], controlPlaneVersion: string | null, allow: InstallAllowList = coordinatorAllowList()): CpvVerdict[] {
  const sorted = [...objects].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const owner = new Map<string, string>();
  const verdicts: CpvVerdict[] = [];
  for (const obj of sorted) {
    const name = obj.metadata.name;
    const generation = obj.metadata.generation ?? 0;
    const judged = obj.status?.observedGeneration === generation;
    const verdict = judge(obj, owner, controlPlaneVersion, allow);
    if (verdict.accepted) for (const p of verdict.packages) owner.set(p.name, name);
    if (!judged) verdicts.push(verdict);
  }
  return verdicts;
}

function judge(obj: HostCpv, owner: ReadonlyMap<string, string>, controlPlaneVersion: string | null, allow: InstallAllowList): CpvVerdict {
  const name = obj.metadata.name;
  let packages: PackageDefault[];
  try {
    packages = parseHostClusterPackageVersion({ apiVersion: API_VERSION, kind: 'ClusterPackageVersion', spec: obj.spec }, allow);
  } catch (err) {
    // A manifest outside the install rules is NotAllowed (its code and field in the message); anything else Invalid.
    if (err instanceof AppError && err.code !== 'NK_CPV_INVALID') return refuse(obj, 'NotAllowed', `${err.code}: ${err.message}`);
    return refuse(obj, 'Invalid', err instanceof AppError ? err.message : String(err));
  }
  // The same guard as an API apply; an unknown control plane is not a refusal here: every rollout checks skew again.
  const skew = desiredSkewProblem(packages, controlPlaneVersion);
  if (skew !== null) return refuse(obj, 'VersionSkew', skew);
  const clash = packages.find((p) => owner.has(p.name) && owner.get(p.name) !== name);
  if (clash !== undefined) return refuse(obj, 'Conflict', `package ${clash.name} is already set by ClusterPackageVersion ${owner.get(clash.name)}`);
  return { name, generation: obj.metadata.generation ?? 0, accepted: true, packages };
}

function refuse(obj: HostCpv, reason: string, message: string): CpvVerdict {
  return { name: obj.metadata.name, generation: obj.metadata.generation ?? 0, accepted: false, reason, message };
}

/** The member's packages after accepting `incoming`: same names replaced, others kept. */
export function mergePackages(local: readonly PackageDefault[], incoming: readonly PackageDefault[]): PackageDefault[] {
  const byName = new Map(local.map((p) => [p.name, p]));
  for (const p of incoming) byName.set(p.name, p);
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}
