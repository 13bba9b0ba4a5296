/**
 * A fleet on a NetLab (netns.ts): the coordinator in one network namespace, each agent
 * (supervisor service manager, kubelet stand-in) in its own, all on the lab's bridge, so
 * a test can cut agents off with a real network fault. The kubelets run inside their
 * node's namespace (started through supervise-cli.ts), as the agent restarts them there.
 * One containerd in the machine's namespace serves every node: a Unix socket is reached
 * by its path, whatever the network namespace.
 */
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SupervisorServiceManager } from '../../agent/src/services/supervisor.ts';
import { makeHostRoot } from './host-root.ts';
import { installKubeletStandin } from './kubelet-standin.ts';
import type { NetLab } from './netns.ts';
import { BIN, listeningLine, programEnv, type Proc } from './processes.ts';

const run = promisify(execFile);
const SUPERVISE_CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), 'supervise-cli.ts');
/** Every node has its own namespace, so every kubelet may serve the kubelet's own port. */
const HEALTHZ_PORT = 10248;

export interface NetnsCoordinator {
  readonly proc: Proc;
  readonly url: string;
  readonly caHash: string | null;
  readonly dataDir: string;
  readonly db: string;
  /** Runs the real nkctl inside the coordinator's namespace; stdout, or throws with stderr. */
  nk(args: readonly string[]): Promise<string>;
  /** As nk(), without throwing. */
  nkRaw(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }>;
}

/** Starts the coordinator inside `host`'s namespace, listening on its lab address. */
export async function startNetnsCoordinator(lab: NetLab, host: string, dataDir: string, args: readonly string[]): Promise<NetnsCoordinator> {
  await mkdir(dataDir, { recursive: true });
  const proc = lab.spawn(host, process.execPath, [BIN.coordinator, '--data-dir', dataDir, '--host', lab.address(host), '--port', '0', ...args], `${dataDir}.log`);
  const line = await listeningLine(proc);
  const config = path.join(dataDir, 'nkctl.yaml');
  const nkRaw = async (a: readonly string[]) => {
    try {
      const cmd = lab.inside(host, process.execPath, [BIN.nkctl, ...a]);
      const r = await run(cmd.file, cmd.args, { env: programEnv({ NKCTL_CONFIG: config }), maxBuffer: 16 * 1024 * 1024 });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
    }
  };
  return {
    proc, url: line.listening, caHash: line.caHash, dataDir, db: path.join(dataDir, 'state.db'), nkRaw,
    nk: async (a) => {
      const r = await nkRaw(a);
      if (r.code !== 0) throw new Error(`nkctl ${a.join(' ')} exited ${r.code}: ${r.stderr}`);
      return r.stdout;
    },
  };
}

export interface NetnsNode {
  readonly name: string;
  readonly root: string;
  readonly stateDir: string;
  readonly services: SupervisorServiceManager;
  agent: Proc | null;
  /** (Re)starts the kubelet inside the node's namespace. */
  startKubelet(): Promise<void>;
  /** How often the supervisor has started the kubelet (a restart run twice shows here). */
  kubeletStarts(): Promise<number>;
}

/** A node in `host`'s namespace: its host root, its kubelet stand-in (started), no agent yet. */
export async function makeNetnsNode(lab: NetLab, host: string, dir: string, o: { machineId: string; kubeletVersion: string; startupMs: number; runtimeSocket: string; readyFile?: string }): Promise<NetnsNode> {
  const { root } = await makeHostRoot(path.join(dir, host), { machineId: o.machineId, hostname: host, runtimeSocket: o.runtimeSocket, kubeletHealthzPort: HEALTHZ_PORT });
  await installKubeletStandin(root, { version: o.kubeletVersion, startupMs: o.startupMs, ...(o.readyFile === undefined ? {} : { readyFile: o.readyFile }) });
  const services = new SupervisorServiceManager(root);
  await services.define('kubelet.service', { argv: ['/usr/bin/kubelet', '--healthz-bind-address=127.0.0.1', `--healthz-port=${HEALTHZ_PORT}`] });
  const node: NetnsNode = {
    name: host, root, stateDir: path.join(dir, `${host}-state`), services, agent: null,
    startKubelet: async () => {
      const cmd = lab.inside(host, process.execPath, [SUPERVISE_CLI, root, 'restart', 'kubelet.service']);
      await run(cmd.file, cmd.args);
    },
    kubeletStarts: async () => (await services.starts('kubelet.service')) ?? 0,
  };
  await node.startKubelet();
  return node;
}

/** Starts the node's agent inside its namespace. */
export function startNetnsAgent(lab: NetLab, n: NetnsNode, o: { server: string; token: string; caHash: string | null }): Proc {
  n.agent = lab.spawn(n.name, process.execPath, [
    BIN.agent,
    '--server', o.server,
    '--state-dir', n.stateDir,
    '--host-root', n.root,
    '--kubelet-healthz-url', `http://127.0.0.1:${HEALTHZ_PORT}/healthz`,
    '--cni-bin-dir', '/usr/lib/cni',
    '--probe-interval', '1000',
    '--service-manager', 'supervisor',
    '--token', o.token,
    ...(o.caHash ? ['--discovery-ca-hash', o.caHash] : []),
  ], `${n.stateDir}.log`);
  return n.agent;
}
