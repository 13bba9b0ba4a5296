/**
 * The coordinator's configuration: defaults, then a YAML config file, then
 * NODEKEEPER_COORDINATOR_* environment variables, then flags. Parsed once, validated,
 * frozen and passed down; nothing else reads process.env.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { AppError, defaultBackoff, layeredOptions } from '@nodekeeper/common';
import { allowEntryProblem, SERVICE_UNIT } from '@nodekeeper/protocol';
import { parseIntOrPercent, type IntOrPercent } from './budget/int-or-percent.ts';
import { defaultAdmission, type AdmissionOptions } from './gateway/admission.ts';
import { DEFAULT_FAULT_SETTINGS, type FaultSettings } from './remediation/faults.ts';
import { DEFAULT_REMEDIATION_SETTINGS, type RemediationSettings } from './remediation/types.ts';
import type { RetentionOptions } from './controllers/retention-controller.ts';
import { parseDuration } from './cli/duration.ts';
import { DEFAULT_MIRROR_LINGER_MS, HOST_MIRROR_MODES, type HostMirrorMode } from './host/mirror-selection.ts';
import { sinkDefaults, sinkFlags, sinkOptions, sinkUsage, type SinksConfig } from './notify/sinks-config.ts';

export interface CoordinatorConfig {
  /** Address to listen on for the API and agent connections. */
  readonly host: string;
  readonly port: number;
  /** Where the SQLite file, TLS material and the admin credential live. */
  readonly dataDir: string;
  /** Serve plain http/ws. Only for tests and demos behind an explicit flag. */
  readonly insecure: boolean;
  /** Operator-provided TLS files (all three), instead of the generated CA. */
  readonly tls: { readonly certFile: string; readonly keyFile: string; readonly caFile: string } | null;
  /** Extra DNS names / IPs for the generated serving certificate. */
  readonly tlsNames: readonly string[];
  /** Lifetime of the generated serving certificate; renewed in place with a third left. */
  readonly tlsServingLifetimeMs: number;
  /** How often the TLS session ticket key is rotated (tls/ticket-keys.ts); a ticket is honoured for two rotations. */
  readonly tlsTicketRotationMs: number;
  /** More link paths package manifests may use, beyond the built-in packages' (exact, or a directory ending in `/`). */
  readonly allowInstallPaths: readonly string[];
  /** More `*.service` units package manifests may name, beyond kubelet.service and containerd.service. */
  readonly allowInstallServices: readonly string[];
  /** Public URL agents and nkctl use (printed in join hints); derived when unset. */
  readonly advertiseUrl: string | null;
  readonly heartbeatIntervalMs: number;
  /** Silence after which a machine is Unknown (Kubernetes uses 40 s for node leases). */
  readonly livenessGraceMs: number;
  /** Contact that must be sustained before leaving Unknown (hysteresis). */
  readonly livenessRecoverMs: number;
  /**
   * The agents' reconnect backoff cap, as they are configured (the agent's default): the
   * restart grace covers one whole step of it (fleet/restart-grace.ts).
   */
  readonly reconnectBackoffCapMs: number;
  /** How often in-memory last-seen times and status changes are flushed to SQLite. */
  readonly flushIntervalMs: number;
  /** Per-connection message budget: sustained rate and burst. */
  readonly rateLimit: { readonly perSecond: number; readonly burst: number };
  /** Invalid frames tolerated on one connection before it is closed. */
  readonly maxInvalidFrames: number;
  readonly maxConnections: number;
  /**
   * Gateway worker processes (gateway/gateway-workers.ts): with N > 0 they terminate TLS
   * and WebSockets on the port and this process keeps the state; 0 serves in-process.
   */
  readonly gatewayWorkers: number;
  /** How long a machine credential lasts; agents get a new one over their connection when a third is left. */
  readonly machineCredentialTtlMs: number;
  /** How long a fleet-page sign-in lasts (docs/ui.md). */
  readonly sessionTtlMs: number;
  /** Limits of the HTTP server (API, enrollment, artifact downloads): see docs/coordinator.md. */
  readonly http: HttpLimits;
  /** The HTTP API's server-side watch (watch/hub.ts; docs/nkctl.md, "Watch"). */
  readonly api: ApiWatchOptions;
  /** What is pruned, when, and in what batches (docs/coordinator.md, "Retention"). */
  readonly retention: RetentionOptions;
  /** Admission control on the agents' upgrade path (reconnect storms); see gateway/admission.ts. */
  readonly admission: AdmissionOptions;
  /**
   * The member cluster's control-plane (kube-apiserver) version, which bounds kubelet
   * upgrades (version-skew policy); null until known (flag, or the host sync later).
   */
  readonly controlPlaneVersion: string | null;
  /**
   * Cluster-wide cap on machines nodekeeper makes unavailable at once, absolute or N% of
   * the enrolled machines (rounded down, at least 1); parsed here once, for budget/.
   */
  readonly maxUnavailable: IntOrPercent;
  /** Largest artifact `nkctl artifact push` may upload. */
  readonly maxArtifactBytes: number;
  /** Remediation timing overrides (tests and demos shorten them); null: the documented defaults. */
  readonly remediation: { readonly settings: RemediationSettings; readonly faults: FaultSettings } | null;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** How often the member renews its Lease and syncs with the host (jittered +-10 %). */
  readonly hostSyncIntervalMs: number;
  /** Lifetime of the host credential the member requests (rotated at 80 %). */
  readonly hostTokenTtlSeconds: number;
  /** Which Machines are mirrored to the host: those that need an eye, or all (host/mirror-selection.ts). */
  readonly hostMirror: HostMirrorMode;
  /** How long a machine stays mirrored after it last needed an eye (`unhealthy` mirror). */
  readonly hostMirrorLingerMs: number;
  /** Register at start with these, unless already registered (the same as `nkctl register`). */
  readonly hostRegistration: {
    readonly kubeconfig: string;
    readonly token: string;
    readonly caHash: string;
    readonly clusterName: string;
  } | null;
  /** kubeconfig of the member cluster's own API: its version, Node readiness, cordon and drain. */
  readonly memberKubeconfig: string | null;
  /** How long a drain may wait on evictions (PodDisruptionBudgets) before it stops. */
  readonly drainTimeoutMs: number;
  /** Packages whose rollout installs cordon and drain the Node first (with the member API). */
  readonly drainBeforeInstall: readonly string[];
  /** nodekeeper's conditions on the member Nodes (docs/kubernetes.md, "Node conditions"); needs memberKubeconfig. */
  readonly nodeConditions: { readonly enabled: boolean; readonly minIntervalMs: number; readonly maxConcurrent: number };
  /** Scheduled snapshots (docs/operations.md, "Backup and restore"); dir null: none. */
  readonly backup: { readonly dir: string | null; readonly intervalMs: number; readonly keep: number };
  /** Consumers of the event log: Kubernetes Events and notification webhooks (notify/sinks-config.ts). */
  readonly sinks: SinksConfig;
}

