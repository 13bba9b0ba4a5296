/**
 * The ClusterPackageVersion object: validation at the API edge, and its status: how
 * many machines run each desired version, from what the agents report.
 */
import type { Static } from '@sinclair/typebox';
import { API_VERSION, ClusterPackageVersionInput, type ClusterPackageVersion, type PackageSummary, type UpdateStrategy } from '@nodekeeper/api';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { AppError, toSemver } from '@nodekeeper/common';
import { AGENT_PACKAGE, type InstallAllowList } from '@nodekeeper/protocol';
import type { MachineRecord } from '../model/machine.ts';
import type { ClusterPackageVersionRecord, PackageDefault, UpdateStrategyInput } from '../model/packages.ts';
import { validateRolloutSpec } from '../rollout/spec.ts';
import { manifestFor } from './manifests.ts';
import { checkManifestAtApply, coordinatorAllowList } from './manifest-policy.ts';

export { API_VERSION };

/**
 * The applied object's schema: the contract's (@nodekeeper/api; the host CRD's spec is
 * generated from it: scripts/gen-crds.ts). `updateStrategy`: the Rollout's spec.strategy
 * fields plus what only convergence has. Its presence turns convergence on (docs/declarative.md).
 */
export const CpvObject = ClusterPackageVersionInput;
const check = TypeCompiler.Compile(CpvObject);

const invalid = (message: string) => new AppError('NK_CPV_INVALID', message);

/**
 * Validates an applied ClusterPackageVersion; NK_CPV_INVALID names the first problem, and
 * a manifest outside `allow` is refused with its install-rule code and JSON path
 * (manifest-policy.ts). Used by the API's apply and by the host pull alike.
 */
export function parseClusterPackageVersion(value: unknown, allow: InstallAllowList = coordinatorAllowList()): PackageDefault[] {
  return parseClusterPackageVersionSpec(value, allow).packages;
}

/**
 * The packages of a ClusterPackageVersion authored on the host, each with its effective
 * updateStrategy (the host object's default under its own): the member's record keeps
 * its own default, so a host object's default must travel with the packages it sets.
 */
export function parseHostClusterPackageVersion(value: unknown, allow: InstallAllowList = coordinatorAllowList()): PackageDefault[] {
  const { packages, updateStrategy } = parseClusterPackageVersionSpec(value, allow);
  return packages.map((p) => {
    const eff = effectiveUpdateStrategy(updateStrategy, p.updateStrategy);
    return eff === null ? p : { ...p, updateStrategy: eff };
  });
}

/** The rollout strategy fields of an updateStrategy (what a converger's Rollout gets). */
export function strategyFields(u: UpdateStrategyInput): Record<string, unknown> {
  const { paused: _p, selector: _s, onSupersede: _o, ...rest } = u;
  return rest;
}

/**
 * A package's updateStrategy: its own fields over the CPV's default, field by field (a
 * package's `batchSize` drops the default's `batches` and the other way round, as they
 * exclude each other). Null when neither is given: that package does not converge.
 */
export function effectiveUpdateStrategy(def: UpdateStrategyInput | undefined, own: UpdateStrategyInput | undefined): UpdateStrategyInput | null {
  if (def === undefined && own === undefined) return null;
  const base: Record<string, unknown> = { ...def };
  if (own?.batchSize !== undefined) delete base['batches'];
  if (own?.batches !== undefined) delete base['batchSize'];
  return { ...base, ...own } as UpdateStrategyInput;
}

/** The strategy rules a schema cannot say (rollout/spec.ts's), with paths under `base`. */
function strategyProblem(u: UpdateStrategyInput, pkg: string, version: string, base: string): string | null {
  const r = validateRolloutSpec({ packages: [{ package: pkg, version }], strategy: strategyFields(u) }, base);
  if (r.ok) return null;
  const e = r.errors[0]!;
  return `${e.path.replace(`${base}/strategy`, base)}: ${e.message}`;
}

/**
 * Like parseClusterPackageVersion, with the default updateStrategy too. Each package's
 * effective strategy (its own over the default) is checked as a Rollout's would be.
 */
