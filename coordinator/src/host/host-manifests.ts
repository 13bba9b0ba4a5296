/**
 * The host-side objects nodekeeper needs, as plain Kubernetes objects. Pure: the
 * host admin's `nkctl host install` and `nkctl host token create` apply them.
 *
 * Least privilege for a member NAME (its ServiceAccount nodekeeper-member in
 * nodekeeper-NAME):
 *   - in its namespace: its Machines, its Lease, read (and status of) the
 *     ClusterPackageVersions, Rollouts and RemediationRules authored for it, events,
 *     and a token for itself only
 *     (credential rotation);
 *   - cluster-wide: its own Cluster object by name; `create` cannot be limited by name in
 *     RBAC, so a ValidatingAdmissionPolicy pins a member's creates to its own name.
 * Its bootstrap token may only request a token for that ServiceAccount. The host's
 * public cluster-info (to discover the CA a member pins by hash) is readable
 * anonymously, as kubeadm has it: a member reads it before it trusts the server, so it
 * must not have to send its token for it.
 */
import { randomBytes } from 'node:crypto';
import {
  CLUSTER_LABEL, GROUP, LEASE_NAME, MEMBER_SERVICE_ACCOUNT, memberClusterRole, memberGroup, memberNamespace, BOOTSTRAP_GROUP,
} from './names.ts';

export type KubeObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [k: string]: unknown }; [k: string]: unknown };

const PART_OF = { 'app.kubernetes.io/part-of': 'nodekeeper' };
export const VIEWER_ROLE = 'nodekeeper:viewer';
export const IDENTITY_POLICY = 'nodekeeper-member-identity';
export const CLUSTER_INFO_READER = 'nodekeeper:cluster-info-reader';

/** Objects `nkctl host install` applies besides the CRDs. */
export function hostBaseObjects(clusterInfoKubeconfig: string): KubeObject[] {
  return [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole',
      metadata: { name: VIEWER_ROLE, labels: PART_OF },
      rules: [
        { apiGroups: [GROUP], resources: ['clusters', 'machines', 'clusterpackageversions', 'rollouts', 'remediationrules'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'watch'] },
      ],
    },
    {
      apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicy',
      metadata: { name: IDENTITY_POLICY, labels: PART_OF },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: { resourceRules: [{ apiGroups: [GROUP], apiVersions: ['*'], operations: ['CREATE', 'UPDATE'], resources: ['clusters', 'clusters/status'] }] },
        matchConditions: [{
          name: 'is-member',
          expression: `request.userInfo.username.startsWith('system:serviceaccount:nodekeeper-') && request.userInfo.username.endsWith(':${MEMBER_SERVICE_ACCOUNT}')`,
        }],
        validations: [{
          expression: `request.userInfo.username == 'system:serviceaccount:nodekeeper-' + object.metadata.name + ':${MEMBER_SERVICE_ACCOUNT}'`,
          messageExpression: `'member ' + request.userInfo.username + ' may only write its own Cluster, not ' + object.metadata.name`,
          reason: 'Forbidden',
        }],
      },
    },
    {
      apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: IDENTITY_POLICY, labels: PART_OF },
      spec: { policyName: IDENTITY_POLICY, validationActions: ['Deny'] },
    },
    // kubeadm's discovery: the host's public cluster-info (server and CA) that a member
    // reads once, unverified, and trusts only if the CA matches the hash it was given.
    {
      apiVersion: 'v1', kind: 'ConfigMap',
      metadata: { name: 'cluster-info', namespace: 'kube-public', labels: PART_OF },
      data: { kubeconfig: clusterInfoKubeconfig },
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role',
      metadata: { name: CLUSTER_INFO_READER, namespace: 'kube-public', labels: PART_OF },
      rules: [{ apiGroups: [''], resources: ['configmaps'], resourceNames: ['cluster-info'], verbs: ['get'] }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding',
      metadata: { name: CLUSTER_INFO_READER, namespace: 'kube-public', labels: PART_OF },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: CLUSTER_INFO_READER },
      subjects: [
        { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:bootstrappers' },
        { apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'system:anonymous' },
      ],
    },
  ];
}

