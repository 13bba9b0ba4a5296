/**
 * The agent's configuration: defaults, then a YAML config file, then NODEKEEPER_AGENT_*
 * environment variables, then flags. Parsed once, validated, frozen and passed down;
 * nothing else reads process.env.
 */
import { readFileSync } from 'node:fs';
import { AppError, layeredOptions } from '@nodekeeper/common';
import { allowEntryProblem, MAX_LABELS, MAX_NAME, SERVICE_UNIT } from '@nodekeeper/protocol';
import { defaultProbeConfig, type ProbeConfig } from './probes/config.ts';

export interface AgentConfig {
  /** Coordinator base URL: https://host:port (http:// only with insecure). */
  readonly server: string;
  /** Bootstrap token, needed only until the agent holds a machine credential. */
  readonly token: string | null;
  /** `sha256:<hex>` pin of the coordinator's CA (kubeadm style), for the first contact. */
  readonly discoveryCaHash: string | null;
  /** A CA file to trust instead of discovering and pinning one. */
  readonly caFile: string | null;
  readonly insecure: boolean;
  /** Where the credential and the pinned CA are kept (mode 0700). */
  readonly stateDir: string;
  readonly hostname: string | null;
  readonly zone: string | null;
  readonly labels: Readonly<Record<string, string>>;
  readonly probeIntervalMs: number;
  readonly probes: ProbeConfig;
  readonly backoff: { readonly baseMs: number; readonly capMs: number };
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** ed25519 public key files (PEM); when any is given, unsigned artifacts are refused. */
  readonly trustedKeys: readonly string[];
  /** Host path of the installed packages tree. */
  readonly packagesDir: string;
  readonly serviceManager: 'systemd' | 'supervisor' | 'auto';
  /** `node.reboot` runs only when this is true (the coordinator cannot turn it on). */
  readonly allowReboot: boolean;
  /** More link paths packages may install (exact, or a directory ending in `/`), beyond the built-in packages' paths. */
  readonly allowInstallPaths: readonly string[];
  /** More `*.service` units a package manifest may name, beyond kubelet.service and containerd.service. */
  readonly allowInstallServices: readonly string[];
  /** Installs of a lower version than the active one are allowed (default off: only package.rollback goes back). */
  readonly allowDowngrade: boolean;
  /** Host dirs `config.restore` may write under (default: the CNI conf dir). */
  readonly configRestoreDirs: readonly string[];
  /** Local self-repair (off by default): after this long without the coordinator; null = off. */
  readonly localRepairAfterMs: number | null;
  /** At most `count` local restarts per `periodMs` (all units together). */
  readonly localRepairBudget: { readonly count: number; readonly periodMs: number };
  /** Results of finished commands (`<state-dir>/commands/`) are deleted after this long. */
  readonly commandRetentionMs: number;
  /**
   * The release install root the launcher exported as NK_AGENT_INSTALL_DIR (the dir holding
   * VERSION), or null when running from the sources. The reported version is read from it.
   */
  readonly installDir: string | null;
  /**
   * Tests only (NK_AGENT_TEST_SELF_UPGRADE_KILL): the self-upgrade step at which the agent
   * kills itself with SIGKILL, to prove every step survives a kill -9. Unset in production.
   */
  readonly selfUpgradeKillAt: string | null;
}

/** `90s`, `5m`, `1h`, or plain milliseconds. */
function duration(name: string, v: unknown): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(String(v).trim());
  if (m === null) throw bad(`${name} must be a duration like 90s, 5m or 1h, got ${JSON.stringify(v)}`);
  const n = Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const)[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h'];
  if (!Number.isSafeInteger(n) || n < 1000 || n > 7 * 24 * 3_600_000) throw bad(`${name} must be from 1s to 7 days`);
  return n;
}

