/**
 * The kubelet's part of pod deletion, played by the test process against a reference
 * kube-apiserver (test/harness/kube.ts) for Nodes that have no kubelet: a pod marked for
 * deletion (deletionTimestamp set, by an eviction) is confirmed gone only `delayMs`
 * after the loop first sees it, as a kubelet does once the containers stopped, so a
 * drain that does not wait for pods to go is caught. Also makes Nodes and pods as
 * their kubelet would report them (Ready, Running).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { kubeBinDir, type ApiServer } from './kube.ts';

const run = promisify(execFile);

export interface Terminating {
  /** When the loop first saw the deletionTimestamp (the test's clock). */
  readonly seenAt: number;
  /** The grace the API server gave the deletion (the eviction's, else the pod's own). */
  readonly gracePeriodSeconds: number | null;
  /** When the loop deleted it for good; null while it waits. */
  goneAt: number | null;
}

export interface TestKubelet {
  /** Per `namespace/name`: what the loop saw of each pod marked for deletion. */
  readonly terminating: Map<string, Terminating>;
  stop(): Promise<void>;
}

/** Async kubectl (the harness's own is synchronous): the loop must not block the test. */
export async function kubectlAsync(api: ApiServer, args: readonly string[]): Promise<string> {
  const { stdout } = await run(path.join(kubeBinDir(), 'kubectl'), ['--kubeconfig', api.adminKubeconfig, ...args], { encoding: 'utf8' });
  return stdout;
}

/** Starts the loop: every `intervalMs`, pods marked for deletion `delayMs` ago or more are deleted at once. */
export function startTestKubelet(api: ApiServer, o: { delayMs: number; intervalMs?: number }): TestKubelet {
  const terminating = new Map<string, Terminating>();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const pods = JSON.parse(await kubectlAsync(api, ['get', 'pods', '-A', '-o', 'json'])).items as Array<{ metadata: { namespace: string; name: string; uid: string; deletionTimestamp?: string; deletionGracePeriodSeconds?: number } }>;
        for (const p of pods) {
          if (p.metadata.deletionTimestamp === undefined) continue;
          const id = `${p.metadata.namespace}/${p.metadata.name}`;
          let t = terminating.get(id);
          if (t === undefined || t.goneAt !== null) {
            t = { seenAt: Date.now(), gracePeriodSeconds: p.metadata.deletionGracePeriodSeconds ?? null, goneAt: null };
            terminating.set(id, t);
          }
          if (Date.now() - t.seenAt >= o.delayMs) {
            await kubectlAsync(api, ['delete', 'pod', '-n', p.metadata.namespace, p.metadata.name, '--grace-period=0', '--force', '--wait=false']).catch(() => '');
            t.goneAt = Date.now();
          }
        }
      } catch {
        // The API server is restarting or slow: try again on the next round.
      }
      await new Promise((r) => setTimeout(r, o.intervalMs ?? 200));
    }
  })();
  return {
    terminating,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

const now = () => new Date().toISOString();

/** A Node, Ready as its kubelet would report it. */
export function readyNode(api: ApiServer, name: string): void {
  api.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name } }) });
  api.kubectl(['patch', 'node', name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', lastHeartbeatTime: now(), lastTransitionTime: now() }] } })]);
}

export interface PodOptions {
  readonly labels?: Record<string, string>;
  /** The managing controller (ownerReference with controller: true); absent: an unmanaged pod. */
  readonly owner?: { readonly kind: string; readonly name: string };
  readonly emptyDir?: boolean;
  readonly mirror?: boolean;
  readonly terminationGracePeriodSeconds?: number;
}

/** A pod bound to the node, Running and Ready as its kubelet would report it. */
export function runningPod(api: ApiServer, name: string, node: string, o: PodOptions = {}): void {
  api.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1', kind: 'Pod',
      metadata: {
        name, namespace: 'default', labels: o.labels ?? {},
        ...(o.owner === undefined ? {} : { ownerReferences: [{ apiVersion: 'apps/v1', kind: o.owner.kind, name: o.owner.name, uid: '00000000-0000-0000-0000-000000000001', controller: true }] }),
        ...(o.mirror === true ? { annotations: { 'kubernetes.io/config.mirror': 'test' } } : {}),
      },
      spec: {
        nodeName: node, containers: [{ name: 'app', image: 'registry.invalid/app:1' }],
        terminationGracePeriodSeconds: o.terminationGracePeriodSeconds ?? 30,
        ...(o.emptyDir === true ? { volumes: [{ name: 'scratch', emptyDir: {} }] } : {}),
      },
    }),
  });
  api.kubectl(['patch', 'pod', name, '--subresource=status', '--type=merge', '-p', JSON.stringify({
    status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now() }, { type: 'PodScheduled', status: 'True', lastTransitionTime: now() }] },
  })]);
}

/** A DaemonSet object (no controller runs it here: it only has to exist, as kubectl drain checks). */
export function daemonSet(api: ApiServer, name: string): void {
  api.kubectl(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name, namespace: 'default' },
      spec: { selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] } } },
    }),
  });
}
