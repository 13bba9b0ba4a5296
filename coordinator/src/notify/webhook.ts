/**
 * One notification webhook: a sink of the event log (event-feed.ts) that POSTs the
 * events worth a page (notify-format.ts) to a URL, one request per event.
 *
 * - A network error, a timeout or a 5xx is retried with backoff (full jitter), up to
 *   `retries` more attempts; a 429 is retried after its Retry-After (capped). Any other
 *   answer (2xx aside) is final: a 4xx will not get better by repeating it.
 * - A notification given up is logged (error) and counted; the feed moves on, so one
 *   dead endpoint never holds the others (each URL has its own feed and cursor).
 * - A token bucket (`ratePerMinute`, burst the same) bounds the requests; what it
 *   leaves out is counted and said in the next notification sent.
 * - The response body is never read (a huge answer costs nothing); redirects are not
 *   followed. Logs name the URL's origin only: Slack-style URLs carry their secret in
 *   the path, and the optional auth header is never logged.
 * - The cursor is saved after each notification sent, so a restart (even kill -9
 *   between two of them) does not send a delivered one again.
 */
import { createHash } from 'node:crypto';
import { backoffDelay, type Logger } from '@nodekeeper/common';
import { TokenBucket } from '../gateway/rate-limit.ts';
import type { EventRecord } from '../model/records.ts';
import type { EventSink } from './event-feed.ts';
import { notificationBody, notifies, type NotifyFormat } from './notify-format.ts';

export interface WebhookOptions {
  readonly url: string;
  readonly format: NotifyFormat;
  /** An extra header (e.g. Authorization), read from a file; never logged. */
  readonly header: { readonly name: string; readonly value: string } | null;
  readonly ratePerMinute: number;
  readonly timeoutMs: number;
  /** Attempts after the first one, on network errors, 5xx and 429. */
  readonly retries: number;
  readonly backoff: { readonly baseMs: number; readonly capMs: number };
  readonly cluster: string;
}

export type NotifyResult = 'sent' | 'failed' | 'dropped';

/** Longest Retry-After honoured; a server asking for more is retried after this. */
const MAX_RETRY_AFTER_MS = 300_000;

/** The cursor name of a webhook: stable across restarts and reorderings of --notify-url, without the URL's secret. */
export function webhookSinkName(url: string): string {
  return `notify:${createHash('sha256').update(url).digest('hex').slice(0, 16)}`;
}

class Final extends Error {}

export class WebhookSink implements EventSink {
  readonly name: string;
  readonly target: string;
  private readonly bucket: TokenBucket;
  private suppressed = 0;
  private readonly closing = new AbortController();
  private readonly o: WebhookOptions;
  private readonly deps: { log: Logger; now: () => number; counted: (r: NotifyResult) => void };

  constructor(o: WebhookOptions, deps: { log: Logger; now: () => number; counted: (r: NotifyResult) => void }) {
    this.o = o;
    this.deps = deps;
    this.name = webhookSinkName(o.url);
    this.target = new URL(o.url).origin;
    this.bucket = new TokenBucket(o.ratePerMinute / 60, o.ratePerMinute, deps.now());
  }

  /** Ends waits and requests in flight (their notification is sent again at the next start). */
  close(): void {
    this.closing.abort();
  }

  async deliver(batch: readonly EventRecord[], commit: (id: number) => void): Promise<void> {
    for (const e of batch) {
      if (this.closing.signal.aborted) throw new Error('closing');
      if (!notifies(e)) continue;
      if (!this.bucket.take(this.deps.now())) {
        this.suppressed += 1;
        this.deps.counted('dropped');
        this.deps.log.warn({ target: this.target, event: e.id, reason: e.reason }, 'notification left out by the rate limit (--notify-rate)');
        continue;
      }
      const body = JSON.stringify(notificationBody(this.o.format, e, { cluster: this.o.cluster, suppressed: this.suppressed }));
      const ok = await this.send(e, body);
      if (ok) this.suppressed = 0;
      commit(e.id);
    }
  }

  /** One notification, with its retries; true when delivered, false when given up. */
  private async send(e: EventRecord, body: string): Promise<boolean> {
    let last = '';
    for (let attempt = 0; attempt <= this.o.retries; attempt += 1) {
      let retryAfterMs = 0;
      try {
        const res = await fetch(this.o.url, {
          method: 'POST', body, redirect: 'manual',
          headers: { 'content-type': 'application/json', 'user-agent': 'nodekeeper-coordinator', ...(this.o.header === null ? {} : { [this.o.header.name]: this.o.header.value }) },
          signal: AbortSignal.any([AbortSignal.timeout(this.o.timeoutMs), this.closing.signal]),
        });
        // The body is never read: a huge or endless answer is dropped unread.
        void res.body?.cancel().catch(() => {});
        if (res.status >= 200 && res.status < 300) {
          this.deps.counted('sent');
          return true;
        }
        last = `HTTP ${res.status}`;
        if (res.status === 429) retryAfterMs = Math.min(MAX_RETRY_AFTER_MS, retryAfter(res.headers.get('retry-after')) ?? this.o.backoff.baseMs);
        else if (res.status < 500) throw new Final(last);
      } catch (err) {
        if (this.closing.signal.aborted) throw new Error('closing', { cause: err });
        if (err instanceof Final) {
          this.giveUp(e, attempt + 1, last);
          return false;
        }
        last = err instanceof Error && err.name === 'TimeoutError' ? `no answer within ${this.o.timeoutMs} ms` : `${(err as Error).message}${(err as Error).cause instanceof Error ? `: ${((err as Error).cause as Error).message}` : ''}`;
      }
      if (attempt === this.o.retries) break;
      await this.sleep(retryAfterMs > 0 ? retryAfterMs : Math.max(this.o.backoff.baseMs / 2, backoffDelay(this.o.backoff, attempt)));
    }
    this.giveUp(e, this.o.retries + 1, last);
    return false;
  }

  private giveUp(e: EventRecord, attempts: number, why: string): void {
    this.deps.counted('failed');
    this.deps.log.error({ target: this.target, event: e.id, object: e.object, reason: e.reason, attempts, err: why }, 'notification given up');
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const signal = this.closing.signal;
      if (signal.aborted) return reject(new Error('closing'));
      const t = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(t);
        reject(new Error('closing'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** Retry-After in seconds or as an HTTP date; null when absent or unreadable. */
export function retryAfter(v: string | null, now = Date.now()): number | null {
  if (v === null) return null;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}
