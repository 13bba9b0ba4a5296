/**
 * What a package manifest may touch on a node (architecture invariant 9), as pure rules
 * both sides apply: the coordinator refuses a manifest when it is applied, and the agent
 * refuses it again before it acts (it trusts no coordinator for this).
 *
 * - A link `target` is a relative path inside the version directory: no absolute
 *   target, no `..` segment (the agent also checks, after realpath, that it resolves
 *   inside the version directory).
 * - A link `path` is a normalised absolute host path on an allow-list: the built-in
 *   packages' paths by default, plus what the operator adds (an entry ending in `/`
 *   allows everything below that directory).
 * - A `service` (and any unit the coordinator asks to restart) is a `*.service` unit;
 *   `reboot.target` and friends are not services, and restarting them would get round
 *   the agent's `--allow-reboot`. A manifest's service is also on an allow-list.
 */
import type { ProtocolCode } from './codes.ts';

/** Codes of the manifest rules: install results on the agent, HTTP 400 bodies on the coordinator. */
export const ManifestPolicyCode = {
  /** A link target is absolute, has a `..` segment, or resolves outside the version directory. */
  targetOutside: 'NK_INSTALL_TARGET_OUTSIDE',
  /** A link path is not a normalised absolute path on the install allow-list. */
  pathNotAllowed: 'NK_INSTALL_PATH_NOT_ALLOWED',
  /** The manifest's service is not a `*.service` unit on the install allow-list. */
  serviceNotAllowed: 'NK_INSTALL_SERVICE_NOT_ALLOWED',
  /** `nodekeeper-agent`'s manifest is not the agent's own, or another package names the agent's unit or health. */
  agentManifest: 'NK_AGENT_UPGRADE_MANIFEST_INVALID',
} as const satisfies Record<string, ProtocolCode>;
export type ManifestPolicyCode = (typeof ManifestPolicyCode)[keyof typeof ManifestPolicyCode];

/** What links and services a node lets packages install. */
export interface InstallAllowList {
  /** Exact host paths, or directories ending in `/` (anything strictly below is allowed). */
  readonly paths: readonly string[];
  /** Unit names a manifest's `service` may name (each `*.service`). */
  readonly services: readonly string[];
}

/**
 * The built-in packages' link paths and services (coordinator/src/packages/manifests.ts;
 * a test keeps the two in step). `adoptable` names, per package, the link paths whose
 * pre-existing files (put there by apt before nodekeeper) its first install may move into
 * an `adopted-*` version; no other existing file is ever replaced.
 */
export const DEFAULT_INSTALL_ALLOW_LIST = Object.freeze({
  paths: Object.freeze(['/usr/bin/kubelet', '/usr/bin/containerd', '/usr/bin/containerd-shim-runc-v2', '/opt/cni/bin']),
  services: Object.freeze(['kubelet.service', 'containerd.service', 'nodekeeper-agent.service']),
  adoptable: Object.freeze({
    kubelet: Object.freeze(['/usr/bin/kubelet']),
    containerd: Object.freeze(['/usr/bin/containerd', '/usr/bin/containerd-shim-runc-v2']),
    'cni-plugins': Object.freeze(['/opt/cni/bin']),
  }) as Readonly<Record<string, readonly string[]>>,
});

/** A systemd service unit name: starts with a letter or digit (never an option), ends in `.service`. */
export const SERVICE_UNIT = /^[A-Za-z0-9][A-Za-z0-9@._-]{0,119}\.service$/;

/** The allow-list with `extra` paths and services added (duplicates dropped). */
export function withExtras(base: InstallAllowList, extra: Partial<InstallAllowList>): InstallAllowList {
  return { paths: [...new Set([...base.paths, ...(extra.paths ?? [])])], services: [...new Set([...base.services, ...(extra.services ?? [])])] };
}

/** Why `p` is not a normalised absolute host path (or null): no `.`, `..`, `//`, trailing `/`, NUL. */
export function hostPathProblem(p: string): string | null {
  if (!p.startsWith('/') || p === '/') return 'must be an absolute path other than /';
  if (p.includes('\0')) return 'must not contain NUL';
  const segs = p.slice(1).split('/');
  if (segs.some((s) => s === '' || s === '.' || s === '..')) return 'must be normalised: no empty, "." or ".." segments and no trailing /';
  return null;
}

/** Why `target` could leave the version directory (or null). `.` (the whole directory) is allowed. */
export function linkTargetProblem(target: string): string | null {
  if (target === '' || target.startsWith('/')) return 'must be a relative path inside the version directory';
  if (target.includes('\0') || target.includes('\\')) return 'must not contain NUL or backslash';
  if (target.split('/').includes('..')) return 'must not contain a ".." segment';
  return null;
}

