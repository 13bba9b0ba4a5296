/**
 * Prometheus metrics, on a registry of the coordinator instance's own (no globals, so
 * several coordinators can run in one test process).
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { BatcherCounters } from './store/write-batcher.ts';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'nodekeeper_coordinator_' });
  return {
    registry,
    connectedAgents: new Gauge({ name: 'nodekeeper_connected_agents', help: 'Agents connected now', registers: [registry] }),
    machines: new Gauge({ name: 'nodekeeper_machines', help: 'Enrolled machines by liveness state', labelNames: ['state'], registers: [registry] }),
    framesReceived: new Counter({ name: 'nodekeeper_agent_frames_received_total', help: 'Frames received from agents, by message type', labelNames: ['type'], registers: [registry] }),
    framesRejected: new Counter({ name: 'nodekeeper_agent_frames_rejected_total', help: 'Frames refused, by error code', labelNames: ['code'], registers: [registry] }),
    agentErrors: new Counter({ name: 'nodekeeper_agent_error_frames_total', help: 'error frames agents sent (logged at most once per 10 s per connection)', registers: [registry] }),
    upgradesDeferred: new Counter({ name: 'nodekeeper_agent_upgrades_deferred_total', help: 'WebSocket upgrades answered 503 with Retry-After by admission control, by reason (pending, rate, loop-delay)', labelNames: ['reason'], registers: [registry] }),
    upgradesRejected: new Counter({ name: 'nodekeeper_agent_upgrades_rejected_total', help: 'WebSocket upgrades refused, by error code', labelNames: ['code'], registers: [registry] }),
    enrollments: new Counter({ name: 'nodekeeper_enrollments_total', help: 'Enrollment attempts, by result', labelNames: ['result'], registers: [registry] }),
    apiRequests: new Counter({ name: 'nodekeeper_api_requests_total', help: 'HTTP API requests, by route and status', labelNames: ['route', 'status'], registers: [registry] }),
    httpConnectionsRefused: new Counter({ name: 'nodekeeper_http_connections_refused_total', help: 'Connections closed at once because --http-max-connections non-agent connections were open', registers: [registry] }),
    rowsPruned: new Counter({ name: 'nodekeeper_store_rows_pruned_total', help: 'Rows deleted by retention, by kind (events, commands, tokens, observations)', labelNames: ['kind'], registers: [registry] }),
    backups: new Counter({ name: 'nodekeeper_backups_total', help: 'Backups taken, by reason (manual, scheduled) and result (ok, failed)', labelNames: ['reason', 'result'], registers: [registry] }),
    backupLastSuccess: new Gauge({ name: 'nodekeeper_backup_last_success_timestamp_seconds', help: 'When the last backup succeeded (Unix time; 0 before the first)', registers: [registry] }),
    kubeEventsWritten: new Counter({ name: 'nodekeeper_kube_events_written_total', help: 'Kubernetes Events written on member Nodes, by operation (create: a new Event, patch: a series grew)', labelNames: ['op'], registers: [registry] }),
    kubeEventsDropped: new Counter({ name: 'nodekeeper_kube_events_dropped_total', help: 'Coordinator events not written as Kubernetes Events, by reason (rate, stale, no-node, rejected)', labelNames: ['reason'], registers: [registry] }),
    notifications: new Counter({ name: 'nodekeeper_notifications_total', help: 'Webhook notifications, by result (sent, failed: given up after retries or refused, dropped: over --notify-rate)', labelNames: ['result'], registers: [registry] }),
    storeErrors: new Counter({ name: 'nodekeeper_store_errors_total', help: 'Store writes refused by SQLite (nothing changed), by operation and SQLite code', labelNames: ['op', 'code'], registers: [registry] }),
    nodeConditionWrites: new Counter({ name: 'nodekeeper_node_condition_writes_total', help: 'Writes of nodekeeper\'s conditions to member Nodes (made on change only), by result (ok, failed)', labelNames: ['result'], registers: [registry] }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Exposes the write batcher's counters: rows written by kind, flushes, failed flushes. */
export function registerBatcherMetrics(metrics: Metrics, counters: Readonly<BatcherCounters>): void {
  new Gauge({
    name: 'nodekeeper_store_rows_written_total',
    help: 'Rows written by the batched status writer since start, by kind (a counter read at scrape time)',
    labelNames: ['kind'],
    registers: [metrics.registry],
    collect() {
      this.set({ kind: 'last_seen' }, counters.lastSeenRows);
      this.set({ kind: 'status' }, counters.statusRows);
      this.set({ kind: 'observation' }, counters.observationRows);
      this.set({ kind: 'event' }, counters.eventRows);
    },
  });
  new Gauge({
    name: 'nodekeeper_store_flushes_total',
    help: 'Batched write transactions since start, by result',
    labelNames: ['result'],
    registers: [metrics.registry],
    collect() {
      this.set({ result: 'ok' }, counters.flushes);
      this.set({ result: 'failed' }, counters.failedFlushes);
    },
  });
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
