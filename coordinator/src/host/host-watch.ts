/**
 * A watch on objects authored on the host for this member, so a new generation is judged
 * within moments rather than at the next sync. The watch only says "sync soon"; the sync
 * judges. A watch that fails is started again after `retryMs` while it is still current.
 */
import { ListWatch, Watch, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import type { KubeClients } from './kube-client.ts';

type Watched = KubernetesObject & { metadata: { name: string; generation?: number }; status?: { observedGeneration?: number } };

export function watchUnjudged<T extends Watched>(
  c: KubeClients, namespace: string, plural: 'clusterpackageversions' | 'rollouts' | 'remediationrules',
  changed: () => void, current: (w: ListWatch<T>) => boolean, retryMs: number,
): ListWatch<T> {
  const res = { ...c.crd(plural), namespace };
  const watch = new ListWatch<T>(`/apis/${res.group}/${res.version}/namespaces/${namespace}/${plural}`, new Watch(c.kc), () => c.custom.listNamespacedCustomObject(res) as Promise<KubernetesListObject<T>>, false);
  const judge = (o: T) => {
    if (o.metadata.generation !== o.status?.observedGeneration) changed();
  };
  watch.on('add', judge);
  watch.on('update', judge);
  // A deletion changes what the member holds (a host-made rule goes): sync too.
  watch.on('delete', () => changed());
  watch.on('error', () => {
    // The sync lists instead meanwhile; try the watch again after a sync interval.
    setTimeout(() => {
      if (current(watch)) void watch.start().catch(() => {});
    }, retryMs).unref();
  });
  void watch.start().catch(() => {});
  return watch;
}
