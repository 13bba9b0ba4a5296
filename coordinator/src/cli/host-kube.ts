/**
 * What nkctl's host commands need of the Kubernetes client, in one module that
 * host-commands.ts loads only when such a command runs: @kubernetes/client-node is most of
 * nkctl's start-up CPU (0.5 s of 0.8 s measured), and every other command does without it.
 */
export { CoordinationV1Api, CustomObjectsApi } from '@kubernetes/client-node';
export { createMemberToken, installHost, removeMember } from '../host/host-admin.ts';
export { hostError, mergePatch, readKubeconfig } from '../host/kube-client.ts';
