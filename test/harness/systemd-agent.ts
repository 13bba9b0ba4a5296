/**
 * A node under a real systemd (test/harness/systemd.ts) with the shipped agent unit, a
 * coordinator on the host's loopback, Debian's containerd.service, a kubelet stand-in
 * as kubelet.service and a working CNI (Debian's plugins, a bridge config): a machine
 * the coordinator sees healthy, so rollouts can soak on it.
 *
 * The agent is put on the node by ONE function, installAgent(): the release tarball's
 * install-agent --root UPPER (test/harness/release.ts), as an operator installs it.
 */
import assert from 'node:assert/strict';
import { appendFile, copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { CNI_CONFIG_NAME, DEBIAN_CNI_BIN_DIR, bridgeConflist } from './host-root.ts';
import { installKubeletStandin, STANDIN_SCRIPT } from './kubelet-standin.ts';
import { createToken, nkctl, nkctlOk, startCoordinator, waitFor, REPO, type CoordinatorProc } from './processes.ts';
import { freePort } from './supervised-node.ts';
import { BootedSystemd, run } from './systemd.ts';
import { installAgentRelease } from './release.ts';

export const AGENT_UNIT = 'nodekeeper-agent.service';
/** Where each booted node sees the kubelet stand-in's runtime (copied in: the agent's PrivateTmp= hides a checkout under /tmp). */
export const STANDIN_RUNTIME = { node: '/opt/nk-test/node', script: '/opt/nk-test/kubelet-standin.ts' } as const;
/** The install journal and the packages, as paths of the node's root view. */
export const JOURNAL_DIR = '/var/lib/nodekeeper-agent/journal';
export const KUBELET_PKG_DIR = '/var/lib/nodekeeper/packages/kubelet';

/**
 * Installs the agent from the release tarball into the node's root view (the overlay's
 * upper dir, before boot) configured for `server`, enrolling with `token`: the one place
 * these tests install the agent.
 */
export async function installAgent(upper: string, o: { server: string; token: string; caHash: string }): Promise<void> {
  const r = await installAgentRelease(['--root', upper, '--server', o.server, '--token', o.token, '--discovery-ca-hash', o.caHash]);
  assert.equal(r.code, 0, `install-agent: exit ${r.code}\n${r.stdout}${r.stderr}`);
}

/**
 * What a healthy kubeadm-style node has besides the agent, written into the upper dir:
 * the agent's per-node settings, a CNI config and plugins at /opt/cni/bin, and the kubelet
 * stand-in at `kubeletVersion` as kubelet.service. containerd.service is Debian's, unchanged.
 */
async function prepareNode(upper: string, o: { healthzPort: number; kubeletVersion: string }): Promise<void> {
  await appendFile(path.join(upper, 'etc/nodekeeper/agent.yaml'), `kubeletHealthzUrl: http://127.0.0.1:${o.healthzPort}/healthz\nprobeInterval: 1000\n`);
  await mkdir(path.join(upper, 'etc/cni/net.d'), { recursive: true });
  await writeFile(path.join(upper, 'etc/cni/net.d', CNI_CONFIG_NAME), bridgeConflist());
  await mkdir(path.join(upper, 'opt/cni'), { recursive: true });
  await symlink(DEBIAN_CNI_BIN_DIR, path.join(upper, 'opt/cni/bin'));
  await mkdir(path.join(upper, 'opt/nk-test'), { recursive: true });
  await copyFile(process.execPath, path.join(upper, STANDIN_RUNTIME.node));
  await copyFile(STANDIN_SCRIPT, path.join(upper, STANDIN_RUNTIME.script));
  await installKubeletStandin(upper, { version: o.kubeletVersion, runtime: STANDIN_RUNTIME });
  await writeFile(
    path.join(upper, 'etc/systemd/system/kubelet.service'),
    `[Unit]\nDescription=kubelet stand-in\nAfter=containerd.service\n[Service]\nExecStart=/usr/bin/kubelet --healthz-bind-address=127.0.0.1 --healthz-port=${o.healthzPort}\nRestart=no\n`,
  );
}

export interface CommandRow {
  readonly id: string;
  readonly kind: string;
  readonly state: string;
  readonly error: string | null;
  readonly result: string | null;
}

/** One booted node, its coordinator and its enrolled machine; close() tears all down. */
export class SystemdNode {
  readonly dir: string;
  readonly sd: BootedSystemd;
  coord: CoordinatorProc;
  readonly machine: string;

  private constructor(dir: string, sd: BootedSystemd, coord: CoordinatorProc, machine: string) {
    this.dir = dir;
    this.sd = sd;
    this.coord = coord;
    this.machine = machine;
  }

  /** Starts a coordinator, boots a node with the agent installed and waits for it to enroll. */
  static async start(o: { coordinatorArgs: readonly string[]; kubeletVersion: string }): Promise<SystemdNode> {
    const dir = await mkdtemp(path.join(tmpdir(), 'nk-sd-node-'));
    let coord: CoordinatorProc | undefined;
    let sd: BootedSystemd | undefined;
    try {
      coord = await startCoordinator(path.join(dir, 'coordinator'), o.coordinatorArgs);
      const token = await createToken(coord.nkctlConfig, 1);
      assert.ok(token.caCertHash);
      const healthzPort = await freePort();
      const server = coord.url;
      sd = await BootedSystemd.boot({
        prepare: async (upper) => {
          await installAgent(upper, { server, token: token.token, caHash: token.caCertHash! });
          await prepareNode(upper, { healthzPort, kubeletVersion: o.kubeletVersion });
        },
      });
      await sd.systemctl('start', 'containerd.service', 'kubelet.service');
      await sd.systemctl('enable', '--now', AGENT_UNIT);
      const nk = coord.nkctlConfig;
      const items = await waitFor('the agent to enroll', async () => {
        const r = await nkctl(nk, ['get', 'machines', '-o', 'json']);
        const list = r.code === 0 ? (JSON.parse(r.stdout) as { items: Array<{ metadata: { name: string } }> }).items : [];
        return list.length === 1 && list;
      }, 60_000, 250);
      return new SystemdNode(dir, sd, coord, items[0]!.metadata.name);
    } catch (err) {
      const journal = sd === undefined ? '' : await sd.journal(AGENT_UNIT);
      await sd?.close();
      await coord?.stop();
      await rm(dir, { recursive: true, force: true });
      throw new Error(`${(err as Error).message}\n${journal}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    await this.sd.close();
    await this.coord.stop();
    if (process.env['NK_KEEP_TEST_DIRS'] === undefined) await rm(this.dir, { recursive: true, force: true });
  }

  nk(args: readonly string[]): Promise<string> {
    return nkctlOk(this.coord.nkctlConfig, args);
  }

  /** The machine as `nkctl get machine -o json` shows it. */
  async machineJson(): Promise<Record<string, any> | undefined> {
    const r = await nkctl(this.coord.nkctlConfig, ['get', 'machine', this.machine, '-o', 'json']);
    return r.code === 0 ? (JSON.parse(r.stdout) as Record<string, any>) : undefined;
  }

  /** True when the coordinator shows `type` as an Active fault of the machine. */
  async faultActive(type: string): Promise<boolean> {
    return ((await this.machineJson())?.['status']?.['faults'] ?? []).some((f: { type: string; status: string }) => f.type === type && f.status === 'Active');
  }

  /** The agent's journal and systemd's console, for failure messages. */
  async diagnostics(): Promise<string> {
    const describe = (await nkctl(this.coord.nkctlConfig, ['describe', 'machine', this.machine])).stdout;
    return `${describe}\nagent journal:\n${(await this.sd.journal(AGENT_UNIT)).slice(-8000)}\nsystemd console:\n${(await this.sd.console()).slice(-3000)}`;
  }

  /** Applies a YAML object with nkctl. */
  async apply(name: string, obj: unknown): Promise<void> {
    const file = path.join(this.dir, `${name}.yaml`);
    await writeFile(file, stringify(obj));
    await this.nk(['apply', '-f', file]);
  }

  /** The coordinator's commands of `kind` (oldest first), from its store. */
  commands(kind: string): CommandRow[] {
    const d = new Database(path.join(this.coord.dataDir, 'state.db'), { readonly: true });
    try {
      return d.prepare('SELECT id, kind, state, error, result FROM commands WHERE kind = ? ORDER BY rowid').all(kind) as CommandRow[];
    } finally {
      d.close();
    }
  }

  /** The install journal records left on the node (file name -> parsed record). */
  async journalRecords(): Promise<Record<string, { step: string; history: Array<{ step: string }>; params: { version: string } }>> {
    const dir = this.sd.hostPath(JOURNAL_DIR);
    const out: Record<string, any> = {};
    for (const f of await readdir(dir).catch(() => [] as string[])) {
      if (f.endsWith('.json')) out[f] = JSON.parse(await readFile(path.join(dir, f), 'utf8').catch(() => 'null'));
    }
    return out;
  }

  /** `nkctl rollout list` entry of `name`. */
  async rollout(name: string): Promise<{ status: Record<string, any> } | undefined> {
    return (JSON.parse(await this.nk(['rollout', 'list', '-o', 'json'])) as { items: Array<{ metadata: { name: string }; status: Record<string, any> }> }).items.find((r) => r.metadata.name === name);
  }
}
