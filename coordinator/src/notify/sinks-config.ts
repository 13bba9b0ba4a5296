/**
 * The options of the event log's sinks (Kubernetes Events, notification webhooks):
 * flags, their parsing and validation. config.ts spreads `sinkFlags` into its flag
 * spec and calls `sinkOptions`; the rest of the coordinator only sees the frozen result.
 */
import { AppError } from '@nodekeeper/common';
import { DEFAULT_KUBE_EVENT_LIMITS, type KubeEventLimits } from '../member/kube-events-plan.ts';
import type { NotifyFormat } from './notify-format.ts';

export interface SinksConfig {
  /** Kubernetes Events on the member's Nodes (needs --member-kubeconfig). */
  readonly kubeEvents: { readonly enabled: boolean; readonly limits: KubeEventLimits };
  readonly notify: {
    readonly urls: readonly string[];
    readonly format: NotifyFormat;
    /** A file holding one `Name: value` header line (e.g. Authorization), sent with every notification. */
    readonly headerFile: string | null;
    readonly ratePerMinute: number;
    readonly timeoutMs: number;
    readonly retries: number;
    /** Name of the cluster in notifications; null: the host registration's, else the coordinator's host name. */
    readonly clusterName: string | null;
  };
}

export const sinkDefaults: SinksConfig = Object.freeze({
  kubeEvents: Object.freeze({ enabled: true, limits: DEFAULT_KUBE_EVENT_LIMITS }),
  notify: Object.freeze({ urls: [], format: 'slack', headerFile: null, ratePerMinute: 20, timeoutMs: 10_000, retries: 5, clusterName: null }),
});

export const sinkFlags = {
  'kube-events': { type: 'string' },
  'kube-events-node-burst': { type: 'string' },
  'kube-events-burst': { type: 'string' },
  'notify-url': { type: 'string', multiple: true },
  'notify-format': { type: 'string' },
  'notify-header-file': { type: 'string' },
  'notify-rate': { type: 'string' },
  'notify-timeout': { type: 'string' },
  'notify-retries': { type: 'string' },
  'notify-allow-http': { type: 'boolean' },
  'notify-cluster-name': { type: 'string' },
} as const;

export const sinkUsage = `Kubernetes Events and notifications (see docs/kubernetes.md, docs/operations.md):
  --kube-events true|false      write Events on the member's Nodes (default true; needs --member-kubeconfig)
  --kube-events-node-burst N    new Event objects per Node before its rate applies (one per 5 min) (default ${DEFAULT_KUBE_EVENT_LIMITS.nodeBurst})
  --kube-events-burst N         new Event objects in a burst for the whole cluster, then ${DEFAULT_KUBE_EVENT_LIMITS.perSecond}/s (default ${DEFAULT_KUBE_EVENT_LIMITS.burst})
  --notify-url URL              a webhook for NeedsHuman, rollout stops and reboots (repeatable; https,
                                or http with --notify-allow-http)
  --notify-format slack|json    Slack-compatible {"text", "blocks"} or the plain event record (default slack)
  --notify-header-file FILE     one "Name: value" header line sent with each notification (e.g. Authorization)
  --notify-rate N               notifications per minute per URL, at most (default ${sinkDefaults.notify.ratePerMinute})
  --notify-timeout MS           time allowed for a webhook's answer (default ${sinkDefaults.notify.timeoutMs})
  --notify-retries N            attempts after the first on network errors, 5xx and 429 (default ${sinkDefaults.notify.retries})
  --notify-allow-http           accept http:// webhook URLs (the body travels in clear text)
  --notify-cluster-name NAME    the cluster named in notifications (default: the host registration's, else the host name)
`;

const bad = (message: string) => new AppError('NK_CONFIG_INVALID', message);