export function parseClusterPackageVersionSpec(value: unknown, allow: InstallAllowList = coordinatorAllowList()): { packages: PackageDefault[]; updateStrategy?: UpdateStrategyInput } {
  if (!check.Check(value)) {
    const e = check.Errors(value).First();
    throw invalid(`invalid ClusterPackageVersion at ${e?.path || '/'}: ${e?.message ?? 'does not match the schema'}`);
  }
  const obj = value as Static<typeof CpvObject>;
  const seen = new Set<string>();
  for (const [i, p] of obj.spec.packages.entries()) {
    if (seen.has(p.name)) throw invalid(`/spec/packages/${i}: package "${p.name}" is listed twice`);
    seen.add(p.name);
    if (p.manifest !== undefined && p.manifest.name !== p.name) throw invalid(`/spec/packages/${i}/manifest/name must be "${p.name}"`);
    if (manifestFor(p.name, p.manifest) === null) throw invalid(`/spec/packages/${i}: "${p.name}" is not a built-in package; give it a manifest`);
    if (p.manifest !== undefined) checkManifestAtApply(p.manifest, allow, `spec.packages[${i}].manifest`);
    const eff = effectiveUpdateStrategy(obj.spec.updateStrategy, p.updateStrategy);
    if (eff !== null) {
      const problem = strategyProblem(eff, p.name, p.version, p.updateStrategy === undefined ? '/spec/updateStrategy' : `/spec/packages/${i}/updateStrategy`);
      if (problem !== null) throw invalid(`invalid ClusterPackageVersion at ${problem}`);
    }
  }
  const def = obj.spec.updateStrategy;
  if (def !== undefined) {
    const problem = strategyProblem(def, 'kubelet', '1.0.0', '/spec/updateStrategy');
    if (problem !== null) throw invalid(`invalid ClusterPackageVersion at ${problem}`);
  }
  return { packages: obj.spec.packages.map((p) => ({ ...p })), ...(def === undefined ? {} : { updateStrategy: def }) };
}

/** The package of the agent itself: its version is what the agent says in its hello. */
export { AGENT_PACKAGE };

/**
 * The version a machine runs of a package, as its agent reported it (raw), or null. For
 * the agent itself, the version its hello carried; healthy while it is heard from (liveness
 * Ready or NotReady: NotReady speaks of the node's components, not of the agent).
 */
export function observedVersion(m: Pick<MachineRecord, 'report' | 'agentVersion' | 'liveness'> | null | undefined, pkg: string): { raw: string; healthy: boolean } | null {
  if (m === null || m === undefined) return null;
  if (pkg === AGENT_PACKAGE) return m.agentVersion === null ? null : { raw: m.agentVersion, healthy: m.liveness.state === 'Ready' || m.liveness.state === 'NotReady' };
  const report = m.report;
  if (report === null) return null;
  const section = pkg === 'kubelet' ? report.kubelet : pkg === 'containerd' ? report.runtime : pkg === 'cni-plugins' ? report.cni : null;
  if (section === null || section.version === null) return null;
  return { raw: section.version.raw, healthy: section.health === 'healthy' };
}

/** Versions are equal when their semver readings are (`Kubernetes v1.31.2` = `1.31.2`). */
export function sameVersion(a: string, b: string): boolean {
  const sa = toSemver(a);
  return sa !== null ? sa === toSemver(b) : a === b;
}

/** How the fleet stands against one package's desired version (the contract's shape). */
export type { PackageSummary };

/** Per package: desired version, and how the fleet's machines stand against it. */
export function summarizePackages(cpv: ClusterPackageVersionRecord | null, machines: readonly MachineRecord[]): PackageSummary[] {
  const names = new Set<string>(['kubelet', 'containerd', 'cni-plugins', ...(cpv?.packages.map((p) => p.name) ?? [])]);
  return [...names].sort().map((name) => {
    const desired = cpv?.packages.find((p) => p.name === name)?.version ?? null;
    const versions: Record<string, number> = {};
    let count = 0;
    let atDesired = 0;
    let healthy = 0;
    for (const m of machines) {
      const seen = observedVersion(m, name);
      if (seen === null) continue;
      count += 1;
      const key = toSemver(seen.raw) ?? seen.raw;
      versions[key] = (versions[key] ?? 0) + 1;
      if (desired !== null && sameVersion(seen.raw, desired)) atDesired += 1;
      if (seen.healthy) healthy += 1;
    }
    return { name, desiredVersion: desired, machines: count, atDesired, healthy, versions };
  });
}

/** The Kubernetes-style object; `extraStatus` adds the converger's summary and conditions (convergence/status.ts). */
export function toCpvObject(cpv: ClusterPackageVersionRecord | null, machines: readonly MachineRecord[], extraStatus: Record<string, unknown> = {}): ClusterPackageVersion {
  return {
    apiVersion: API_VERSION,
    kind: 'ClusterPackageVersion',
    metadata: {
      name: 'cluster' as const,
      generation: cpv?.generation ?? 0,
      ...(cpv === null ? {} : { creationTimestamp: new Date(cpv.createdAt).toISOString() }),
      ...(cpv?.meta === undefined ? {} : { uid: cpv.meta.uid, resourceVersion: cpv.meta.resourceVersion }),
    },
    // The record is the applied JSON; the contract spells its readonly arrays as plain ones.
    spec: { ...(cpv?.updateStrategy === undefined ? {} : { updateStrategy: cpv.updateStrategy as UpdateStrategy }), packages: (cpv?.packages ?? []) as ClusterPackageVersion['spec']['packages'] },
    status: { observedGeneration: cpv?.generation ?? 0, packages: summarizePackages(cpv, machines), ...extraStatus },
  };
}
