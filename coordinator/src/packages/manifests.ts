/**
 * How the packages nodekeeper knows install on a node, used when a ClusterPackageVersion
 * entry gives no manifest of its own. Layouts follow the upstream release archives:
 * containerd's `bin/` directory, the CNI plugins' flat archive, a kubelet binary; the
 * agent's own release tarball (scripts/release) for `nodekeeper-agent`.
 */
import type { PackageManifest } from '@nodekeeper/protocol';

export const builtinManifests: Readonly<Record<string, PackageManifest>> = Object.freeze({
  kubelet: {
    name: 'kubelet',
    format: 'tar.gz',
    links: [{ path: '/usr/bin/kubelet', target: 'kubelet' }],
    service: 'kubelet.service',
    healthProbe: 'kubelet',
    healthTimeoutMs: 120_000,
  },
  containerd: {
    name: 'containerd',
    format: 'tar.gz',
    links: [
      { path: '/usr/bin/containerd', target: 'bin/containerd' },
      { path: '/usr/bin/containerd-shim-runc-v2', target: 'bin/containerd-shim-runc-v2' },
    ],
    service: 'containerd.service',
    healthProbe: 'runtime',
    healthTimeoutMs: 120_000,
  },
  'cni-plugins': {
    name: 'cni-plugins',
    format: 'tar.gz',
    links: [{ path: '/opt/cni/bin', target: '.' }],
    service: null,
    healthProbe: 'cni',
    healthTimeoutMs: 60_000,
  },
  // The agent itself (issue 11, item 4). No links: its unit execs
  // /var/lib/nodekeeper/packages/nodekeeper-agent/current/bin/nodekeeper-agent. Its health
  // is its own: the new version must reconnect and send its first report within
  // healthTimeoutMs, or the node switches back by itself (docs/install-agent.md).
  'nodekeeper-agent': {
    name: 'nodekeeper-agent',
    format: 'tar.gz',
    links: [],
    service: 'nodekeeper-agent.service',
    healthProbe: 'agent',
    healthTimeoutMs: 120_000,
  },
});

/** The manifest for a package: its own, else the built-in one, else null (cannot install). */
export function manifestFor(name: string, own: PackageManifest | undefined): PackageManifest | null {
  return own ?? builtinManifests[name] ?? null;
}
