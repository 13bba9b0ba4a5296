/**
 * Starts the event log's sinks a configuration asks for: Kubernetes Events on the
 * member's Nodes (with --member-kubeconfig) and one feed per notification webhook. Each
 * has its own cursor, so a slow or dead one never holds another.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { AppError, type Logger } from '@nodekeeper/common';
import type { CoordinatorConfig } from '../config.ts';
import { readKubeconfig } from '../host/kube-client.ts';
import { KubeEventSink } from '../member/kube-events.ts';
import type { MemberCluster } from '../member/member-cluster.ts';
import type { Metrics } from '../metrics.ts';
import { DEFAULT_FEED, EventFeed, type FeedStore } from './event-feed.ts';
import { parseHeaderLine } from './sinks-config.ts';
import { WebhookSink } from './webhook.ts';

export interface SinkDeps {
  readonly store: FeedStore;
  readonly member: Pick<MemberCluster, 'findNode' | 'nodesReady'> | null;
  readonly machineId: (machine: string) => string | null;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** The cluster's name when registered with a host (else null). */
  readonly registeredCluster: () => string | null;
}

/** `reportingInstance` of the Events: this coordinator (the API allows 128 characters). */
export function reportingInstance(): string {
  return `nodekeeper-coordinator-${hostname()}`.slice(0, 128);
}

/**
 * Reads --notify-header-file (NK_NOTIFY_HEADER_INVALID). Called before the coordinator
 * starts anything, so a bad file stops it at once and not half-started.
 */
export function readNotifyHeader(config: CoordinatorConfig): NotifyHeader | null {
  const o = config.sinks.notify;
  if (o.urls.length === 0 || o.headerFile === null) return null;
  let text: string;
  try {
    text = readFileSync(o.headerFile, 'utf8');
  } catch (err) {
    throw new AppError('NK_NOTIFY_HEADER_INVALID', `--notify-header-file ${o.headerFile} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  return parseHeaderLine(text, o.headerFile);
}

export type NotifyHeader = { readonly name: string; readonly value: string };

/** Builds and starts the sinks. */
export function startSinks(config: CoordinatorConfig, header: NotifyHeader | null, deps: SinkDeps): { stop(): Promise<void> } {
  const feeds: EventFeed[] = [];
  const closers: Array<() => void> = [];
  const o = config.sinks;
  if (o.kubeEvents.enabled && deps.member !== null && config.memberKubeconfig !== null) {
    const member = deps.member;
    const api = readKubeconfig(config.memberKubeconfig).kc.makeApiClient(CustomObjectsApi);
    const log = deps.log.child({ sink: 'kube-events' });
    const sink = new KubeEventSink({
      api, log, now: () => Date.now(),
      findNode: (m) => member.findNode(m, deps.machineId(m)),
      nodesSynced: () => member.nodesReady() !== null,
      counted: (what, n = 1) => {
        if (what.written !== undefined) deps.metrics.kubeEventsWritten.inc({ op: what.written }, n);
        if (what.dropped !== undefined) deps.metrics.kubeEventsDropped.inc({ reason: what.dropped }, n);
      },
    }, o.kubeEvents.limits, reportingInstance());
    feeds.push(new EventFeed(sink, { store: deps.store, log }));
  }
  const cluster = o.notify.clusterName ?? deps.registeredCluster() ?? hostname();
  for (const url of o.notify.urls) {
    const sink = new WebhookSink(
      { url, format: o.notify.format, header, ratePerMinute: o.notify.ratePerMinute, timeoutMs: o.notify.timeoutMs, retries: o.notify.retries, backoff: { baseMs: 1000, capMs: 30_000 }, cluster },
      { log: deps.log.child({ sink: 'notify' }), now: () => Date.now(), counted: (result) => deps.metrics.notifications.inc({ result }) },
    );
    closers.push(() => sink.close());
    feeds.push(new EventFeed(sink, { store: deps.store, log: deps.log.child({ sink: 'notify', target: sink.target }) }, DEFAULT_FEED));
  }
  for (const f of feeds) f.start();
  return {
    /** Ends the feeds; a write hung on a dead member API is not waited for past 5 s (its batch is sent again at the next start). */
    async stop() {
      const stopped = Promise.all(feeds.map((f) => f.stop())); // marks them stopped at once: no error logged for what close() ends
      for (const c of closers) c();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        stopped,
        new Promise<void>((resolve) => (timer = setTimeout(resolve, 5000).unref())),
      ]);
      clearTimeout(timer);
    },
  };
}
