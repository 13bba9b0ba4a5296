/**
 * A node's file tree under a directory, for agents that share one machine (tests, the
 * demo): machine-id, hostname, a CNI config, Debian's real CNI plugins and package
 * database (symlinked), data dirs, and optionally the runtime's socket.
 *
 *   const { root, config } = await makeHostRoot(dir, { machineId, hostname: 'node-a' });
 *   await probeCni(createProbeContext(config));
 */
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { defaultProbeConfig, type ProbeConfig } from '../../agent/src/probes/config.ts';

/** Where Debian's containernetworking-plugins puts its binaries. */
export const DEBIAN_CNI_BIN_DIR = '/usr/lib/cni';
export const CNI_CONFIG_NAME = '10-nodekeeper.conflist';

export interface HostRootOptions {
  /** 32 lower-case hex characters (machine-id(5)). */
  readonly machineId: string;
  readonly hostname: string;
  /** 'bridge' (default) writes a valid bridge network config; 'none' leaves net.d empty. */
  readonly cniConfig?: 'bridge' | 'none';
  /** A containerd socket to link at run/containerd/containerd.sock. */
  readonly runtimeSocket?: string;
  /** The port the kubelet stand-in serves healthz on (the default 10248 would collide between nodes). */
  readonly kubeletHealthzPort?: number;
  /** Subnet for the bridge config's host-local IPAM (distinct per node in the demo). */
  readonly podSubnet?: string;
}

export interface HostRoot {
  readonly root: string;
  /** A ProbeConfig whose paths all resolve inside `root`. */
  readonly config: ProbeConfig;
}

/**
 * A bridge + host-local + portmap network, valid for Debian's 1.1.1 plugins
 * (cniVersion 1.0.0 is the newest they support). Exported for tests that write a
 * config into containerd's conf dir.
 */
export function bridgeConflist(opts: { name?: string; subnet?: string; cniVersion?: string } = {}): string {
  return `${JSON.stringify(
    {
      cniVersion: opts.cniVersion ?? '1.0.0',
      name: opts.name ?? 'nodekeeper',
      plugins: [
        {
          type: 'bridge',
          bridge: 'nk0',
          isGateway: true,
          ipMasq: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: opts.subnet ?? '10.88.0.0/16' }]], routes: [{ dst: '0.0.0.0/0' }] },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  )}\n`;
}

/** Builds the tree under `dir` (created if needed) and returns the matching ProbeConfig. */
export async function makeHostRoot(dir: string, opts: HostRootOptions): Promise<HostRoot> {
  const root = path.resolve(dir);
  const at = (p: string): string => path.join(root, p);
  for (const d of ['etc/cni/net.d', 'usr/lib', 'usr/bin', 'var/lib/kubelet', 'var/lib/containerd', 'var/lib/nodekeeper', 'run/containerd']) {
    await mkdir(at(d), { recursive: true });
  }
  await writeFile(at('etc/machine-id'), `${opts.machineId}\n`);
  await writeFile(at('etc/hostname'), `${opts.hostname}\n`);
  if ((opts.cniConfig ?? 'bridge') === 'bridge') {
    await writeFile(at(`etc/cni/net.d/${CNI_CONFIG_NAME}`), bridgeConflist(opts.podSubnet === undefined ? {} : { subnet: opts.podSubnet }));
  }
  // The real plugins and the real package database, so the dpkg fallback finds the real package.
  await symlink(DEBIAN_CNI_BIN_DIR, at('usr/lib/cni'));
  await mkdir(at('var/lib'), { recursive: true });
  await symlink('/var/lib/dpkg', at('var/lib/dpkg'));
  if (opts.runtimeSocket !== undefined) await symlink(opts.runtimeSocket, at('run/containerd/containerd.sock'));

  const config: ProbeConfig = {
    ...defaultProbeConfig,
    hostRoot: root,
    kubelet: { ...defaultProbeConfig.kubelet, healthzUrl: `http://127.0.0.1:${opts.kubeletHealthzPort ?? 10248}/healthz` },
    cni: { ...defaultProbeConfig.cni, binDirs: [DEBIAN_CNI_BIN_DIR] },
  };
  return { root, config };
}
