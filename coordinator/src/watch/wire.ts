/**
 * The watch's shared shapes: the kinds, a watcher and its connection, and the lines of
 * the wire format (docs/nkctl.md, "Watch"): one JSON object per line. Pure.
 */
import { AppError } from '@nodekeeper/common';
import { API_VERSION } from '../api/objects.ts';
import type { WatchFilter } from './query.ts';

export const WATCH_KINDS = ['machines', 'rollouts', 'remediations'] as const;
export type WatchKind = (typeof WATCH_KINDS)[number];

/** An API object as the list routes build it. */
export type ApiObject = Readonly<Record<string, unknown>>;

/** What the hub needs of a watcher's connection (watch/http-sink.ts for HTTP). */
export interface WatchSink {
  write(line: string): void;
  /** Bytes written and not yet taken by the peer. */
  readonly buffered: number;
  /** Resolves when the buffer has drained, or the sink closed. */
  drained(): Promise<void>;
  readonly closed: boolean;
  /** Ends the stream cleanly. */
  end(): void;
  /** Closes the connection at once (a reader that does not keep up). */
  destroy(): void;
  onClose(listener: () => void): void;
}

/** One watcher of any kind (the event log's too: watch/event-log.ts). */
export interface Watcher {
  readonly kind: WatchKind | 'events';
  readonly filter: WatchFilter;
  readonly sink: WatchSink;
  /** The version (an event id for the event log) everything up to which was sent. */
  cursor: number;
  /** False while it is catching up (initial objects, replay): then ticks skip it. */
  live: boolean;
  /** Since when its unsent bytes have been over maxBufferBytes (null: they are not). */
  stalledSince: number | null;
}

export interface WatchMetrics {
  watchers(kind: string, count: number): void;
  dropped(reason: 'slow'): void;
}

export const watchError = (code: 'NK_WATCH_EXPIRED' | 'NK_WATCH_TOO_MANY' | 'NK_WATCH_QUERY_INVALID', message: string) => new AppError(code, message);

export const line = (type: string, json: string) => `{"type":"${type}","object":${json}}\n`;
export const bookmarkLine = (rv: number) => line('BOOKMARK', JSON.stringify({ kind: 'Bookmark', apiVersion: API_VERSION, metadata: { resourceVersion: String(rv) } }));
export const expiredLine = (message: string) => line('ERROR', JSON.stringify({ kind: 'Status', apiVersion: API_VERSION, status: 'Failure', code: 410, reason: 'Expired', message }));

/** The name an object is watched by. */
export function nameOf(kind: WatchKind, o: ApiObject): string {
  if (kind === 'remediations') return String(o['machine'] ?? '');
  return String((o['metadata'] as { name?: unknown } | undefined)?.name ?? '');
}

export function labelsOf(kind: WatchKind, o: ApiObject): Readonly<Record<string, string>> | null {
  return kind === 'machines' ? ((o['metadata'] as { labels?: Record<string, string> } | undefined)?.labels ?? {}) : null;
}

export function stubOf(kind: WatchKind, o: ApiObject): unknown {
  if (kind === 'remediations') return { kind: o['kind'], machine: o['machine'] };
  return { apiVersion: o['apiVersion'], kind: o['kind'], metadata: o['metadata'] };
}

/** What counts as a change: a Machine's last-seen time moves on every message and is left out. */
export function changeKey(kind: WatchKind, o: ApiObject): string {
  if (kind !== 'machines') return JSON.stringify(o);
  const status = o['status'] as Record<string, unknown> | undefined;
  return JSON.stringify({ ...o, status: { ...status, lastSeenTime: null } });
}
