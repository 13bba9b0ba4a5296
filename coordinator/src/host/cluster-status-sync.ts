/**
 * The member's Cluster object on the host: created on the first sync, its status written
 * when it differs from what the host holds (so a host-side Unknown is corrected at once)
 * and at a slow refresh (every 5 min) otherwise; deleted on unregister. The status
 * itself is computed by cluster-status.ts (pure).
 */
import type { Logger } from '@nodekeeper/common';
import { clusterStatus, sameClusterStatus, type ClusterStatusInput, type HostCondition } from './cluster-status.ts';
import { hostError, mergePatch, statusOf, type KubeClients } from './kube-client.ts';
import { API_VERSION, CLUSTER_LABEL } from './names.ts';
import type { HostRegistration } from './registration.ts';

export class ClusterStatusSync {
  /** Status writes so far (for `nkctl host status`). */
  writes = 0;
  #lastWrite = 0;
  readonly #refreshMs: number;
  readonly #wallClock: () => number;
  readonly #log: Logger;

  constructor(refreshMs: number, wallClock: () => number, log: Logger) {
    this.#refreshMs = refreshMs;
    this.#wallClock = wallClock;
    this.#log = log;
  }

  /** A new registration: the next sync writes the status whatever the host holds. */
  reset(): void {
    this.#lastWrite = 0;
  }

  async sync(c: KubeClients, reg: HostRegistration, input: ClusterStatusInput): Promise<void> {
    const res = c.crd('clusters');
    let current: { status?: { conditions?: HostCondition[] } } | null = null;
    try {
      current = await c.custom.getClusterCustomObject({ ...res, name: reg.cluster });
    } catch (err) {
      if (statusOf(err) !== 404) throw hostError(`read Cluster ${reg.cluster}`, err);
    }
    if (current === null) {
      const spec = {
        id: reg.cluster, syncMode: 'Pull',
        ...(reg.provider ? { provider: reg.provider } : {}), ...(reg.region ? { region: reg.region } : {}), ...(reg.zone ? { zone: reg.zone } : {}),
      };
      try {
        current = await c.custom.createClusterCustomObject({ ...res, body: { apiVersion: API_VERSION, kind: 'Cluster', metadata: { name: reg.cluster, labels: { [CLUSTER_LABEL]: reg.cluster } }, spec } });
      } catch (err) {
        throw hostError(`create Cluster ${reg.cluster}`, err);
      }
      this.#log.info({ cluster: reg.cluster }, 'Cluster object created on the host');
    }
    const now = this.#wallClock();
    const status = clusterStatus(input, current?.status?.conditions, new Date(now).toISOString());
    if (sameClusterStatus(current?.status, status) && now - this.#lastWrite < this.#refreshMs) return;
    try {
      await c.custom.patchClusterCustomObjectStatus({ ...res, name: reg.cluster, body: { status } }, mergePatch);
    } catch (err) {
      throw hostError(`write Cluster ${reg.cluster} status`, err);
    }
    this.#lastWrite = now;
    this.writes += 1;
  }

  /** Deletes the Cluster object (gone already is fine); returns what it removed. */
  async remove(c: KubeClients, cluster: string): Promise<string> {
    await c.custom.deleteClusterCustomObject({ ...c.crd('clusters'), name: cluster }).catch((err: unknown) => {
      if (statusOf(err) !== 404) throw hostError('delete the Cluster', err);
    });
    return `cluster/${cluster}`;
  }
}
