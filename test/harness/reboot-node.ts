/**
 * A reboot adapter for supervised test nodes (supervised-node.ts). An agent under the
 * supervisor service manager asks for a reboot by writing
 * <hostRoot>/run/nodekeeper/reboot-requested (SupervisorServiceManager.requestReboot);
 * this adapter acts on it the way a host honours `systemctl reboot`: shortly after the
 * request (so the agent's answer can leave, as it does while systemd shuts down), every
 * process of the node is killed (the agent with SIGKILL, the supervised kubelet), the
 * node gets a new boot id (and, if asked, boots a given kernel) in its host root's /proc
 * files (probes/boot.ts reads those first), and the kubelet and agent start again.
 * Faults: `sameBoot` brings it back on the old boot id (the reboot "did not happen"),
 * `kernel` on another kernel than the newest installed.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { SupervisedNode } from './supervised-node.ts';

export const BOOT_ID_FILE = '/proc/sys/kernel/random/boot_id';
export const OSRELEASE_FILE = '/proc/sys/kernel/osrelease';
const REQUEST = 'run/nodekeeper/reboot-requested';
/** Where the supervisor keeps its start counts (agent/src/services/supervisor.ts). */
const SUPERVISE_COUNTS = 'var/lib/nodekeeper/supervise';

/** Writes a host root /proc file (boot id, running kernel) the agent reads instead of its own. */
export async function setProcFile(root: string, file: string, value: string): Promise<void> {
  const target = path.join(root, file);
  await mkdir(path.dirname(target), { recursive: true });
  await writeFile(target, `${value}\n`);
}

/** Gives a node a boot id and running kernel, and installs kernels (/boot/vmlinuz-<release>). */
export async function bootFacts(n: SupervisedNode, o: { bootId?: string; kernel: string; installed?: readonly string[] }): Promise<string> {
  const bootId = o.bootId ?? randomUUID();
  await setProcFile(n.root, BOOT_ID_FILE, bootId);
  await setProcFile(n.root, OSRELEASE_FILE, o.kernel);
  for (const k of o.installed ?? [o.kernel]) {
    await mkdir(path.join(n.root, 'boot'), { recursive: true });
    await writeFile(path.join(n.root, 'boot', `vmlinuz-${k}`), '');
  }
  return bootId;
}

export interface RebootBehaviour {
  /** Come back on the same boot id (nothing rebooted). */
  sameBoot?: boolean;
  /** The kernel it comes back on (default: unchanged). */
  kernel?: string;
  /** How long the node stays down (default 500 ms). */
  downMs?: number;
}

export interface RebootAdapter {
  /** Boot ids the node came back on, one per reboot done. */
  readonly reboots: string[];
  /** What the next reboots do. */
  behaviour: RebootBehaviour;
  stop(): void;
}

/**
 * Watches a node for reboot requests and performs them; `restartAgent` starts the agent
 * again with the flags it had (the test's startNodeAgent call).
 */
export function rebootAdapter(n: SupervisedNode, restartAgent: () => void, behaviour: RebootBehaviour = {}): RebootAdapter {
  const request = path.join(n.root, REQUEST);
  let busy = false;
  const adapter: RebootAdapter = {
    reboots: [],
    behaviour,
    stop: () => clearInterval(timer),
  };
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void (async () => {
      const asked = await stat(request).then(() => true, () => false);
      if (!asked) return;
      // systemctl reboot returns at once; the agent's answer leaves while the host shuts down.
      await new Promise((r) => setTimeout(r, 300));
      await rm(request, { force: true });
      await n.agent?.stop('SIGKILL');
      await n.services.stop('kubelet.service');
      await new Promise((r) => setTimeout(r, adapter.behaviour.downMs ?? 500));
      const bootId = adapter.behaviour.sameBoot === true ? null : randomUUID();
      if (bootId !== null) await setProcFile(n.root, BOOT_ID_FILE, bootId);
      if (adapter.behaviour.kernel !== undefined) await setProcFile(n.root, OSRELEASE_FILE, adapter.behaviour.kernel);
      adapter.reboots.push(bootId ?? 'same');
      // A new boot starts systemd's restart counters (NRestarts) from zero: so does the
      // supervisor's count of the kubelet's starts, or the restart of a reboot would count
      // towards FrequentKubeletRestart as no real reboot does.
      if (bootId !== null) await rm(path.join(n.root, SUPERVISE_COUNTS, 'kubelet.service.starts.json'), { force: true });
      await n.services.restart('kubelet.service');
      restartAgent();
    })().finally(() => {
      busy = false;
    });
  }, 100);
  timer.unref();
  return adapter;
}
