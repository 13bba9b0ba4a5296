/**
 * A watch over HTTP: checks (cap, resume) before a byte is written, then a 200 with one
 * JSON object per line (chunked), ended by the server only on shutdown, a 410 mid-way,
 * a slow reader or `timeoutSeconds`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EventLogWatch } from './event-log.ts';
import type { WatchHub, WatchKind, WatchSink } from './hub.ts';
import type { ListQuery } from './query.ts';

/** Wraps a response as a WatchSink (headers are written here). */
export function httpSink(req: IncomingMessage, res: ServerResponse): WatchSink {
  res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
  res.flushHeaders();
  req.socket.setNoDelay(true);
  let closed = false;
  const listeners: Array<() => void> = [];
  const onClose = () => {
    if (closed) return;
    closed = true;
    for (const l of listeners.splice(0)) l();
  };
  res.once('close', onClose);
  req.socket.once('close', onClose);
  return {
    write: (line) => {
      if (!closed) res.write(line);
    },
    // Bytes node holds for this response plus the socket's own queue.
    get buffered() {
      return res.writableLength + (res.socket?.writableLength ?? 0);
    },
    drained: () => new Promise<void>((resolve) => {
      if (closed) return resolve();
      const done = () => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.once('drain', done);
      res.once('close', done);
    }),
    get closed() {
      return closed;
    },
    end: () => {
      if (!closed) res.end();
    },
    destroy: () => {
      req.socket.destroy();
      onClose();
    },
    onClose: (l) => {
      if (closed) l();
      else listeners.push(l);
    },
  };
}

/** Serves `?watch=1` on an object kind's list path. */
export function serveWatch(hub: WatchHub, kind: WatchKind, q: ListQuery, req: IncomingMessage, res: ServerResponse): void {
  hub.admit();
  if (q.resourceVersion !== null) hub.checkResume(q.resourceVersion);
  const sink = withTimeout(httpSink(req, res), q.timeoutSeconds);
  void hub.watch(kind, q.resourceVersion, q.filter, sink).catch(() => sink.destroy());
}

/** Serves `?watch=1` on /v1/events. */
export function serveEventWatch(hub: WatchHub, events: EventLogWatch, q: ListQuery, initial: number, req: IncomingMessage, res: ServerResponse): void {
  hub.admit();
  if (q.resourceVersion !== null) events.checkResume(q.resourceVersion);
  const sink = withTimeout(httpSink(req, res), q.timeoutSeconds);
  void events.watch(q.resourceVersion, initial, sink).catch(() => sink.destroy());
}

function withTimeout(sink: WatchSink, seconds: number | null): WatchSink {
  if (seconds === null) return sink;
  const timer = setTimeout(() => sink.end(), seconds * 1000);
  timer.unref();
  sink.onClose(() => clearTimeout(timer));
  return sink;
}
