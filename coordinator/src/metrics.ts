/**
 * Prometheus metrics, on a registry of the coordinator instance's own (no globals, so
 * several coordinators can run in one test process). Names follow Prometheus's naming
 * rules (https://prometheus.io/docs/practices/naming/): base units (seconds, bytes),
 * `_total` on counters only, `_timestamp_seconds` for points in time. Every metric is
 * listed in docs/coordinator.md ("Metrics"); test/metrics-docs.test.ts holds the list
 * and the live exposition to each other.
 *
 * Product metrics (fleet, rollouts, remediation, packages, host, certificates) are read
 * at scrape time from in-memory views: metrics/product.ts.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { droppedLogLines } from '@nodekeeper/common';
import { LOG_BUFFER_BYTES } from './logging.ts';
import type { BatcherCounters } from './store/write-batcher.ts';

/** Buckets (seconds) for work measured in milliseconds: API calls, handshakes, upgrades. */
export const FAST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Buckets (seconds) for one SQLite transaction of the write batcher. */
export const FLUSH_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Buckets (seconds) for one install step (a download, a restart, a health wait). */
export const STEP_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
/** Buckets (seconds) for a whole install, or a drain: seconds to an hour. */
export const SLOW_BUCKETS = [1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600];

export function createMetrics() {
  const registry = new Registry();
  // No prefix: the standard process_* and nodejs_* names, so stock dashboards work.
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  let reported = droppedLogLines();
  // Frames are counted on the hot path (every frame of every agent): totals a message
  // type in a plain Map, read at scrape time, not a label object and a label hash a frame
  // (prom-client's inc). Types are the protocol's (counted after decoding), a bounded set.
  const framesByType = new Map<string, number>();
  mirroredCounter(registry, 'nodekeeper_agent_frames_received_total', 'Frames received from agents, by message type', 'type', () => Object.fromEntries(framesByType));
  return {
    registry,
    connectedAgents: new Gauge({ name: 'nodekeeper_connected_agents', help: 'Agents connected now', registers }),
    /** Counts `n` valid frames of `type` (in-process transports one at a time, gateway workers in batches). */
    frameReceived: (type: string, n = 1): void => {
      framesByType.set(type, (framesByType.get(type) ?? 0) + n);
    },
    framesRejected: new Counter({ name: 'nodekeeper_agent_frames_rejected_total', help: 'Frames refused, by error code', labelNames: ['code'], registers }),
    agentErrors: new Counter({ name: 'nodekeeper_agent_error_frames_total', help: 'error frames agents sent (logged at most once per 10 s per connection)', registers }),
    upgradesDeferred: new Counter({ name: 'nodekeeper_agent_upgrades_deferred_total', help: 'WebSocket upgrades answered 503 with Retry-After by admission control, by reason (pending, rate, loop-delay)', labelNames: ['reason'], registers }),
    upgradesRejected: new Counter({ name: 'nodekeeper_agent_upgrades_rejected_total', help: 'WebSocket upgrades refused, by error code', labelNames: ['code'], registers }),
    upgradeDuration: new Histogram({ name: 'nodekeeper_agent_upgrade_duration_seconds', help: 'Accepted agent WebSocket upgrades, from the upgrade request to the open WebSocket (credential check included)', buckets: FAST_BUCKETS, registers }),
    enrollments: new Counter({ name: 'nodekeeper_enrollments_total', help: 'Enrollment attempts, by result', labelNames: ['result'], registers }),
    apiWatchers: new Gauge({ name: 'nodekeeper_api_watchers', help: 'API watches (?watch=1) open now, by kind (machines, rollouts, remediations, events)', labelNames: ['kind'], registers }),
    apiWatchersDropped: new Counter({ name: 'nodekeeper_api_watchers_dropped_total', help: 'API watches closed because the reader did not keep up (over 1 MiB unsent), by reason', labelNames: ['reason'], registers }),
    apiRequests: new Counter({ name: 'nodekeeper_api_requests_total', help: 'HTTP API requests, by route and status', labelNames: ['route', 'status'], registers }),
    apiDuration: new Histogram({ name: 'nodekeeper_api_request_duration_seconds', help: 'HTTP API requests, from the request to the last byte of the answer, by route name and status class (2xx, 4xx, 5xx)', labelNames: ['route', 'status_class'], buckets: FAST_BUCKETS, registers }),
    tlsHandshakeDuration: new Histogram({ name: 'nodekeeper_tls_handshake_duration_seconds', help: 'Completed TLS handshakes, from the TCP connection to the secure connection', buckets: FAST_BUCKETS, registers }),
    httpConnectionsRefused: new Counter({ name: 'nodekeeper_http_connections_refused_total', help: 'Connections closed at once because --http-max-connections non-agent connections were open', registers }),
    flushDuration: new Histogram({ name: 'nodekeeper_store_flush_duration_seconds', help: 'Batched write transactions (heartbeats, status, events), by result', labelNames: ['result'], buckets: FLUSH_BUCKETS, registers }),
    rowsPruned: new Counter({ name: 'nodekeeper_store_rows_pruned_total', help: 'Rows deleted by retention, by kind (events, commands, tokens, observations)', labelNames: ['kind'], registers }),
    installDuration: new Histogram({ name: 'nodekeeper_install_duration_seconds', help: 'package.install commands, from sending to the result, by package and outcome (installed, already-installed, rolled-back, refused, failed, timed-out)', labelNames: ['package', 'outcome'], buckets: SLOW_BUCKETS, registers }),
    installStepDuration: new Histogram({ name: 'nodekeeper_install_step_duration_seconds', help: 'Install steps, timed on the coordinator between the agent\'s progress frames (the last step ends at the result), by package and step', labelNames: ['package', 'step'], buckets: STEP_BUCKETS, registers }),
    drainDuration: new Histogram({ name: 'nodekeeper_drain_duration_seconds', help: 'Node drains (evictions until the pods are gone), by result (ok, or the error code)', labelNames: ['result'], buckets: SLOW_BUCKETS, registers }),
    backups: new Counter({ name: 'nodekeeper_backups_total', help: 'Backups taken, by reason (manual, scheduled) and result (ok, failed)', labelNames: ['reason', 'result'], registers }),
    backupLastSuccess: new Gauge({ name: 'nodekeeper_backup_last_success_timestamp_seconds', help: 'When the last backup succeeded (Unix time; 0 before the first since start)', registers }),
    kubeEventsWritten: new Counter({ name: 'nodekeeper_kube_events_written_total', help: 'Kubernetes Events written on member Nodes, by operation (create: a new Event, patch: a series grew)', labelNames: ['op'], registers }),
    kubeEventsDropped: new Counter({ name: 'nodekeeper_kube_events_dropped_total', help: 'Coordinator events not written as Kubernetes Events, by reason (rate, stale, no-node, rejected)', labelNames: ['reason'], registers }),
    notifications: new Counter({ name: 'nodekeeper_notifications_total', help: 'Webhook notifications, by result (sent, failed: given up after retries or refused, dropped: over --notify-rate)', labelNames: ['result'], registers }),
    storeErrors: new Counter({ name: 'nodekeeper_store_errors_total', help: 'Store writes refused by SQLite (nothing changed), by operation and SQLite code', labelNames: ['op', 'code'], registers }),
    rolloutFailures: new Counter({ name: 'nodekeeper_rollout_failures_total', help: 'Rollouts stopped by failures, by reason (CanaryFailed, FailureThreshold: paused or rolling back by onFailure; RollbackFailed; RebootFailed)', labelNames: ['reason'], registers: [registry] }),
    logLinesDropped: new Counter({
      name: 'nodekeeper_log_lines_dropped_total',
      help: `Log lines dropped because the log reader (journald, a pipe) fell behind by over ${LOG_BUFFER_BYTES / 1024 / 1024} MiB: the coordinator never waits for it`,
      registers,
      collect() {
        const seen = droppedLogLines();
        if (seen > reported) this.inc(seen - reported);
        reported = seen;
      },
    }),
    nodeConditionWrites: new Counter({ name: 'nodekeeper_node_condition_writes_total', help: 'Writes of nodekeeper\'s conditions to member Nodes (made on change only), by result (ok, failed)', labelNames: ['result'], registers }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** The HTTP status class of a status code, a bounded label: 2xx, 3xx, 4xx, 5xx. */
export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'other';
}

/**
 * A counter whose value lives elsewhere (a plain number another module increments):
 * at scrape time it moves by the difference, so it is exposed as `# TYPE counter`.
 */
function mirroredCounter(registry: Registry, name: string, help: string, label: string, read: () => Record<string, number>): void {
  const seen = new Map<string, number>();
  new Counter({
    name, help, labelNames: [label], registers: [registry],
    collect() {
      for (const [value, total] of Object.entries(read())) {
        const delta = total - (seen.get(value) ?? 0);
        if (delta > 0) this.inc({ [label]: value }, delta);
        else if (!seen.has(value)) this.inc({ [label]: value }, 0); // exposed from the first scrape on
        seen.set(value, Math.max(total, seen.get(value) ?? 0));
      }
    },
  });
}

/** Exposes the write batcher's counters: rows written by kind, flushes by result. */
export function registerBatcherMetrics(metrics: Metrics, counters: Readonly<BatcherCounters>): void {
  mirroredCounter(metrics.registry, 'nodekeeper_store_rows_written_total', 'Rows written by the batched status writer since start, by kind', 'kind', () => ({
    last_seen: counters.lastSeenRows, status: counters.statusRows, observation: counters.observationRows, event: counters.eventRows,
  }));
  mirroredCounter(metrics.registry, 'nodekeeper_store_flushes_total', 'Batched write transactions since start, by result', 'result', () => ({
    ok: counters.flushes, failed: counters.failedFlushes,
  }));
}

/** 1 while the store takes writes, 0 during an outage (a full disk, an I/O error). */
export function registerStoreHealthMetrics(metrics: Metrics, available: () => boolean): void {
  new Gauge({
    name: 'nodekeeper_store_available',
    help: 'Whether the store takes writes now (0 during an outage: /readyz says why)',
    registers: [metrics.registry],
    collect() {
      this.set(available() ? 1 : 0);
    },
  });
}

/** Open connections: agent WebSockets, and all others (capped by --http-max-connections). */
export function registerConnectionMetrics(metrics: Metrics, connections: () => { agents: number; other: number }): void {
  new Gauge({
    name: 'nodekeeper_http_connections',
    help: 'Open connections by kind: agent (WebSocket) or http (everything else, upgrades not yet done included)',
    labelNames: ['kind'],
    registers: [metrics.registry],
    collect() {
      const c = connections();
      this.set({ kind: 'agent' }, c.agents);
      this.set({ kind: 'http' }, c.other);
    },
  });
}
