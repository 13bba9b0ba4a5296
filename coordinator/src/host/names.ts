/**
 * Names nodekeeper uses on the host cluster, in one place. Pure.
 *
 * A member cluster NAME owns, on the host:
 *   Cluster NAME (cluster-scoped)                          written by the member
 *   Namespace nodekeeper-NAME                              created by the host admin
 *     ServiceAccount nodekeeper-member                     the member's own identity
 *     Lease nodekeeper-member                              its heartbeat
 *     Machine <node>, ClusterPackageVersion <any>          its machines; desired versions
 * and a bootstrap token whose extra group is system:bootstrappers:nodekeeper:NAME.
 */
import { AppError } from '@nodekeeper/common';

// The group and version are the API contract's: the host CRDs serve the same objects.
export { API_GROUP as GROUP, API_GROUP_VERSION as VERSION, API_VERSION } from '@nodekeeper/api';
export const MEMBER_SERVICE_ACCOUNT = 'nodekeeper-member';
export const LEASE_NAME = 'nodekeeper-member';
export const NAMESPACE_PREFIX = 'nodekeeper-';
export const CLUSTER_LABEL = 'nodekeeper.io/cluster';
export const FIELD_MANAGER = 'nodekeeper-coordinator';
/** The bootstrap-token group every nodekeeper member token carries. */
export const BOOTSTRAP_GROUP = 'system:bootstrappers:nodekeeper';

/** DNS label, short enough that `nodekeeper-<name>` is one too. */
const CLUSTER_NAME = /^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/;
/** Kubernetes bootstrap token: `[a-z0-9]{6}.[a-z0-9]{16}`. */
const BOOTSTRAP_TOKEN = /^([a-z0-9]{6})\.([a-z0-9]{16})$/;

export function checkClusterName(name: string): string {
  if (!CLUSTER_NAME.test(name)) {
    throw new AppError('NK_HOST_CLUSTER_NAME_INVALID', `cluster name "${name.slice(0, 80)}" must be 1-40 lower-case letters, digits and '-', starting and ending with a letter or digit`);
  }
  return name;
}

export const memberNamespace = (cluster: string) => `${NAMESPACE_PREFIX}${cluster}`;
export const memberGroup = (cluster: string) => `${BOOTSTRAP_GROUP}:${cluster}`;
export const memberUser = (cluster: string) => `system:serviceaccount:${memberNamespace(cluster)}:${MEMBER_SERVICE_ACCOUNT}`;
export const memberClusterRole = (cluster: string) => `nodekeeper:member:${cluster}`;

export function parseBootstrapToken(token: string): { id: string; secret: string } {
  const m = BOOTSTRAP_TOKEN.exec(token);
  if (m === null) throw new AppError('NK_HOST_TOKEN_INVALID', 'a host bootstrap token looks like abcdef.0123456789abcdef ([a-z0-9]{6}.[a-z0-9]{16})');
  return { id: m[1] as string, secret: m[2] as string };
}
