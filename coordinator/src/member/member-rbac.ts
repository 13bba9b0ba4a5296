/**
 * What the coordinator's identity needs in the MEMBER cluster (the one its
 * `--member-kubeconfig` points at), as a ClusterRole and its binding. Pure; printed in
 * docs/kubernetes.md and applied by test/node-conditions.test.ts, which runs the
 * coordinator as a user with this role and nothing else.
 *   - nodes get/list/watch: the Node watch (readiness, findNode, the conditions' diff);
 *   - nodes patch: cordon and uncordon (spec.unschedulable and our annotation);
 *   - nodes/status patch: nodekeeper's Node conditions (a strategic merge on
 *     status.conditions, never the kubelet's types);
 *   - pods get/list and pods/eviction create: drains, through the Eviction API, waiting
 *     for the evicted pods to go; blocking pods of reboots;
 *   - daemonsets get: a drain leaves a DaemonSet's pod alone only when the DaemonSet exists;
 *   - events create/patch (core and events.k8s.io): Kubernetes Events on the Nodes.
 */
export const MEMBER_API_ROLE = 'nodekeeper:coordinator';

export interface RbacSubject {
  readonly kind: 'User' | 'Group' | 'ServiceAccount';
  readonly name: string;
  /** ServiceAccounts only. */
  readonly namespace?: string;
}

export function memberApiRbac(subject: RbacSubject): Array<Record<string, unknown>> {
  const labels = { 'app.kubernetes.io/part-of': 'nodekeeper' };
  return [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole',
      metadata: { name: MEMBER_API_ROLE, labels },
      rules: [
        { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch', 'patch'] },
        { apiGroups: [''], resources: ['nodes/status'], verbs: ['patch'] },
        { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] },
        { apiGroups: [''], resources: ['pods/eviction'], verbs: ['create'] },
        { apiGroups: ['apps'], resources: ['daemonsets'], verbs: ['get'] },
        { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding',
      metadata: { name: MEMBER_API_ROLE, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: MEMBER_API_ROLE },
      subjects: [subject.kind === 'ServiceAccount'
        ? { kind: 'ServiceAccount', name: subject.name, namespace: subject.namespace ?? 'default' }
        : { apiGroup: 'rbac.authorization.k8s.io', kind: subject.kind, name: subject.name }],
    },
  ];
}
