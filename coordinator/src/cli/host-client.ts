/**
 * Everything nkctl's host commands need of the host side, in one module: the only file
 * of cli/ that reaches into the coordinator's host/ (test/cli-boundary.test.ts lists it).
 *   - eager and light: the host's names (CRD group and version, the Lease, labels), the
 *     Lease judgement (pure, on this process's clock) and the Cluster status shape;
 *   - loaded only when a command needs it (loadHostKube): the Kubernetes client and the
 *     host admin (install, member tokens, member removal). @kubernetes/client-node is most
 *     of nkctl's start-up CPU (0.5 s of 0.8 s measured); every other command does without.
 * The member side of registration (register, unregister, host status) goes through the
 * coordinator's API (api-client.ts), never through these.
 */
export type { ClusterStatus } from '../host/cluster-status.ts';
export { judgeLease, sight, type LeaseSighting } from '../host/lease-liveness.ts';
export { CLUSTER_LABEL, GROUP, LEASE_NAME, NAMESPACE_PREFIX, VERSION } from '../host/names.ts';

/** The Kubernetes client and the host admin, imported on first use. */
export async function loadHostKube() {
  const [k8s, client, admin] = await Promise.all([import('@kubernetes/client-node'), import('../host/kube-client.ts'), import('../host/host-admin.ts')]);
  return {
    CoordinationV1Api: k8s.CoordinationV1Api,
    CustomObjectsApi: k8s.CustomObjectsApi,
    hostError: client.hostError,
    mergePatch: client.mergePatch,
    readKubeconfig: client.readKubeconfig,
    installHost: admin.installHost,
    createMemberToken: admin.createMemberToken,
    removeMember: admin.removeMember,
  };
}