/** True when `p` (a normalised host path) is on `allow`. */
export function pathAllowed(p: string, allow: InstallAllowList): boolean {
  return allow.paths.some((a) => (a.endsWith('/') ? p.startsWith(a) && p.length > a.length : p === a));
}

/** Why `entry` cannot be an allow-list path entry (or null): `/` and un-normalised paths are refused. */
export function allowEntryProblem(entry: string): string | null {
  return hostPathProblem(entry.endsWith('/') ? entry.slice(0, -1) : entry);
}

/** One broken rule, with the field's place inside the manifest (e.g. `links[0].target`). */
export interface ManifestProblem {
  readonly code: ManifestPolicyCode;
  /** Relative to the manifest: `links[1].path`, `service`. */
  readonly path: string;
  readonly message: string;
}

/** The subset of a manifest the rules read. */
export interface ConfinedManifest {
  readonly name?: string;
  readonly format?: string;
  readonly links: ReadonlyArray<{ readonly path: string; readonly target: string }>;
  readonly service: string | null;
  readonly healthProbe?: string;
}

/** The agent's own package (its upgrade: agent/src/self-upgrade/), its unit and its health probe. */
export const AGENT_PACKAGE = 'nodekeeper-agent';
export const AGENT_SERVICE = 'nodekeeper-agent.service';

/**
 * Why `m` breaks the rules of the agent's own package, or null: `nodekeeper-agent` is a
 * tar.gz release run through `current` by its unit (no links), restarts
 * `nodekeeper-agent.service` and is judged by the `agent` probe; no other package may
 * name that unit (restarting it mid-install kills the install) or that probe.
 */
export function agentManifestProblem(m: ConfinedManifest): { path: string; message: string } | null {
  if (m.name === AGENT_PACKAGE) {
    if (m.format !== undefined && m.format !== 'tar.gz') return { path: 'format', message: `${AGENT_PACKAGE} is a tar.gz release, not ${m.format}` };
    if (m.links.length !== 0) return { path: 'links', message: `${AGENT_PACKAGE} has no links: its unit runs it through ${AGENT_PACKAGE}/current` };
    if (m.service !== AGENT_SERVICE) return { path: 'service', message: `${AGENT_PACKAGE}'s service must be ${AGENT_SERVICE}, not ${JSON.stringify(m.service)}` };
    if (m.healthProbe !== undefined && m.healthProbe !== 'agent') return { path: 'healthProbe', message: `${AGENT_PACKAGE}'s health probe must be "agent", not "${m.healthProbe}"` };
    return null;
  }
  if (m.service === AGENT_SERVICE) return { path: 'service', message: `only ${AGENT_PACKAGE} may restart ${AGENT_SERVICE}` };
  if (m.healthProbe === 'agent') return { path: 'healthProbe', message: `only ${AGENT_PACKAGE} is judged by the "agent" health probe` };
  return null;
}

/** Every rule `m` breaks against `allow`, in field order; empty when it may be installed. */
export function manifestProblems(m: ConfinedManifest, allow: InstallAllowList): ManifestProblem[] {
  const out: ManifestProblem[] = [];
  m.links.forEach((link, i) => {
    const badPath = hostPathProblem(link.path);
    if (badPath !== null) out.push({ code: ManifestPolicyCode.pathNotAllowed, path: `links[${i}].path`, message: `link path ${JSON.stringify(link.path)} ${badPath}` });
    else if (!pathAllowed(link.path, allow)) {
      out.push({ code: ManifestPolicyCode.pathNotAllowed, path: `links[${i}].path`, message: `link path ${link.path} is not on the install allow-list (add it with --allow-install-path)` });
    }
    const badTarget = linkTargetProblem(link.target);
    if (badTarget !== null) out.push({ code: ManifestPolicyCode.targetOutside, path: `links[${i}].target`, message: `link target ${JSON.stringify(link.target)} ${badTarget}` });
  });
  const agent = agentManifestProblem(m);
  if (agent !== null) out.push({ code: ManifestPolicyCode.agentManifest, ...agent });
  if (m.service !== null) {
    if (!SERVICE_UNIT.test(m.service)) out.push({ code: ManifestPolicyCode.serviceNotAllowed, path: 'service', message: `service ${JSON.stringify(m.service)} is not a *.service unit` });
    else if (!allow.services.includes(m.service)) {
      out.push({ code: ManifestPolicyCode.serviceNotAllowed, path: 'service', message: `service ${m.service} is not on the install allow-list (add it with --allow-install-service)` });
    }
  }
  return out;
}
