/** Lists the member cluster's pods by label selector, for the blocking-pods gate (gates.ts). */
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeClients, apiMessage } from '../host/kube-client.ts';
import type { PodFact } from './gates.ts';

export function podLister(kc: KubeConfig): (labelSelector: string) => Promise<PodFact[]> {
  const c = new KubeClients(kc);
  return async (labelSelector) => {
    try {
      const list = await c.core.listPodForAllNamespaces({ labelSelector });
      return list.items.map((p) => ({ namespace: p.metadata?.namespace ?? '', name: p.metadata?.name ?? '', node: p.spec?.nodeName ?? null, phase: p.status?.phase ?? null }));
    } catch (err) {
      throw new Error(`list pods (${labelSelector}): ${apiMessage(err)}`, { cause: err });
    }
  };
}
