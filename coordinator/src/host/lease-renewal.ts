/**
 * The member's heartbeat to its host: a coordination.k8s.io Lease in its namespace,
 * renewed every sync (duration 40 s), which is how the host judges it alive
 * (lease-liveness.ts). Created when missing; removed on unregister.
 */
import os from 'node:os';
import { microTime } from '../clock.ts';
import type { HostRegistration } from './registration.ts';
import { hostError, mergePatch, statusOf, type KubeClients } from './kube-client.ts';
import { CLUSTER_LABEL, LEASE_NAME, memberNamespace } from './names.ts';

export class LeaseRenewal {
  /** Wall-clock time of the last renewal, or null before the first. */
  lastRenew: number | null = null;
  readonly #durationSeconds: number;
  readonly #wallClock: () => number;

  constructor(durationSeconds: number, wallClock: () => number) {
    this.#durationSeconds = durationSeconds;
    this.#wallClock = wallClock;
  }

  async renew(c: KubeClients, reg: HostRegistration): Promise<void> {
    const ns = memberNamespace(reg.cluster);
    const now = this.#wallClock();
    // A merge patch with renewTime as the API's MicroTime text (the typed client would send milliseconds).
    const patch = { spec: { holderIdentity: `${reg.cluster}/${os.hostname()}`, leaseDurationSeconds: this.#durationSeconds, renewTime: microTime(now) } };
    const renew = () => c.coordination.patchNamespacedLease({ name: LEASE_NAME, namespace: ns, body: patch }, mergePatch);
    try {
      await renew();
    } catch (err) {
      if (statusOf(err) !== 404) throw hostError('renew the Lease', err);
      try {
        await c.coordination.createNamespacedLease({
          namespace: ns,
          body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: LEASE_NAME, namespace: ns, labels: { [CLUSTER_LABEL]: reg.cluster } }, spec: {} },
        });
        await renew();
      } catch (err2) {
        throw hostError('create the Lease', err2);
      }
    }
    this.lastRenew = now;
  }

  /** Deletes the Lease (gone already is fine); returns what it removed. */
  async remove(c: KubeClients, ns: string): Promise<string> {
    await c.coordination.deleteNamespacedLease({ name: LEASE_NAME, namespace: ns }).catch((err: unknown) => {
      if (statusOf(err) !== 404) throw hostError('delete the Lease', err);
    });
    return `lease/${LEASE_NAME}`;
  }
}