/**
 * `14d`, `36h`, `90m`, `30s`: from 1 s to a year. Results younger than the coordinator's
 * longest command timeout must stay (a re-delivered command is answered from them), so
 * hours or days in production; seconds only make sense in tests.
 */
function retention(v: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(v.trim());
  const n = m === null ? NaN : Number(m[1]) * ({ s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const)[m[2] as 's' | 'm' | 'h' | 'd'];
  if (!Number.isSafeInteger(n) || n < 1000 || n > 365 * 86_400_000) throw bad(`command retention must be a duration from 1s to 365d such as 14d or 36h, got ${JSON.stringify(v)}`);
  return n;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const usage = `Usage: nodekeeper-agent --server URL [options]

The nodekeeper node agent. Dials out to the coordinator (it never listens), reports
the health and versions of the kubelet, the container runtime and the CNI plugins,
and runs the coordinator's commands. First start: give --token and
--discovery-ca-hash (from 'nkctl token create'); the agent enrolls, keeps its machine
credential in --state-dir (mode 0600) and needs neither again.

Options (also env NODEKEEPER_AGENT_<NAME>, e.g. NODEKEEPER_AGENT_SERVER, or a key of the YAML
--config file, whose path NODEKEEPER_AGENT_CONFIG may give; the old NODEKEEPER_<NAME> is refused):
  --config FILE               YAML file with any option below (camelCase keys)
  --server URL                coordinator URL, https://host:port
  --token TOKEN               bootstrap token (first start only)
  --token-file FILE           read the bootstrap token from a file
  --discovery-ca-hash HASH    sha256:<hex> of the coordinator CA's public key
  --ca-file FILE              trust this CA file instead of discovering one
  --insecure                  allow a plain http:// server (tests, demos)
  --state-dir DIR             credential and CA (default /var/lib/nodekeeper-agent)
  --host-root DIR             where the host's filesystem is (default /)
  --hostname NAME             machine name (default: the host's hostname)
  --zone ZONE                 zone / IDC of this machine
  --label KEY=VALUE           machine label (repeatable)
  --probe-interval MS         how often probes run (default 10000)
  --kubelet-healthz-url URL   default ${defaultProbeConfig.kubelet.healthzUrl}
  --kubelet-binary PATH       default ${defaultProbeConfig.kubelet.binary}
  --runtime-socket PATH       default ${defaultProbeConfig.runtime.socket}
  --cni-conf-dir PATH         default ${defaultProbeConfig.cni.confDir}
  --cni-bin-dir PATH          CNI plugin dir (repeatable; default ${defaultProbeConfig.cni.binDirs.join(',')})
  --log-level LEVEL           ${LOG_LEVELS.join('|')} (default info)
  --trusted-key FILE          ed25519 public key (PEM) artifacts must be signed with (repeatable)
  --packages-dir PATH         installed packages (host path, default /var/lib/nodekeeper/packages)
  --service-manager KIND      systemd|supervisor|auto (default auto: systemd when it runs)
  --allow-reboot              let the coordinator's node.reboot reboot this node (default off)
  --reboot-sentinel PATH      a host file whose presence means a reboot is required
                              (default ${defaultProbeConfig.host.rebootSentinel})
  --reboot-check-command CMD  also ask this command (exit 1: reboot required, 0: not), e.g.
                              "needs-restarting -r"; split on spaces, no shell (default none)
  --allow-install-path PATH   a host path packages may link (repeatable; PATH/ for everything below
                              a directory); the built-in packages' paths are always allowed
  --allow-install-service UNIT  a *.service a package may restart (repeatable; kubelet.service and
                              containerd.service are always allowed)
  --allow-downgrade           let package.install move a package to a lower version (default off)
  --config-restore-dir PATH   host dir config.restore may write under (repeatable; default the CNI conf dir)
  --local-repair-after DUR    restart a dead kubelet/runtime locally after the coordinator has
                              been unreachable this long (e.g. 5m; default off)
  --local-repair-budget N/DUR at most N local restarts per period (default 3/1h)
  --command-retention DUR     keep results of finished commands this long, e.g. 14d, 36h (default 14d)
  -h, --help                  this text
`;

const flagSpec = {
  config: { type: 'string' },
  server: { type: 'string' },
  token: { type: 'string' },
  'token-file': { type: 'string' },
  'discovery-ca-hash': { type: 'string' },
  'ca-file': { type: 'string' },
  insecure: { type: 'boolean' },
  'state-dir': { type: 'string' },
  'host-root': { type: 'string' },
  hostname: { type: 'string' },
  zone: { type: 'string' },
  label: { type: 'string', multiple: true },
  'probe-interval': { type: 'string' },
  'kubelet-healthz-url': { type: 'string' },
  'kubelet-binary': { type: 'string' },
  'runtime-socket': { type: 'string' },
  'cni-conf-dir': { type: 'string' },
  'cni-bin-dir': { type: 'string', multiple: true },
  'log-level': { type: 'string' },
  'trusted-key': { type: 'string', multiple: true },
  'packages-dir': { type: 'string' },
  'service-manager': { type: 'string' },
  'allow-reboot': { type: 'boolean' },
  'reboot-sentinel': { type: 'string' },
  'reboot-check-command': { type: 'string' },
  'allow-install-path': { type: 'string', multiple: true },
  'allow-install-service': { type: 'string', multiple: true },
  'allow-downgrade': { type: 'boolean' },
  'config-restore-dir': { type: 'string', multiple: true },
  'local-repair-after': { type: 'string' },
  'command-retention': { type: 'string' },
  'local-repair-budget': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const bad = (message: string) => new AppError('NK_CONFIG_INVALID', message);

function str(name: string, v: unknown): string {
  if (typeof v !== 'string' || v.trim() === '') throw bad(`${name} must be a non-empty string`);
  return v.trim();
}

function bool(name: string, v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0' || v === '') return false;
  throw bad(`${name} must be true or false, got ${JSON.stringify(v)}`);
}

function list(name: string, v: unknown): string[] {
  const items = typeof v === 'string' ? v.split(',') : v;
  if (!Array.isArray(items) || !items.every((i) => typeof i === 'string')) throw bad(`${name} must be a list of strings`);
  return items.map((i: string) => i.trim()).filter((i) => i !== '');
}

const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/** Kubernetes label syntax (https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set). */
function labels(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  const entries: Array<[string, unknown]> =
    typeof v === 'object' && v !== null && !Array.isArray(v)
      ? Object.entries(v)
      : list('label', v).map((kv) => {
          const i = kv.indexOf('=');
          if (i <= 0) throw bad(`label "${kv}" must be KEY=VALUE`);
          return [kv.slice(0, i), kv.slice(i + 1)];
        });
  // More labels, or longer keys, than a hello may carry would keep the agent from ever connecting.
  if (entries.length > MAX_LABELS) throw bad(`at most ${MAX_LABELS} labels are allowed, got ${entries.length}`);
  for (const [k, value] of entries) {
    // The length bound also covers the DNS-subdomain prefix's limit of 253.
    if (!LABEL_KEY.test(k) || k.length > MAX_NAME) throw bad(`label key "${k}" is not a valid Kubernetes label key`);
    if (typeof value !== 'string' || !LABEL_VALUE.test(value)) throw bad(`label "${k}" has an invalid value ${JSON.stringify(value)}`);
    out[k] = value;
  }
  return out;
}

/** Builds the frozen configuration, or throws NK_CONFIG_INVALID naming the bad option. */
export function loadConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): { config: AgentConfig; help: boolean } {
  const { raw, help } = layeredOptions(flagSpec, argv, env, usage, 'nodekeeper-agent');
  if (help) return { config: undefined as unknown as AgentConfig, help: true };

  const server = str('server', raw['server'] ?? '');
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw bad(`server "${server}" is not a URL (want https://host:port)`);
  }
  const insecure = raw['insecure'] === undefined ? false : bool('insecure', raw['insecure']);
  if (url.protocol === 'http:' && !insecure) throw bad(`server ${server} is plain http; use https, or pass --insecure for a test setup`);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad(`server must be an https:// URL, got ${url.protocol}`);

  let token = raw['token'] === undefined ? null : str('token', raw['token']);
  if (token === null && raw['tokenFile'] !== undefined) {
    try {
      token = readFileSync(str('tokenFile', raw['tokenFile']), 'utf8').trim();
    } catch (err) {
      throw new AppError('NK_CONFIG_INVALID', `cannot read token file: ${(err as Error).message}`, { cause: err });
    }
  }
  const caHash = raw['discoveryCaHash'] === undefined ? null : str('discoveryCaHash', raw['discoveryCaHash']).toLowerCase();
  if (caHash !== null && !/^sha256:[0-9a-f]{64}$/.test(caHash)) throw bad('discovery CA hash must look like sha256:<64 hex digits>');
  const level = raw['logLevel'] ?? 'info';
  if (!LOG_LEVELS.includes(level as (typeof LOG_LEVELS)[number])) throw bad(`log level must be one of ${LOG_LEVELS.join(', ')}`);
  const interval = raw['probeInterval'] === undefined ? 10_000 : Number(raw['probeInterval']);
  if (!Number.isInteger(interval) || interval < 100 || interval > 3_600_000) throw bad('probe interval must be an integer from 100 to 3600000 ms');

  const d = defaultProbeConfig;
  const probes: ProbeConfig = {
    hostRoot: raw['hostRoot'] === undefined ? d.hostRoot : str('hostRoot', raw['hostRoot']),
    kubelet: {
      ...d.kubelet,
      healthzUrl: raw['kubeletHealthzUrl'] === undefined ? d.kubelet.healthzUrl : str('kubeletHealthzUrl', raw['kubeletHealthzUrl']),
      binary: raw['kubeletBinary'] === undefined ? d.kubelet.binary : str('kubeletBinary', raw['kubeletBinary']),
    },
    runtime: { ...d.runtime, socket: raw['runtimeSocket'] === undefined ? d.runtime.socket : str('runtimeSocket', raw['runtimeSocket']) },
    cni: {
      ...d.cni,
      confDir: raw['cniConfDir'] === undefined ? d.cni.confDir : str('cniConfDir', raw['cniConfDir']),
      binDirs: raw['cniBinDir'] === undefined ? d.cni.binDirs : list('cniBinDir', raw['cniBinDir']),
    },
    host: {
      ...d.host,
      rebootSentinel: raw['rebootSentinel'] === undefined ? d.host.rebootSentinel : str('rebootSentinel', raw['rebootSentinel']),
      rebootCheckCommand: raw['rebootCheckCommand'] === undefined ? null : str('rebootCheckCommand', raw['rebootCheckCommand']).split(/\s+/),
    },
  };
  if (!probes.host.rebootSentinel.startsWith('/') || probes.host.rebootSentinel.split('/').includes('..')) throw bad(`reboot sentinel "${probes.host.rebootSentinel}" must be an absolute host path without ..`);
  const checkFile = probes.host.rebootCheckCommand?.[0];
  if (checkFile !== undefined && !checkFile.startsWith('/') && checkFile.includes('/')) throw bad(`reboot check command "${checkFile}" must be a command name or an absolute path`);
  if (!probes.hostRoot.startsWith('/')) throw bad('host root must be an absolute path');
  const packagesDir = raw['packagesDir'] === undefined ? '/var/lib/nodekeeper/packages' : str('packagesDir', raw['packagesDir']);
  if (!packagesDir.startsWith('/')) throw bad('packages dir must be an absolute (host) path');
  const serviceManager = raw['serviceManager'] ?? 'auto';
  if (serviceManager !== 'systemd' && serviceManager !== 'supervisor' && serviceManager !== 'auto') throw bad('service manager must be systemd, supervisor or auto');

  const configRestoreDirs = raw['configRestoreDir'] === undefined ? [probes.cni.confDir] : list('configRestoreDir', raw['configRestoreDir']);
  for (const dir of configRestoreDirs) {
    if (!dir.startsWith('/') || dir === '/' || dir.split('/').includes('..')) throw bad(`config restore dir "${dir}" must be an absolute host path other than /`);
  }
  const allowInstallPaths = raw['allowInstallPath'] === undefined ? [] : list('allowInstallPath', raw['allowInstallPath']);
  for (const p of allowInstallPaths) {
    const problem = allowEntryProblem(p);
    if (problem !== null) throw bad(`allow install path "${p}" ${problem}`);
  }
  const allowInstallServices = raw['allowInstallService'] === undefined ? [] : list('allowInstallService', raw['allowInstallService']);
  for (const u of allowInstallServices) if (!SERVICE_UNIT.test(u)) throw bad(`allow install service "${u}" must be a unit name ending in .service`);
  const localRepairAfterMs = raw['localRepairAfter'] === undefined ? null : duration('local repair after', raw['localRepairAfter']);
  const budgetText = raw['localRepairBudget'] === undefined ? '3/1h' : str('localRepairBudget', raw['localRepairBudget']);
  const budgetMatch = /^(\d+)\/(.+)$/.exec(budgetText);
  const budgetCount = Number(budgetMatch?.[1]);
  if (budgetMatch === null || !Number.isInteger(budgetCount) || budgetCount < 1 || budgetCount > 100) throw bad(`local repair budget must be N/DURATION with N from 1 to 100, e.g. 3/1h; got ${JSON.stringify(budgetText)}`);
  const localRepairBudget = { count: budgetCount, periodMs: duration('local repair budget period', budgetMatch[2]) };

  const config: AgentConfig = {
    server: server.replace(/\/+$/, ''),
    token,
    discoveryCaHash: caHash,
    caFile: raw['caFile'] === undefined ? null : str('caFile', raw['caFile']),
    insecure,
    stateDir: raw['stateDir'] === undefined ? '/var/lib/nodekeeper-agent' : str('stateDir', raw['stateDir']),
    hostname: raw['hostname'] === undefined ? null : str('hostname', raw['hostname']),
    zone: raw['zone'] === undefined ? null : str('zone', raw['zone']),
    labels: raw['label'] === undefined ? {} : labels(raw['label']),
    probeIntervalMs: interval,
    probes,
    backoff: { baseMs: 500, capMs: 30_000 },
    logLevel: level as AgentConfig['logLevel'],
    trustedKeys: raw['trustedKey'] === undefined ? [] : list('trustedKey', raw['trustedKey']),
    packagesDir,
    serviceManager,
    allowReboot: raw['allowReboot'] === undefined ? false : bool('allowReboot', raw['allowReboot']),
    allowInstallPaths,
    allowInstallServices,
    allowDowngrade: raw['allowDowngrade'] === undefined ? false : bool('allowDowngrade', raw['allowDowngrade']),
    configRestoreDirs,
    localRepairAfterMs,
    localRepairBudget,
    commandRetentionMs: raw['commandRetention'] === undefined ? 14 * 86_400_000 : retention(String(raw['commandRetention'])),
    // Set by the release launcher, not by operators: no flag, no NODEKEEPER_ name.
    installDir: env['NK_AGENT_INSTALL_DIR']?.startsWith('/') === true ? env['NK_AGENT_INSTALL_DIR'] : null,
    selfUpgradeKillAt: env['NK_AGENT_TEST_SELF_UPGRADE_KILL'] || null,
  };
  return { config: Object.freeze(config), help: false };
}