export interface ApiWatchOptions {
  /** Concurrent watches, at most; more are refused with 429 NK_WATCH_TOO_MANY. */
  readonly maxWatchers: number;
  /** Changes kept for resuming a watch at a resourceVersion; older ones are 410 Expired. */
  readonly watchHistory: number;
  /** Bytes of object JSON the watch history may hold (the oldest versions go first). */
  readonly watchHistoryBytes: number;
  /** A BOOKMARK line at least this often on every watch. */
  readonly watchBookmarkMs: number;
  /** A watch whose reader leaves over 1 MiB unread this long is dropped. */
  readonly watchStallMs: number;
}

export interface HttpLimits {
  /** Time allowed for a request's headers (and for a TLS handshake) from connect (slowloris). */
  readonly headersTimeoutMs: number;
  /** Time allowed for a whole request, body included (the largest artifact upload must fit). */
  readonly requestTimeoutMs: number;
  /** How long an idle keep-alive connection is kept between requests. */
  readonly keepAliveTimeoutMs: number;
  /** Connections that are not agent WebSockets (API, enrollment, downloads, upgrades not yet done), at most. */
  readonly maxConnections: number;
}

const DAY_MS = 86_400_000;

export const defaults: CoordinatorConfig = Object.freeze({
  host: '0.0.0.0',
  port: 7443,
  dataDir: '/var/lib/nodekeeper-coordinator',
  insecure: false,
  tls: null,
  tlsNames: [],
  tlsServingLifetimeMs: 365 * 86_400_000,
  tlsTicketRotationMs: 12 * 3_600_000,
  allowInstallPaths: [],
  allowInstallServices: [],
  advertiseUrl: null,
  heartbeatIntervalMs: 10_000,
  livenessGraceMs: 40_000,
  livenessRecoverMs: 10_000,
  reconnectBackoffCapMs: defaultBackoff.capMs,
  flushIntervalMs: 1_000,
  rateLimit: { perSecond: 20, burst: 100 },
  maxInvalidFrames: 10,
  maxConnections: 60_000,
  gatewayWorkers: 0,
  machineCredentialTtlMs: 30 * 86_400_000,
  sessionTtlMs: 8 * 3_600_000,
  http: Object.freeze({ headersTimeoutMs: 10_000, requestTimeoutMs: 900_000, keepAliveTimeoutMs: 65_000, maxConnections: 4096 }),
  api: Object.freeze({ maxWatchers: 100, watchHistory: 10_000, watchHistoryBytes: 16 * 1024 * 1024, watchBookmarkMs: 10_000, watchStallMs: 30_000 }),
  retention: Object.freeze({
    eventsMaxAgeMs: 30 * DAY_MS,
    eventsMaxRows: 1_000_000,
    commandsMaxAgeMs: 14 * DAY_MS,
    tokensMaxAgeMs: 7 * DAY_MS,
    observationsMaxAgeMs: 14 * DAY_MS,
    intervalMs: 600_000,
    batchRows: 500,
    maxBatchesPerRound: 200,
  }),
  admission: defaultAdmission,
  controlPlaneVersion: null,
  maxUnavailable: '10%',
  maxArtifactBytes: 2 * 1024 ** 3,
  remediation: null,
  logLevel: 'info',
  hostSyncIntervalMs: 10_000,
  hostTokenTtlSeconds: 86_400,
  hostMirror: 'unhealthy',
  hostMirrorLingerMs: DEFAULT_MIRROR_LINGER_MS,
  hostRegistration: null,
  memberKubeconfig: null,
  drainTimeoutMs: 300_000,
  drainBeforeInstall: Object.freeze(['kubelet', 'containerd']),
  nodeConditions: Object.freeze({ enabled: true, minIntervalMs: 10_000, maxConcurrent: 8 }),
  backup: Object.freeze({ dir: null, intervalMs: 6 * 3_600_000, keep: 7 }),
  sinks: sinkDefaults,
});

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const usage = `Usage: nodekeeper-coordinator [options]

Runs the nodekeeper coordinator: accepts agents over wss, keeps Machines in SQLite,
serves the HTTP API for nkctl. On first start it creates a CA, a serving certificate
and an admin API credential under --data-dir (nkctl.yaml there is ready for nkctl).

Options (also env NODEKEEPER_COORDINATOR_<NAME>, e.g. NODEKEEPER_COORDINATOR_PORT, or a key
of the YAML --config file, whose path NODEKEEPER_COORDINATOR_CONFIG may give; the old
NODEKEEPER_<NAME> is refused):
  --config FILE                 YAML file with any of the options below (camelCase keys)
  --host ADDR                   listen address (default ${defaults.host})
  --port N                      listen port; 0 picks a free one (default ${defaults.port})
  --data-dir DIR                state directory (default ${defaults.dataDir})
  --insecure                    serve plain http/ws instead of https/wss (tests, demos)
  --tls-cert FILE --tls-key FILE --tls-ca FILE   use these instead of the generated CA
  --tls-name NAME               extra DNS name or IP for the generated certificate (repeatable)
  --tls-serving-lifetime S      lifetime of the generated serving certificate in seconds; it is renewed
                                in place when a third is left (default ${defaults.tlsServingLifetimeMs / 1000}, a year)
  --tls-ticket-rotation S       rotate the TLS session ticket key every S seconds; the previous key still
                                opens tickets until the next rotation, and both survive a restart
                                (default ${defaults.tlsTicketRotationMs / 1000}, 12 hours; at most 302400, 3.5 days)
  --allow-install-path PATH     a host path package manifests may link, beyond the built-in packages'
                                (repeatable; PATH/ for everything below a directory; agents need it too)
  --allow-install-service UNIT  a *.service package manifests may name, beyond kubelet and containerd (repeatable)
  --advertise-url URL           URL agents and nkctl should use (default: derived)
  --heartbeat-interval MS       agent heartbeat interval (default ${defaults.heartbeatIntervalMs})
  --liveness-grace MS           silence before Unknown (default ${defaults.livenessGraceMs})
  --liveness-recover MS         contact needed to leave Unknown (default ${defaults.livenessRecoverMs})
  --reconnect-backoff-cap MS    the agents' reconnect backoff cap (default ${defaults.reconnectBackoffCapMs}, the agent's); after a
                                restart, a machine not heard from yet is Unknown only after the grace plus the
                                fleet's readmission time plus one such step (docs/coordinator.md, "Liveness after a restart")
  --flush-interval MS           batched write interval (default ${defaults.flushIntervalMs})
  --machine-credential-ttl MS   lifetime of a machine credential; rotated over the live connection when a
                                third is left, re-enrolled with the machine key when it lapsed (default 30 days)
  --session-ttl S               lifetime of a fleet-page sign-in (the /ui/ session cookie), in seconds
                                (default ${defaults.sessionTtlMs / 1000}, 8 hours)
  --max-pending-upgrades N      agent connections admitted but not yet welcomed, at most (default ${defaults.admission.maxPending})
  --max-upgrades-per-second N   agent connections admitted per second, at most (default ${defaults.admission.perSecond});
                                beyond either (or a tenth of the rate while the event loop is busy over ${defaults.admission.maxLoopUtilization * 100} %
                                of a second or stalls over ${defaults.admission.maxLoopDelayMs} ms), agents get 503 and Retry-After
  --gateway-workers N           run the agent gateway (TLS, WebSockets, frame checks) in N worker processes
                                sharing the port (0..16; default ${defaults.gatewayWorkers}: in this process); this process keeps
                                all state and serves the API to them on a private unix socket
  --http-headers-timeout MS     time for a request's headers, and for a TLS handshake (default ${defaults.http.headersTimeoutMs})
  --http-request-timeout MS     time for a whole request, body included (default ${defaults.http.requestTimeoutMs})
  --http-keep-alive-timeout MS  idle time kept between requests on a connection (default ${defaults.http.keepAliveTimeoutMs})
  --http-max-connections N      connections that are not agent WebSockets, at most (default ${defaults.http.maxConnections});
                                agents have their own cap (60000)
  --api-max-watchers N          concurrent API watches (?watch=1), at most (default ${defaults.api.maxWatchers}); more get 429
  --watch-history N             changes kept to resume a watch from a resourceVersion (default ${defaults.api.watchHistory})
  --watch-history-bytes N       bytes of object JSON the watch history may hold; the oldest versions go first (default ${defaults.api.watchHistoryBytes})
  --watch-bookmark-interval MS  a BOOKMARK on every watch at least this often (default ${defaults.api.watchBookmarkMs})
  --watch-stall-timeout MS      a watch whose reader leaves over 1 MiB unread this long is dropped (default ${defaults.api.watchStallMs})
  --retain-events S             prune events older than this, in seconds (default ${defaults.retention.eventsMaxAgeMs / 1000}, 30 days; 0 keeps them)
  --retain-events-max N         keep at most the newest N events (default ${defaults.retention.eventsMaxRows}; 0 for no cap)
  --retain-commands S           prune finished commands older than this (default ${defaults.retention.commandsMaxAgeMs / 1000}, 14 days; 0 keeps them)
  --retain-tokens S             prune bootstrap tokens this long after expiry or revocation (default ${defaults.retention.tokensMaxAgeMs / 1000}, 7 days)
  --retain-observations S       prune status observations older than this, keeping each component's latest
                                (default ${defaults.retention.observationsMaxAgeMs / 1000}, 14 days; 0 keeps them)
  --retention-interval MS       time between pruning rounds (default ${defaults.retention.intervalMs})
  --control-plane-version V     the cluster's kube-apiserver version; kubelet upgrades never pass it
  --max-unavailable N|P%        cluster-wide cap on machines made unavailable at once (default ${defaults.maxUnavailable})
  --fault-hold S                how long a fault must hold before it counts (default per fault, 30-60 s)
  --fault-clear S               how long a fault must be healthy before it clears (default 60-300 s)
  --storm-cooldown S            calm needed after a storm before remediation resumes (default 600)
  --remediation-max-concurrent N   fleet cap on remediations in flight (default 5)
  --storm-max-unhealthy N       the storm guard's floor: a storm is more unhealthy machines than max(N, 10% of the fleet) (default 1)
  --log-level LEVEL             ${LOG_LEVELS.join('|')} (default ${defaults.logLevel})

Backups (see docs/operations.md; 'nodekeeper-coordinator restore --help' restores one):
  --backup-dir DIR              take scheduled snapshots into DIR (default: none)
  --backup-interval DURATION    time between snapshots, e.g. 30m, 6h (default 6h; needs --backup-dir)
  --backup-keep N               snapshots kept in DIR, the oldest deleted (default ${defaults.backup.keep})

Host cluster (pull mode; see docs/host.md):
  --host-kubeconfig FILE --host-token T --host-ca-hash sha256:... --cluster-name NAME
                                register at start unless registered (as \`nkctl register\`)
  --host-sync-interval MS       Lease renewal and status sync interval (default ${defaults.hostSyncIntervalMs})
  --host-token-ttl S            lifetime of the host credential, rotated at 80 % (default ${defaults.hostTokenTtlSeconds})
  --host-mirror unhealthy|all   Machines mirrored to the host: only those not healthy (or labelled
                                nodekeeper.io/host-mirror=true), with counts in the Cluster status; or all (default ${defaults.hostMirror})
  --host-mirror-linger MS       how long a machine stays mirrored after it last needed it (default ${defaults.hostMirrorLingerMs})
  --member-kubeconfig FILE      the member cluster's API: version, Node readiness, cordon and drain
  --drain-timeout MS            default timeout of a whole drain: refused evictions and pods going (default ${defaults.drainTimeoutMs})
  --drain-before-install LIST   packages whose rollout installs drain the Node first, comma-separated,
                                or none (default ${defaults.drainBeforeInstall.join(',')}; needs --member-kubeconfig)
  --node-conditions BOOL        keep nodekeeper's conditions on the member Nodes (default ${defaults.nodeConditions.enabled}; needs --member-kubeconfig)
  --node-condition-interval MS  at most one condition write per Node per this long; changes meanwhile
                                coalesce, the latest wins (default ${defaults.nodeConditions.minIntervalMs})
  --node-condition-writers N    condition writes in flight across the fleet, at most (default ${defaults.nodeConditions.maxConcurrent})

${sinkUsage}  -h, --help                    this text
`;

