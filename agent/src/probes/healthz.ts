/**
 * One GET of a healthz endpoint, classified the way an operator reads it: answered ok,
 * refused (nothing listens), timed out (something listens but hangs), failed (answered
 * but not ok), or another transport error.
 */
import { http } from '../node-http.ts';

export type HealthzOutcome =
  | { readonly kind: 'ok'; readonly status: number }
  | { readonly kind: 'failed'; readonly status: number; readonly firstLine: string }
  | { readonly kind: 'refused'; readonly detail: string }
  | { readonly kind: 'timeout'; readonly detail: string }
  | { readonly kind: 'error'; readonly detail: string };

const MAX_BODY_BYTES = 4096;

/** GETs `url` (http only, as the kubelet's healthz is) within `timeoutMs`. Never rejects. */
export function checkHealthz(url: string, timeoutMs: number): Promise<HealthzOutcome> {
  const target = new URL(url);
  if (target.protocol !== 'http:') throw new TypeError(`healthz URL must be http://, got ${url}`);
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new RangeError(`timeoutMs must be positive, got ${timeoutMs}`);

  return new Promise((resolve) => {
    let settled = false;
    const settle = (outcome: HealthzOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(outcome);
    };
    // agent:false: a fresh socket per probe, so no keep-alive socket outlives it.
    const req = http.get(target, { agent: false, headers: { accept: 'text/plain' } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        if (size < MAX_BODY_BYTES) chunks.push(chunk.subarray(0, MAX_BODY_BYTES - size));
        size += chunk.length;
        // Enough to judge; the rest of a huge body is not worth reading.
        if (size >= MAX_BODY_BYTES) finish();
      });
      res.on('end', finish);
      res.on('error', (err) => settle({ kind: 'error', detail: err.message }));
      function finish(): void {
        const status = res.statusCode ?? 0;
        const body = Buffer.concat(chunks).toString('utf8');
        if (status === 200 && body.trim() === 'ok') settle({ kind: 'ok', status });
        else settle({ kind: 'failed', status, firstLine: firstBodyLine(body) });
      }
    });
    const timer = setTimeout(
      () => settle({ kind: 'timeout', detail: `no answer from ${url} within ${timeoutMs} ms` }),
      timeoutMs,
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') settle({ kind: 'refused', detail: `connection to ${target.host} refused` });
      else settle({ kind: 'error', detail: `${err.code ?? 'error'}: ${err.message}` });
    });
  });
}

function firstBodyLine(body: string): string {
  return (body.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? '').slice(0, 200);
}
