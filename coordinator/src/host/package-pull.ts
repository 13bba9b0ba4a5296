/**
 * The ClusterPackageVersions authored on the host for this member: watched, so a new
 * generation is judged within moments (the pull reads the watch's cache, and lists while
 * it has not listed yet); the accepted ones applied to the member's own record, and the
 * verdict written back to their status. The judging itself is cpv-pull.ts (pure).
 */
import type { ListWatch } from '@kubernetes/client-node';
import type { Logger } from '@nodekeeper/common';
import type { InstallAllowList } from '@nodekeeper/protocol';
import type { PackageDefault } from '../model/packages.ts';
import { judgeHostCpvs, mergePackages, type HostCpv } from './cpv-pull.ts';
import { watchUnjudged } from './host-watch.ts';
import { hostError, mergePatch, type KubeClients } from './kube-client.ts';
import { memberNamespace } from './names.ts';
import type { HostRegistration } from './registration.ts';

export interface PackagePullDeps {
  readonly log: Logger;
  readonly wallClock: () => number;
  readonly controlPlaneVersion: () => string | null;
  readonly localPackages: () => readonly PackageDefault[];
  /** Applies packages pulled from the host to the member's own record; returns its generation. */
  readonly applyPackages: (packages: PackageDefault[], source: string) => number;
  readonly recordEvent: (type: 'Normal' | 'Warning', reason: string, message: string) => void;
  /** Link paths and services host manifests may use (default: the built-in packages'). */
  readonly installAllowList?: InstallAllowList;
}

type HostCpvObject = HostCpv & { apiVersion?: string; kind?: string; metadata: HostCpv['metadata'] & { namespace?: string } };

export class PackagePull {
  #watch: ListWatch<HostCpvObject> | null = null;
  readonly #deps: PackagePullDeps;

  constructor(deps: PackagePullDeps) {
    this.#deps = deps;
  }

  /** Watches the namespace with `c`; `changed` is told of every change. */
  watch(c: KubeClients, ns: string, changed: () => void, retryMs: number): void {
    this.#watch = watchUnjudged<HostCpvObject>(c, ns, 'clusterpackageversions', changed, (w) => this.#watch === w, retryMs);
  }

  /** Stops the watch (its clients are going). */
  stopWatch(): void {
    void this.#watch?.stop().catch(() => {});
    this.#watch = null;
  }

  async pull(c: KubeClients, reg: HostRegistration): Promise<void> {
    const deps = this.#deps;
    const ns = memberNamespace(reg.cluster);
    const res = { ...c.crd('clusterpackageversions'), namespace: ns };
    const watched = this.#watch !== null && this.#watch.latestResourceVersion() !== '' ? this.#watch.list() : null;
    const items = watched ?? (await c.custom.listNamespacedCustomObject(res).catch((err: unknown) => {
      throw hostError(`list ClusterPackageVersions in ${ns}`, err);
    }) as { items: HostCpv[] }).items;
    const verdicts = judgeHostCpvs(items, deps.controlPlaneVersion(), deps.installAllowList);
    for (const v of verdicts) {
      const now = new Date(deps.wallClock()).toISOString();
      let memberGeneration: number | null = null;
      if (v.accepted) {
        memberGeneration = deps.applyPackages(mergePackages(deps.localPackages(), v.packages), `host ClusterPackageVersion ${ns}/${v.name} generation ${v.generation}`);
        deps.log.info({ object: v.name, generation: v.generation, memberGeneration }, 'applied a ClusterPackageVersion from the host');
      } else {
        deps.recordEvent('Warning', 'HostObjectRefused', `host ClusterPackageVersion ${ns}/${v.name} generation ${v.generation}: ${v.reason}: ${v.message}`);
        deps.log.warn({ object: v.name, generation: v.generation, reason: v.reason, message: v.message }, 'refused a ClusterPackageVersion from the host');
      }
      const conditions = v.accepted
        ? [
          { type: 'Accepted', status: 'True', reason: 'Valid', message: `packages: ${v.packages.map((p) => `${p.name}=${p.version}`).join(', ')}`, lastTransitionTime: now, observedGeneration: v.generation },
          { type: 'Applied', status: 'True', reason: 'AppliedToMember', message: `member ClusterPackageVersion generation ${memberGeneration}`, lastTransitionTime: now, observedGeneration: v.generation },
        ]
        : [
          { type: 'Accepted', status: 'False', reason: v.reason, message: v.message, lastTransitionTime: now, observedGeneration: v.generation },
          { type: 'Applied', status: 'False', reason: 'NotAccepted', message: 'nothing was applied', lastTransitionTime: now, observedGeneration: v.generation },
        ];
      const status = { observedGeneration: v.generation, conditions, ...(memberGeneration === null ? {} : { memberGeneration }) };
      await c.custom.patchNamespacedCustomObjectStatus({ ...res, name: v.name, body: { status } }, mergePatch).catch((err: unknown) => {
        throw hostError(`write ClusterPackageVersion ${ns}/${v.name} status`, err);
      });
    }
  }
}
