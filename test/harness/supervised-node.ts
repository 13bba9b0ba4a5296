/**
 * A node whose kubelet runs under the agent's supervisor service manager (the stand-in
 * for systemd on machines without it), so installs can restart it: the rollout tests
 * and the demo use these. The kubelet starts as a plain file at /usr/bin/kubelet, as an
 * apt install leaves it; the first install adopts it.
 */
import { createServer } from 'node:net';
import path from 'node:path';
import { SupervisorServiceManager } from '../../agent/src/services/supervisor.ts';
import { makeHostRoot } from './host-root.ts';
import { installKubeletStandin } from './kubelet-standin.ts';
import { startAgent, type Proc } from './processes.ts';

export interface SupervisedNode {
  readonly name: string;
  readonly root: string;
  readonly stateDir: string;
  readonly kubeletUrl: string;
  readonly services: SupervisorServiceManager;
  agent: Proc | null;
}

/** A free TCP port on loopback (the supervised kubelet needs a fixed one). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Builds the node's host root and starts its kubelet stand-in under the supervisor. */
export async function makeSupervisedNode(dir: string, o: { name: string; machineId: string; kubeletVersion: string; runtimeSocket?: string; podSubnet?: string }): Promise<SupervisedNode> {
  const { root } = await makeHostRoot(path.join(dir, o.name), {
    machineId: o.machineId,
    hostname: o.name,
    ...(o.runtimeSocket === undefined ? {} : { runtimeSocket: o.runtimeSocket }),
    ...(o.podSubnet === undefined ? {} : { podSubnet: o.podSubnet }),
  });
  await installKubeletStandin(root, { version: o.kubeletVersion });
  const port = await freePort();
  const services = new SupervisorServiceManager(root);
  await services.define('kubelet.service', { argv: ['/usr/bin/kubelet', '--healthz-bind-address=127.0.0.1', `--healthz-port=${port}`] });
  await services.restart('kubelet.service');
  return { name: o.name, root, stateDir: path.join(dir, `${o.name}-state`), kubeletUrl: `http://127.0.0.1:${port}/healthz`, services, agent: null };
}

/** Starts (or restarts) the node's agent with the supervisor service manager. */
export function startNodeAgent(n: SupervisedNode, o: { server: string; token?: string; caHash?: string | null; extraArgs?: readonly string[] }): Proc {
  n.agent = startAgent({
    server: o.server,
    stateDir: n.stateDir,
    hostRoot: n.root,
    kubeletHealthzUrl: n.kubeletUrl,
    ...(o.token === undefined ? {} : { token: o.token }),
    ...(o.caHash === undefined ? {} : { caHash: o.caHash }),
    extraArgs: ['--service-manager', 'supervisor', ...(o.extraArgs ?? [])],
  });
  return n.agent;
}

/** Stops the agent and the supervised kubelet. */
export async function stopNode(n: SupervisedNode): Promise<void> {
  await n.agent?.stop();
  await n.services.stop('kubelet.service');
}