function int(name: string, raw: unknown, min: number, max: number): number {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw bad(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

/** Reads the sink options from the layered raw options (flags, env, config file). */
export function sinkOptions(raw: Readonly<Record<string, unknown>>): SinksConfig {
  const d = sinkDefaults;
  const enabledRaw = raw['kubeEvents'];
  let enabled = d.kubeEvents.enabled;
  if (enabledRaw !== undefined) {
    if (enabledRaw === true || enabledRaw === 'true' || enabledRaw === '1') enabled = true;
    else if (enabledRaw === false || enabledRaw === 'false' || enabledRaw === '0') enabled = false;
    else throw bad(`--kube-events must be true or false, got ${JSON.stringify(enabledRaw)}`);
  }
  const limits: KubeEventLimits = Object.freeze({
    ...d.kubeEvents.limits,
    ...(raw['kubeEventsNodeBurst'] === undefined ? {} : { nodeBurst: int('--kube-events-node-burst', raw['kubeEventsNodeBurst'], 1, 10_000) }),
    ...(raw['kubeEventsBurst'] === undefined ? {} : { burst: int('--kube-events-burst', raw['kubeEventsBurst'], 1, 100_000) }),
  });
  const allowHttp = raw['notifyAllowHttp'] === true || raw['notifyAllowHttp'] === 'true';
  const list = raw['notifyUrl'] === undefined ? [] : typeof raw['notifyUrl'] === 'string' ? raw['notifyUrl'].split(',') : raw['notifyUrl'];
  if (!Array.isArray(list) || !list.every((u) => typeof u === 'string')) throw bad('--notify-url must be a list of URLs');
  const urls = list.map((u: string) => u.trim()).filter((u) => u !== '');
  for (const u of urls) checkUrl(u, allowHttp);
  if (new Set(urls).size !== urls.length) throw bad('--notify-url lists the same URL twice');
  const format = raw['notifyFormat'] ?? d.notify.format;
  if (format !== 'slack' && format !== 'json') throw bad(`--notify-format must be slack or json, got ${JSON.stringify(format)}`);
  const headerFile = raw['notifyHeaderFile'];
  if (headerFile !== undefined && (typeof headerFile !== 'string' || headerFile.trim() === '')) throw bad('--notify-header-file must be a file path');
  const cluster = raw['notifyClusterName'];
  if (cluster !== undefined && (typeof cluster !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(cluster))) throw bad(`--notify-cluster-name must be a name of up to 63 letters, digits, '.', '_' or '-', got ${JSON.stringify(cluster)}`);
  return Object.freeze({
    kubeEvents: Object.freeze({ enabled, limits }),
    notify: Object.freeze({
      urls: Object.freeze(urls),
      format,
      headerFile: headerFile === undefined ? null : headerFile,
      ratePerMinute: raw['notifyRate'] === undefined ? d.notify.ratePerMinute : int('--notify-rate', raw['notifyRate'], 1, 10_000),
      timeoutMs: raw['notifyTimeout'] === undefined ? d.notify.timeoutMs : int('--notify-timeout', raw['notifyTimeout'], 100, 600_000),
      retries: raw['notifyRetries'] === undefined ? d.notify.retries : int('--notify-retries', raw['notifyRetries'], 0, 100),
      clusterName: cluster === undefined ? null : cluster,
    }),
  });
}

function checkUrl(u: string, allowHttp: boolean): void {
  let url: URL;
  try {
    url = new URL(u);
  } catch (err) {
    // The URL may carry a secret (Slack puts it in the path): the message does not repeat it.
    throw new AppError('NK_CONFIG_INVALID', '--notify-url: a value is not a URL', { cause: err });
  }
  if (url.protocol === 'https:') return;
  if (url.protocol === 'http:') {
    if (allowHttp) return;
    throw bad(`--notify-url ${url.origin}: http sends notifications in clear text; use https, or say --notify-allow-http`);
  }
  throw bad(`--notify-url ${url.protocol}//...: only https (or http with --notify-allow-http) is accepted`);
}

/** Parses the header file's content: one `Name: value` line (NK_NOTIFY_HEADER_INVALID). Never echoes the value. */
export function parseHeaderLine(text: string, file: string): { name: string; value: string } {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const m = lines.length === 1 ? /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/.exec(lines[0]!) : null;
  if (m === null || m[2] === '' || /[\r\n\0]/.test(m[2]!)) {
    throw new AppError('NK_NOTIFY_HEADER_INVALID', `--notify-header-file ${file} must hold exactly one "Name: value" header line`);
  }
  return { name: m[1]!, value: m[2]! };
}