/** Everything one member needs on the host (the bootstrap token aside). */
export function memberObjects(cluster: string): KubeObject[] {
  const ns = memberNamespace(cluster);
  const labels = { ...PART_OF, [CLUSTER_LABEL]: cluster };
  const sa = { kind: 'ServiceAccount', name: MEMBER_SERVICE_ACCOUNT, namespace: ns };
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: MEMBER_SERVICE_ACCOUNT, namespace: ns, labels } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role',
      metadata: { name: 'nodekeeper-member', namespace: ns, labels },
      rules: [
        { apiGroups: [GROUP], resources: ['machines', 'machines/status'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'] },
        // Objects authored on the host for this member: read them, write only their status.
        { apiGroups: [GROUP], resources: ['clusterpackageversions', 'rollouts', 'remediationrules'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: [GROUP], resources: ['clusterpackageversions/status', 'rollouts/status', 'remediationrules/status'], verbs: ['get', 'update', 'patch'] },
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: [LEASE_NAME], verbs: ['get', 'update', 'patch', 'delete'] },
        { apiGroups: [''], resources: ['serviceaccounts/token'], resourceNames: [MEMBER_SERVICE_ACCOUNT], verbs: ['create'] },
        { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding',
      metadata: { name: 'nodekeeper-member', namespace: ns, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'nodekeeper-member' },
      subjects: [sa],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole',
      metadata: { name: memberClusterRole(cluster), labels },
      rules: [
        // create cannot be limited by name in RBAC: the identity policy pins it.
        { apiGroups: [GROUP], resources: ['clusters'], verbs: ['create'] },
        { apiGroups: [GROUP], resources: ['clusters', 'clusters/status'], resourceNames: [cluster], verbs: ['get', 'update', 'patch', 'delete'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding',
      metadata: { name: memberClusterRole(cluster), labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: memberClusterRole(cluster) },
      subjects: [sa],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role',
      metadata: { name: 'nodekeeper-bootstrap', namespace: ns, labels },
      rules: [{ apiGroups: [''], resources: ['serviceaccounts/token'], resourceNames: [MEMBER_SERVICE_ACCOUNT], verbs: ['create'] }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding',
      metadata: { name: 'nodekeeper-bootstrap', namespace: ns, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'nodekeeper-bootstrap' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: memberGroup(cluster) }],
    },
  ];
}

const TOKEN_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
function randomTokenPart(n: number): string {
  // 36 does not divide 256: reject the top bytes so every character is equally likely.
  let out = '';
  while (out.length < n) {
    for (const b of randomBytes(n * 2)) if (b < 252 && out.length < n) out += TOKEN_ALPHABET[b % 36];
  }
  return out;
}

/** A Kubernetes bootstrap token Secret (kube-system) for a member; its group names the member. */
export function bootstrapTokenSecret(cluster: string, expires: Date, description: string): { token: string; secret: KubeObject } {
  const id = randomTokenPart(6);
  const secret = randomTokenPart(16);
  return {
    token: `${id}.${secret}`,
    secret: {
      apiVersion: 'v1', kind: 'Secret', type: 'bootstrap.kubernetes.io/token',
      metadata: { name: `bootstrap-token-${id}`, namespace: 'kube-system', labels: { ...PART_OF, [CLUSTER_LABEL]: cluster } },
      stringData: {
        'token-id': id,
        'token-secret': secret,
        expiration: expires.toISOString().replace(/\.\d{3}Z$/, 'Z'),
        'usage-bootstrap-authentication': 'true',
        'auth-extra-groups': `${BOOTSTRAP_GROUP}:${cluster}`,
        description: description || `nodekeeper member ${cluster}`,
      },
    },
  };
}
