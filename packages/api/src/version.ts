/**
 * The API group and version every object of the HTTP API carries (Kubernetes style:
 * `apiVersion: <group>/<version>`). The host cluster's CRDs use the same group.
 */
export const API_GROUP = 'nodekeeper.io';
/** The version part alone (the host CRDs' served version). */
export const API_GROUP_VERSION = 'v1alpha1';
export const API_VERSION = 'nodekeeper.io/v1alpha1';
export type ApiVersion = typeof API_VERSION;