/** A repeatable install allow-list option (flags repeat, env and file give lists), each entry checked. */
function installList(v: unknown, name: string, problem: (entry: string) => string | null): string[] {
  if (v === undefined) return [];
  const items = typeof v === 'string' ? v.split(',') : v;
  if (!Array.isArray(items) || !items.every((i) => typeof i === 'string')) throw bad(`${name} must be a list of strings`);
  const out = items.map((i: string) => i.trim()).filter((i) => i !== '');
  for (const e of out) {
    const why = problem(e);
    if (why !== null) throw bad(`${name} "${e}" ${why}`);
  }
  return out;
}

const flagSpec = {
  config: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  'data-dir': { type: 'string' },
  insecure: { type: 'boolean' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-name': { type: 'string', multiple: true },
  'tls-serving-lifetime': { type: 'string' },
  'tls-ticket-rotation': { type: 'string' },
  'allow-install-path': { type: 'string', multiple: true },
  'allow-install-service': { type: 'string', multiple: true },
  'advertise-url': { type: 'string' },
  'heartbeat-interval': { type: 'string' },
  'liveness-grace': { type: 'string' },
  'machine-credential-ttl': { type: 'string' },
  'session-ttl': { type: 'string' },
  'liveness-recover': { type: 'string' },
  'reconnect-backoff-cap': { type: 'string' },
  'flush-interval': { type: 'string' },
  'max-pending-upgrades': { type: 'string' },
  'max-upgrades-per-second': { type: 'string' },
  'http-headers-timeout': { type: 'string' },
  'http-request-timeout': { type: 'string' },
  'http-keep-alive-timeout': { type: 'string' },
  'http-max-connections': { type: 'string' },
  'api-max-watchers': { type: 'string' },
  'watch-history': { type: 'string' },
  'watch-history-bytes': { type: 'string' },
  'watch-bookmark-interval': { type: 'string' },
  'watch-stall-timeout': { type: 'string' },
  'gateway-workers': { type: 'string' },
  'retain-events': { type: 'string' },
  'retain-events-max': { type: 'string' },
  'retain-commands': { type: 'string' },
  'retain-tokens': { type: 'string' },
  'retain-observations': { type: 'string' },
  'retention-interval': { type: 'string' },
  'control-plane-version': { type: 'string' },
  'max-unavailable': { type: 'string' },
  'fault-hold': { type: 'string' },
  'fault-clear': { type: 'string' },
  'storm-cooldown': { type: 'string' },
  'remediation-max-concurrent': { type: 'string' },
  'storm-max-unhealthy': { type: 'string' },
  'log-level': { type: 'string' },
  'host-kubeconfig': { type: 'string' },
  'host-token': { type: 'string' },
  'host-ca-hash': { type: 'string' },
  'cluster-name': { type: 'string' },
  'host-sync-interval': { type: 'string' },
  'host-token-ttl': { type: 'string' },
  'host-mirror': { type: 'string' },
  'host-mirror-linger': { type: 'string' },
  'member-kubeconfig': { type: 'string' },
  'drain-timeout': { type: 'string' },
  'drain-before-install': { type: 'string' },
  'node-conditions': { type: 'string' },
  'node-condition-interval': { type: 'string' },
  'node-condition-writers': { type: 'string' },
  'backup-dir': { type: 'string' },
  'backup-interval': { type: 'string' },
  'backup-keep': { type: 'string' },
  ...sinkFlags,
  help: { type: 'boolean', short: 'h' },
} as const;

const bad = (message: string, context: Record<string, unknown> = {}) =>
  new AppError('NK_CONFIG_INVALID', message, { context });

function int(name: string, raw: unknown, min: number, max: number): number {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw bad(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

function bool(name: string, raw: unknown): boolean {
  if (typeof raw === 'boolean') return raw;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0' || raw === '') return false;
  throw bad(`${name} must be true or false, got ${JSON.stringify(raw)}`);
}

function str(name: string, raw: unknown): string {
  if (typeof raw !== 'string' || raw.trim() === '') throw bad(`${name} must be a non-empty string`);
  return raw;
}

type Raw = Record<string, unknown>;

/** Builds the frozen configuration, or throws NK_CONFIG_INVALID naming the bad option. */
export function loadConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): { config: CoordinatorConfig; help: boolean } {
  const { raw, help } = layeredOptions(flagSpec, argv, env, usage, 'nodekeeper-coordinator');

  const given = [raw['tlsCert'], raw['tlsKey'], raw['tlsCa']].filter((v) => v !== undefined).length;
  if (given !== 0 && given !== 3) throw bad('--tls-cert, --tls-key and --tls-ca go together');
  const level = raw['logLevel'] ?? defaults.logLevel;
  if (!LOG_LEVELS.includes(level as (typeof LOG_LEVELS)[number])) throw bad(`log level must be one of ${LOG_LEVELS.join(', ')}`);
  const names = raw['tlsName'] ?? [];
  if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) throw bad('tls names must be a list of strings');
  const opt = <T>(key: string, fallback: T, read: (name: string, v: unknown) => T): T =>
    raw[key] === undefined ? fallback : read(key, raw[key]);
  const ms = (min: number, max: number) => (name: string, v: unknown) => int(name, v, min, max);
  const seconds = (name: string, v: unknown) => int(name, v, 0, 10 * 365 * 86_400) * 1000;

  const config: CoordinatorConfig = {
    host: opt('host', defaults.host, str),
    port: opt('port', defaults.port, ms(0, 65535)),
    dataDir: opt('dataDir', defaults.dataDir, str),
    insecure: opt('insecure', defaults.insecure, bool),
    tls: given === 3 ? { certFile: str('tlsCert', raw['tlsCert']), keyFile: str('tlsKey', raw['tlsKey']), caFile: str('tlsCa', raw['tlsCa']) } : null,
    tlsNames: Object.freeze([...(names as string[])]),
    tlsServingLifetimeMs: opt('tlsServingLifetime', defaults.tlsServingLifetimeMs, (n, v) => int(n, v, 5, 10 * 365 * 86_400) * 1000),
    tlsTicketRotationMs: opt('tlsTicketRotation', defaults.tlsTicketRotationMs, (n, v) => int(n, v, 5, 302_400) * 1000),
    allowInstallPaths: Object.freeze(installList(raw['allowInstallPath'], 'allow install path', allowEntryProblem)),
    allowInstallServices: Object.freeze(installList(raw['allowInstallService'], 'allow install service', (u) => (SERVICE_UNIT.test(u) ? null : 'must be a unit name ending in .service'))),
    advertiseUrl: opt('advertiseUrl', defaults.advertiseUrl, str),
    heartbeatIntervalMs: opt('heartbeatInterval', defaults.heartbeatIntervalMs, ms(100, 3_600_000)),
    livenessGraceMs: opt('livenessGrace', defaults.livenessGraceMs, ms(100, 86_400_000)),
    machineCredentialTtlMs: opt('machineCredentialTtl', defaults.machineCredentialTtlMs, ms(10_000, 3 * 366 * 86_400_000)),
    sessionTtlMs: opt('sessionTtl', defaults.sessionTtlMs, (n, v) => int(n, v, 60, 30 * 86_400) * 1000),
    livenessRecoverMs: opt('livenessRecover', defaults.livenessRecoverMs, ms(0, 86_400_000)),
    reconnectBackoffCapMs: opt('reconnectBackoffCap', defaults.reconnectBackoffCapMs, ms(0, 3_600_000)),
    flushIntervalMs: opt('flushInterval', defaults.flushIntervalMs, ms(10, 60_000)),
    rateLimit: defaults.rateLimit,
    maxInvalidFrames: defaults.maxInvalidFrames,
    maxConnections: defaults.maxConnections,
    gatewayWorkers: opt('gatewayWorkers', defaults.gatewayWorkers, ms(0, 16)),
    http: Object.freeze({
      headersTimeoutMs: opt('httpHeadersTimeout', defaults.http.headersTimeoutMs, ms(100, 600_000)),
      requestTimeoutMs: opt('httpRequestTimeout', defaults.http.requestTimeoutMs, ms(1000, 86_400_000)),
      keepAliveTimeoutMs: opt('httpKeepAliveTimeout', defaults.http.keepAliveTimeoutMs, ms(100, 3_600_000)),
      maxConnections: opt('httpMaxConnections', defaults.http.maxConnections, ms(1, 1_000_000)),
    }),
    api: Object.freeze({
      maxWatchers: opt('apiMaxWatchers', defaults.api.maxWatchers, ms(0, 100_000)),
      watchHistory: opt('watchHistory', defaults.api.watchHistory, ms(1, 1_000_000)),
      watchHistoryBytes: opt('watchHistoryBytes', defaults.api.watchHistoryBytes, ms(65_536, 1024 * 1024 * 1024)),
      watchBookmarkMs: opt('watchBookmarkInterval', defaults.api.watchBookmarkMs, ms(100, 60_000)),
      watchStallMs: opt('watchStallTimeout', defaults.api.watchStallMs, ms(100, 3_600_000)),
    }),
    retention: Object.freeze({
      ...defaults.retention,
      eventsMaxAgeMs: opt('retainEvents', defaults.retention.eventsMaxAgeMs, seconds),
      eventsMaxRows: opt('retainEventsMax', defaults.retention.eventsMaxRows, ms(0, 1_000_000_000)),
      commandsMaxAgeMs: opt('retainCommands', defaults.retention.commandsMaxAgeMs, seconds),
      tokensMaxAgeMs: opt('retainTokens', defaults.retention.tokensMaxAgeMs, seconds),
      observationsMaxAgeMs: opt('retainObservations', defaults.retention.observationsMaxAgeMs, seconds),
      intervalMs: opt('retentionInterval', defaults.retention.intervalMs, ms(100, 86_400_000)),
    }),
    admission: Object.freeze({
      ...defaults.admission,
      maxPending: opt('maxPendingUpgrades', defaults.admission.maxPending, ms(1, 100_000)),
      perSecond: opt('maxUpgradesPerSecond', defaults.admission.perSecond, ms(1, 100_000)),
    }),
    controlPlaneVersion: opt('controlPlaneVersion', defaults.controlPlaneVersion, (n, v) => {
      const text = str(n, v);
      if (!/^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$/.test(text)) throw bad(`control plane version must look like v1.31.2, got ${JSON.stringify(text)}`);
      return text;
    }),
    maxUnavailable: opt('maxUnavailable', defaults.maxUnavailable, (n, v) => {
      const value = parseIntOrPercent(String(v));
      if (value === null || value === 0 || value === '0%' || (typeof value === 'string' && Number(value.slice(0, -1)) > 100)) {
        throw bad(`${n} must be a positive count or a percentage from 1% to 100%, got ${JSON.stringify(v)}`);
      }
      return value;
    }),
    maxArtifactBytes: defaults.maxArtifactBytes,
    remediation: remediationOverrides(raw),
    logLevel: level as CoordinatorConfig['logLevel'],
    hostSyncIntervalMs: opt('hostSyncInterval', defaults.hostSyncIntervalMs, ms(100, 600_000)),
    hostTokenTtlSeconds: opt('hostTokenTtl', defaults.hostTokenTtlSeconds, ms(600, 31_536_000)),
    hostMirror: opt('hostMirror', defaults.hostMirror, (n, v) => {
      if (!HOST_MIRROR_MODES.includes(v as HostMirrorMode)) throw bad(`${n} must be one of ${HOST_MIRROR_MODES.join(', ')}, got ${JSON.stringify(v)}`);
      return v as HostMirrorMode;
    }),
    hostMirrorLingerMs: opt('hostMirrorLinger', defaults.hostMirrorLingerMs, ms(0, 86_400_000)),
    hostRegistration: hostRegistration(raw),
    memberKubeconfig: opt('memberKubeconfig', defaults.memberKubeconfig, str),
    drainTimeoutMs: opt('drainTimeout', defaults.drainTimeoutMs, ms(1000, 86_400_000)),
    drainBeforeInstall: opt('drainBeforeInstall', defaults.drainBeforeInstall, (n, v) => {
      const text = String(v).trim();
      if (text === 'none' || text === '') return Object.freeze([]);
      const list = text.split(',').map((x) => x.trim());
      if (!list.every((x) => /^[a-z][a-z0-9-]{0,62}$/.test(x))) throw bad(`${n} must be package names separated by commas, or none; got ${JSON.stringify(v)}`);
      return Object.freeze(list);
    }),
    nodeConditions: Object.freeze({
      enabled: opt('nodeConditions', defaults.nodeConditions.enabled, bool),
      minIntervalMs: opt('nodeConditionInterval', defaults.nodeConditions.minIntervalMs, ms(0, 3_600_000)),
      maxConcurrent: opt('nodeConditionWriters', defaults.nodeConditions.maxConcurrent, ms(1, 1000)),
    }),
    backup: backupSchedule(raw),
    sinks: sinkOptions(raw),
  };
  if (config.advertiseUrl !== null) checkAdvertiseUrl(config.advertiseUrl, config.insecure);
  if (config.http.requestTimeoutMs < config.http.headersTimeoutMs) {
    throw bad(`--http-request-timeout (${config.http.requestTimeoutMs} ms) must be at least --http-headers-timeout (${config.http.headersTimeoutMs} ms)`);
  }
  if (config.livenessGraceMs <= config.heartbeatIntervalMs) {
    throw bad(`liveness grace (${config.livenessGraceMs} ms) must exceed the heartbeat interval (${config.heartbeatIntervalMs} ms)`);
  }
  return { config: Object.freeze(config), help };
}

/** --backup-dir, --backup-interval (a Go duration, at least 1 s) and --backup-keep. */
function backupSchedule(raw: Raw): CoordinatorConfig['backup'] {
  const dir = raw['backupDir'] === undefined ? null : str('backup dir', raw['backupDir']);
  if (dir === null && (raw['backupInterval'] !== undefined || raw['backupKeep'] !== undefined)) throw bad('--backup-interval and --backup-keep need --backup-dir');
  let intervalMs = defaults.backup.intervalMs;
  if (raw['backupInterval'] !== undefined) {
    try {
      intervalMs = parseDuration(String(raw['backupInterval']), 'backup interval');
    } catch (err) {
      throw new AppError('NK_CONFIG_INVALID', (err as Error).message, { cause: err });
    }
    if (intervalMs < 1000 || intervalMs > 366 * DAY_MS) throw bad(`backup interval must be from 1s to 8784h, got ${JSON.stringify(raw['backupInterval'])}`);
  }
  const keep = raw['backupKeep'] === undefined ? defaults.backup.keep : int('backup keep', raw['backupKeep'], 1, 10_000);
  return Object.freeze({ dir, intervalMs, keep });
}

/** --host-kubeconfig, --host-token, --host-ca-hash and --cluster-name go together. */
function hostRegistration(raw: Raw): CoordinatorConfig['hostRegistration'] {
  const keys = ['hostKubeconfig', 'hostToken', 'hostCaHash', 'clusterName'] as const;
  const given = keys.filter((k) => raw[k] !== undefined);
  if (given.length === 0) return null;
  if (given.length !== keys.length) throw bad('--host-kubeconfig, --host-token, --host-ca-hash and --cluster-name go together');
  const caHash = str('hostCaHash', raw['hostCaHash']);
  if (!/^sha256:[0-9a-f]{64}$/.test(caHash)) throw bad('--host-ca-hash must be sha256: and 64 hex digits');
  if (!/^[a-z0-9]{6}\.[a-z0-9]{16}$/.test(str('hostToken', raw['hostToken']))) throw bad('--host-token must look like abcdef.0123456789abcdef');
  return { kubeconfig: str('hostKubeconfig', raw['hostKubeconfig']), token: raw['hostToken'] as string, caHash, clusterName: str('clusterName', raw['clusterName']) };
}

/** Agents and nkctl dial what is advertised: a URL of the scheme this coordinator serves. */
function checkAdvertiseUrl(url: string, insecure: boolean): void {
  const want = insecure ? 'http:' : 'https:';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw new AppError('NK_CONFIG_INVALID', `advertise URL "${url}" is not a URL (want ${want}//host:port)`, { cause: err });
  }
  if (parsed.protocol !== want) throw bad(`advertise URL ${url} must start with ${want}// (the coordinator serves ${insecure ? 'plain http' : 'https'})`);
}

