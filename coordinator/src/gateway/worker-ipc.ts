/**
 * The messages between the writer (the coordinator process that owns the store, the
 * fleet and liveness) and its gateway workers (gateway-workers.ts, worker-main.ts), over
 * the child_process IPC channel with `serialization: 'advanced'`.
 *
 * A worker is ours, but the writer checks what it receives anyway: a malformed message
 * is logged and dropped, never thrown (invariant 11). `parseWorkerMessage` is that check,
 * pure. Session ids are the worker's: unique within one worker's life, never reused.
 */
import { agentMessageSchemas, type AgentMessage } from '@nodekeeper/protocol';
import type { HttpLimits } from '../config.ts';
import type { TicketKeySet } from '../tls/ticket-keys.ts';
import type { TransportOptions } from './agent-transport.ts';
import type { UpgradeRefusal } from './upgrade.ts';

/** The header that proves a request on the writer's unix socket came from a worker. */
export const SECRET_HEADER = 'x-nodekeeper-gateway-secret';
/** The client's address, as the worker saw it; trusted on the writer's unix socket only. */
export const CLIENT_ADDRESS_HEADER = 'x-nodekeeper-client-address';

/** What a worker needs to serve: sent once, first, over IPC (never on argv or env). */
export interface WorkerSetup {
  readonly t: 'setup';
  readonly worker: number;
  readonly host: string;
  readonly port: number;
  readonly tls: { readonly certPem: string; readonly keyPem: string } | null;
  readonly tickets: TicketKeySet | null;
  readonly tlsSessionSeconds: number;
  readonly http: HttpLimits;
  readonly transport: TransportOptions;
  readonly heartbeatIntervalMs: number;
  /** The writer's unix socket, where every request other than an agent upgrade goes. */
  readonly writerSocket: string;
  readonly secret: string;
  readonly logLevel: string;
}

export type WriterMessage =
  | WorkerSetup
  /** The answer to `upgrade`: complete the WebSocket handshake, or refuse it so. */
  | { readonly t: 'admitted'; readonly session: number; readonly machine: string }
  | { readonly t: 'refused'; readonly session: number; readonly refusal: UpgradeRefusal }
  /** The logic half said welcome: the worker may batch this session's heartbeats from now on. */
  | { readonly t: 'welcomed'; readonly session: number }
  /** An encoded coordinator frame. */
  | { readonly t: 'send'; readonly session: number; readonly frame: string }
  | { readonly t: 'reject'; readonly session: number; readonly code: string; readonly message: string }
  | { readonly t: 'fail'; readonly session: number; readonly code: string; readonly message: string; readonly closeCode: number; readonly retryAfterMs?: number }
  | { readonly t: 'close'; readonly session: number; readonly code: number; readonly reason: string }
  /** A renewed serving certificate. */
  | { readonly t: 'tls'; readonly certPem: string; readonly keyPem: string }
  /** Rotated ticket keys. */
  | { readonly t: 'tickets'; readonly keys: TicketKeySet };

/** Metric increments since the worker's last report (counters as deltas, histograms as observations). */
export interface WorkerMetrics {
  readonly received: Record<string, number>;
  readonly rejected: Record<string, number>;
  readonly upgradesRejected: Record<string, number>;
  readonly upgradeSeconds: readonly number[];
  readonly handshakeSeconds: readonly number[];
  readonly connectionsRefused: number;
  /** Log lines this worker dropped since its last report (its log reader fell behind). */
  readonly logLinesDropped: number;
  /** Open now (a gauge, not a delta). */
  readonly connections: { readonly agents: number; readonly other: number };
}

export type WorkerMessage =
  | { readonly t: 'listening'; readonly port: number }
  /** An agent upgrade waits for the writer's `admitted` or `refused`. */
  | { readonly t: 'upgrade'; readonly session: number; readonly credential: string | null; readonly source: string }
  /** The WebSocket is open: the writer starts the session's logic half. */
  | { readonly t: 'opened'; readonly session: number }
  /** A frame that passed every transport check. */
  | { readonly t: 'message'; readonly session: number; readonly message: AgentMessage }
  /** Sessions that sent a heartbeat in the last batch (~100 ms). */
  | { readonly t: 'heartbeats'; readonly sessions: readonly number[] }
  /** The connection is gone (before or after `opened`). */
  | { readonly t: 'closed'; readonly session: number }
  | ({ readonly t: 'metrics' } & WorkerMetrics);

export type Parsed<T> = { readonly ok: true; readonly message: T } | { readonly ok: false; readonly problem: string };

const MAX_BATCH = 1_000_000;
const MAX_TEXT = 4096;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isText = (v: unknown, max = MAX_TEXT): v is string => typeof v === 'string' && v.length <= max;
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const isCounts = (v: unknown): v is Record<string, number> =>
  isRecord(v) && Object.keys(v).length <= 1000 && Object.entries(v).every(([k, n]) => k.length <= 128 && isCount(n));
const isSeconds = (v: unknown): v is number[] => Array.isArray(v) && v.length <= MAX_BATCH && v.every(isCount);

/** Checks a message from a worker; what fails is named, for the log. */
export function parseWorkerMessage(raw: unknown): Parsed<WorkerMessage> {
  const bad = (problem: string): Parsed<WorkerMessage> => ({ ok: false, problem });
  if (!isRecord(raw)) return bad('not an object');
  const ok = { ok: true, message: raw as unknown as WorkerMessage } as const;
  switch (raw['t']) {
    case 'listening':
      return Number.isInteger(raw['port']) && (raw['port'] as number) > 0 && (raw['port'] as number) < 65536 ? ok : bad('listening: port');
    case 'upgrade':
      if (!isId(raw['session'])) return bad('upgrade: session');
      if (raw['credential'] !== null && !isText(raw['credential'], 512)) return bad('upgrade: credential');
      return isText(raw['source'], 128) ? ok : bad('upgrade: source');
    case 'opened':
    case 'closed':
      return isId(raw['session']) ? ok : bad(`${raw['t']}: session`);
    case 'message': {
      if (!isId(raw['session'])) return bad('message: session');
      const m = raw['message'];
      // The worker decoded it against the protocol's schemas; the envelope is checked again here.
      if (!isRecord(m) || typeof m['type'] !== 'string' || !(m['type'] === 'report' || Object.hasOwn(agentMessageSchemas, m['type']))) return bad('message: not an agent message');
      return ok;
    }
    case 'heartbeats': {
      const s = raw['sessions'];
      return Array.isArray(s) && s.length <= MAX_BATCH && s.every(isId) ? ok : bad('heartbeats: sessions');
    }
    case 'metrics': {
      const c = raw['connections'];
      if (!isCounts(raw['received']) || !isCounts(raw['rejected']) || !isCounts(raw['upgradesRejected'])) return bad('metrics: counters');
      if (!isSeconds(raw['upgradeSeconds']) || !isSeconds(raw['handshakeSeconds'])) return bad('metrics: observations');
      if (!isCount(raw['connectionsRefused']) || !isRecord(c) || !isCount(c['agents']) || !isCount(c['other'])) return bad('metrics: connections');
      if (!isCount(raw['logLinesDropped'])) return bad('metrics: logLinesDropped');
      return ok;
    }
    default:
      return bad(`unknown type ${JSON.stringify(String(raw['t'])).slice(0, 64)}`);
  }
}
