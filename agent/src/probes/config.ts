/**
 * Where the probes look. Every *path* is host-relative and resolved under `hostRoot`,
 * so one agent can run in a container with the host at `/host`, and several agents can
 * share one machine in tests and the demo, each with its own tree.
 */
import path from 'node:path';

export interface ProbeConfig {
  /** '/' in production, '/host' in a container, a temp dir in tests. */
  readonly hostRoot: string;
  readonly kubelet: {
    /** Not a path: the kubelet's healthz endpoint (http://127.0.0.1:10248/healthz). */
    readonly healthzUrl: string;
    readonly binary: string;
    readonly unit: string;
    readonly timeoutMs: number;
  };
  readonly runtime: {
    /** The CRI socket, e.g. /run/containerd/containerd.sock. */
    readonly socket: string;
    readonly unit: string;
    readonly timeoutMs: number;
  };
  readonly cni: {
    readonly confDir: string;
    /** Searched in order; the first dir holding an executable file of a plugin's type wins. */
    readonly binDirs: readonly string[];
    readonly timeoutMs: number;
    /** Versions nodekeeper recorded when it installed packages: {"cni-plugins":{"version":"1.1.1"}}. */
    readonly recordedVersionsFile: string;
  };
  readonly host: {
    readonly dataDirs: readonly string[];
    /** Disk pressure when a data dir's filesystem is at least this full (percent used). */
    readonly diskPressurePercent: number;
    /** Memory pressure when less than this percent of memory is available. */
    readonly memoryPressureAvailablePercent: number;
    /** PID pressure when processes use at least this percent of kernel.pid_max. */
    readonly pidPressurePercent: number;
    /** A host path whose existence says a reboot is required (Debian and Ubuntu write this one). */
    readonly rebootSentinel: string;
    /** A command whose exit 1 says a reboot is required (RHEL: needs-restarting -r), split on spaces; null for none. */
    readonly rebootCheckCommand: readonly string[] | null;
  };
}

/** Production defaults: the paths and ports a kubeadm-style node uses. */
export const defaultProbeConfig: ProbeConfig = Object.freeze({
  hostRoot: '/',
  kubelet: Object.freeze({
    healthzUrl: 'http://127.0.0.1:10248/healthz',
    binary: '/usr/bin/kubelet',
    unit: 'kubelet.service',
    timeoutMs: 3000,
  }),
  runtime: Object.freeze({
    socket: '/run/containerd/containerd.sock',
    unit: 'containerd.service',
    timeoutMs: 3000,
  }),
  cni: Object.freeze({
    confDir: '/etc/cni/net.d',
    binDirs: Object.freeze(['/opt/cni/bin']),
    timeoutMs: 3000,
    recordedVersionsFile: '/var/lib/nodekeeper/packages.json',
  }),
  host: Object.freeze({
    dataDirs: Object.freeze(['/var/lib/kubelet', '/var/lib/containerd']),
    diskPressurePercent: 90,
    memoryPressureAvailablePercent: 5,
    pidPressurePercent: 90,
    rebootSentinel: '/var/run/reboot-required',
    rebootCheckCommand: null,
  }),
});

/**
 * Resolves a host path under the host root: `resolveHostPath('/host', '/etc/machine-id')`
 * is `/host/etc/machine-id`. A path whose `..` segments would climb above the host root
 * is refused with a TypeError (it is a configuration mistake, not a node fault).
 */
export function resolveHostPath(hostRoot: string, hostPath: string): string {
  if (typeof hostRoot !== 'string' || !path.posix.isAbsolute(hostRoot)) {
    throw new TypeError(`hostRoot must be an absolute path, got ${JSON.stringify(hostRoot)}`);
  }
  if (typeof hostPath !== 'string' || hostPath === '') {
    throw new TypeError(`host path must be a non-empty string, got ${JSON.stringify(hostPath)}`);
  }
  // path.normalize would silently clamp '/../x' to '/x'; walk the segments to refuse it.
  const kept: string[] = [];
  for (const segment of hostPath.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (kept.length === 0) throw new TypeError(`host path ${JSON.stringify(hostPath)} escapes the host root`);
      kept.pop();
    } else {
      kept.push(segment);
    }
  }
  return path.posix.join(hostRoot, ...kept);
}
