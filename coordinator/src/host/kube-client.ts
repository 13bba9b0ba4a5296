/**
 * A thin layer over @kubernetes/client-node: a KubeConfig from (server, CA, token), the
 * few calls nodekeeper makes on a host or member cluster, and one mapping of API
 * failures to nodekeeper error codes. No decisions here.
 */
import {
  ApiException, CoordinationV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, VersionApi, setHeaderOptions,
} from '@kubernetes/client-node';
import { AppError } from '@nodekeeper/common';
import { GROUP, VERSION } from './names.ts';

/** Where a cluster is and how to speak to it. */
export interface KubeTarget {
  readonly server: string;
  /** PEM of the CA that signs the API server's certificate. */
  readonly caPem: string;
  readonly token: string;
}

export function kubeConfigFor(t: KubeTarget, name = 'cluster'): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name, server: t.server, caData: Buffer.from(t.caPem).toString('base64'), skipTLSVerify: false }],
    users: [{ name: 'user', token: t.token }],
    contexts: [{ name, cluster: name, user: 'user' }],
    currentContext: name,
  });
  return kc;
}

/** Reads a kubeconfig file: its current server, CA (if any) and bearer token (if any). */
export function readKubeconfig(file: string): { server: string; caPem: string | null; token: string | null; kc: KubeConfig } {
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(file);
  } catch (err) {
    throw new AppError('NK_HOST_KUBECONFIG_INVALID', `cannot read kubeconfig ${file}: ${(err as Error).message}`, { cause: err });
  }
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new AppError('NK_HOST_KUBECONFIG_INVALID', `kubeconfig ${file} has no current cluster`);
  const user = kc.getCurrentUser();
  const caPem = cluster.caData ? Buffer.from(cluster.caData, 'base64').toString('utf8') : null;
  return { server: cluster.server, caPem, token: user?.token ?? null, kc };
}

export const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** HTTP status of a failed call, or 0 when the server was not reached. */
export function statusOf(err: unknown): number {
  return err instanceof ApiException ? err.code : 0;
}

/** The API server's own message (a Status object's `message`), if it gave one. */
export function apiMessage(err: unknown): string {
  if (err instanceof ApiException) {
    const body = err.body as unknown;
    if (typeof body === 'string') {
      try {
        const parsed = JSON.parse(body) as { message?: unknown };
        if (typeof parsed.message === 'string') return parsed.message;
      } catch {
        return body.slice(0, 500);
      }
    }
    if (body !== null && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') return (body as { message: string }).message;
    return `HTTP ${err.code}`;
  }
  return (err as Error)?.message ?? String(err);
}

/** Maps a failed call on the host to a nodekeeper error naming what was attempted. */
export function hostError(what: string, err: unknown): AppError {
  if (err instanceof AppError) return err;
  const status = statusOf(err);
  const msg = `${what}: ${apiMessage(err)}`;
  if (status === 401) return new AppError('NK_HOST_UNAUTHORIZED', `${msg} (the credential is unknown, expired or revoked)`, { cause: err });
  if (status === 403) return new AppError('NK_HOST_FORBIDDEN', msg, { cause: err });
  if (status === 404) return new AppError('NK_HOST_NOT_FOUND', msg, { cause: err });
  if (status === 409) return new AppError('NK_HOST_CONFLICT', msg, { cause: err });
  if (status === 422 || status === 400) return new AppError('NK_HOST_REJECTED', msg, { cause: err });
  if (status === 0) return new AppError('NK_HOST_UNREACHABLE', msg, { cause: err });
  return new AppError('NK_HOST_API_ERROR', msg, { cause: err });
}

/** The API clients nodekeeper uses against one cluster. */
export class KubeClients {
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;
  readonly coordination: CoordinationV1Api;
  readonly version: VersionApi;

  readonly kc: KubeConfig;

  constructor(kc: KubeConfig) {
    this.kc = kc;
    this.core = kc.makeApiClient(CoreV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.coordination = kc.makeApiClient(CoordinationV1Api);
    this.version = kc.makeApiClient(VersionApi);
  }

  static of(t: KubeTarget): KubeClients {
    return new KubeClients(kubeConfigFor(t));
  }

  /** A nodekeeper.io/v1alpha1 resource. */
  crd(plural: 'clusters' | 'machines' | 'clusterpackageversions' | 'rollouts' | 'remediationrules') {
    return { group: GROUP, version: VERSION, plural };
  }
}
