/**
 * A test client of the server-side watch (`?watch=1`): reads the JSON lines of one
 * watch as they come, so a test can wait on a condition over the events seen.
 */
import https from 'node:https';
import { waitFor } from './processes.ts';

export interface WatchEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  readonly object: any;
}

export interface WatchStream {
  readonly status: number;
  readonly headers: Record<string, unknown>;
  readonly events: WatchEvent[];
  /** The body when the answer was not a 200 stream. */
  readonly body: () => any;
  readonly ended: () => boolean;
  /** Waits until some event satisfies `check` (seen already or later); returns it. */
  until(what: string, check: (e: WatchEvent) => boolean, timeoutMs?: number): Promise<WatchEvent>;
  close(): void;
}

/** Opens a watch (or any GET) with a bearer credential (none when null); resolves once headers arrive. */
export function openWatch(base: string, ca: string, pathname: string, credential: string | null): Promise<WatchStream> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = credential === null ? {} : { Authorization: `Bearer ${credential}` };
    const req = https.request(new URL(pathname, base), { method: 'GET', ca, headers, agent: false }, (res) => {
      const events: WatchEvent[] = [];
      let buf = '';
      let raw = '';
      let ended = false;
      res.on('data', (c: Buffer) => {
        const text = c.toString('utf8');
        raw += res.statusCode === 200 ? '' : text;
        if (res.statusCode !== 200) return;
        buf += text;
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const lineText = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (lineText.trim() !== '') events.push(JSON.parse(lineText) as WatchEvent);
        }
      });
      const done = () => (ended = true);
      res.on('end', done);
      res.on('close', done);
      res.on('error', done);
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        events,
        body: () => JSON.parse(raw),
        ended: () => ended,
        until: (what, check, timeoutMs = 15_000) => waitFor(what, () => events.find(check), timeoutMs, 50),
        close: () => {
          req.destroy();
          res.destroy();
        },
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** A plain JSON request (no watch). */
export function apiRequest(base: string, ca: string, method: string, pathname: string, credential: string | null, body?: unknown): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'Content-Type': 'application/json', ...(credential === null ? {} : { Authorization: `Bearer ${credential}` }) };
    const req = https.request(new URL(pathname, base), { method, ca, headers }, (res) => {
      let t = '';
      res.on('data', (c: Buffer) => (t += c.toString('utf8')));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, json: t === '' ? null : JSON.parse(t) });
        } catch {
          resolve({ status: res.statusCode ?? 0, json: t });
        }
      });
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