/** Remediation timings from --fault-hold, --fault-clear, --storm-cooldown, --remediation-max-concurrent, --storm-max-unhealthy. */
function remediationOverrides(raw: Raw): CoordinatorConfig['remediation'] {
  const keys = ['faultHold', 'faultClear', 'stormCooldown', 'remediationMaxConcurrent', 'stormMaxUnhealthy'];
  if (keys.every((k) => raw[k] === undefined)) return null;
  const hold = raw['faultHold'] === undefined ? null : int('fault hold', raw['faultHold'], 0, 86_400);
  const clear = raw['faultClear'] === undefined ? null : int('fault clear', raw['faultClear'], 0, 86_400);
  const timing = Object.fromEntries(
    Object.entries(DEFAULT_FAULT_SETTINGS.timing).map(([type, t]) => [
      type,
      { forSeconds: hold === null || t.forSeconds === 0 ? t.forSeconds : hold, clearSeconds: clear ?? t.clearSeconds },
    ]),
  ) as unknown as FaultSettings['timing'];
  return {
    faults: { ...DEFAULT_FAULT_SETTINGS, timing },
    settings: {
      ...DEFAULT_REMEDIATION_SETTINGS,
      ...(raw['stormCooldown'] === undefined ? {} : { stormCooldownSeconds: int('storm cooldown', raw['stormCooldown'], 0, 86_400) }),
      ...(raw['remediationMaxConcurrent'] === undefined ? {} : { maxConcurrent: int('remediation max concurrent', raw['remediationMaxConcurrent'], 1, 100_000) }),
      ...(raw['stormMaxUnhealthy'] === undefined ? {} : { maxUnhealthy: { ...DEFAULT_REMEDIATION_SETTINGS.maxUnhealthy, absolute: int('storm max unhealthy', raw['stormMaxUnhealthy'], 0, 100_000) } }),
    },
  };
}

/** Default names for the generated serving certificate. */
export function certificateNames(config: CoordinatorConfig): string[] {
  const names = new Set(['localhost', '127.0.0.1', '::1', hostname(), ...config.tlsNames]);
  if (config.host !== '0.0.0.0' && config.host !== '::') names.add(config.host);
  return [...names];
}

export const paths = (config: CoordinatorConfig) => ({
  db: join(config.dataDir, 'state.db'),
  pki: join(config.dataDir, 'pki'),
  adminCredential: join(config.dataDir, 'admin.credential'),
  readOnlyCredential: join(config.dataDir, 'read-only.credential'),
  caCert: join(config.dataDir, 'ca.crt'),
  artifacts: join(config.dataDir, 'artifacts'),
  nkctlConfig: join(config.dataDir, 'nkctl.yaml'),
  hostRegistration: join(config.dataDir, 'host-registration.json'),
});
