/**
 * Streams an artifact to disk with bounded memory: the sha256 is computed while the
 * bytes pass, the size is capped at the artifact's declared size, and the whole
 * transfer has a deadline plus an idle limit (a server that stops sending is not
 * waited on forever). Nothing here trusts the bytes: verify.ts decides.
 */
import { createHash } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import https from 'node:https';
import { AppError } from '@nodekeeper/common';
import type { ArtifactRef } from '@nodekeeper/protocol';
import { InstallErrorCode } from './codes.ts';
import { http } from '../node-http.ts';

export interface DownloadOptions {
  /** The whole transfer must finish within this. */
  readonly timeoutMs: number;
  /** Abort when no bytes arrive for this long (default: timeoutMs). */
  readonly idleTimeoutMs?: number;
  /** Plain http:// allowed (insecure setups: tests, demo). */
  readonly allowHttp: boolean;
  /**
   * The coordinator's CA and origin: https URLs on that origin are verified against this
   * CA (the one the agent pinned at enrollment); any other https URL uses the system CAs.
   */
  readonly coordinator?: { readonly origin: string; readonly caPem: string | null; readonly credential?: () => string };
}

export interface Downloaded {
  readonly file: string;
  readonly sha256: string;
  readonly bytes: number;
}

const fail = (code: string, message: string, cause?: unknown, context: Record<string, unknown> = {}): AppError =>
  new AppError(code, message, cause === undefined ? { context } : { cause, context });

/**
 * Downloads `ref.url` into `dest` (created or truncated; removed on failure) and returns
 * its sha256 and size. Throws AppError NK_INSTALL_DOWNLOAD_FAILED / _DOWNLOAD_TIMEOUT /
 * _TOO_LARGE / _TRUNCATED.
 */
export async function downloadArtifact(ref: ArtifactRef, dest: string, opts: DownloadOptions): Promise<Downloaded> {
  if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) throw new RangeError(`timeoutMs must be positive, got ${opts.timeoutMs}`);
  const url = new URL(ref.url);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && opts.allowHttp)) {
    throw fail(InstallErrorCode.downloadFailed, `artifact URL ${redact(url)} is not https (plain http only in an insecure setup)`);
  }
  const out = await open(dest, 'w', 0o600);
  try {
    const result = await stream(ref, url, out, opts);
    await out.sync();
    return { file: dest, ...result };
  } catch (err) {
    await out.close().catch(() => {});
    await rm(dest, { force: true });
    throw err;
  } finally {
    await out.close().catch(() => {});
  }
}

/** The URL for messages: no credentials or query (a pre-signed URL's query is a secret). */
function redact(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

function stream(ref: ArtifactRef, url: URL, out: import('node:fs/promises').FileHandle, opts: DownloadOptions): Promise<{ sha256: string; bytes: number }> {
  const where = redact(url);
  const hash = createHash('sha256');
  const idleMs = opts.idleTimeoutMs ?? opts.timeoutMs;
  return new Promise((resolve, reject) => {
    let bytes = 0;
    let settled = false;
    let writing: Promise<unknown> = Promise.resolve();
    const settle = (err: AppError | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(idle);
      req.destroy();
      if (err !== null) reject(err);
      else writing.then(() => resolve({ sha256: hash.digest('hex'), bytes }), (e: unknown) => reject(fail(InstallErrorCode.downloadFailed, `writing ${where} to disk failed: ${(e as Error).message}`, e)));
    };
    const deadline = setTimeout(() => settle(fail(InstallErrorCode.downloadTimeout, `download of ${where} did not finish within ${opts.timeoutMs} ms`, undefined, { bytes })), opts.timeoutMs);
    let idle = setTimeout(onIdle, idleMs);
    function onIdle(): void {
      settle(fail(InstallErrorCode.downloadTimeout, `download of ${where} stalled: no data for ${idleMs} ms after ${bytes} bytes`, undefined, { bytes }));
    }
    const tls = url.protocol === 'https:';
    const sameOrigin = opts.coordinator !== undefined && url.origin === opts.coordinator.origin;
    const onCoordinator = tls && sameOrigin && opts.coordinator?.caPem != null;
    const headers: Record<string, string> = { accept: 'application/octet-stream' };
    // The coordinator serves artifacts to its enrolled machines only; nobody else gets the credential.
    if (sameOrigin && opts.coordinator?.credential !== undefined) headers['authorization'] = `Bearer ${opts.coordinator.credential()}`;
    const reqOpts: https.RequestOptions = { agent: false, headers };
    if (onCoordinator) reqOpts.ca = opts.coordinator?.caPem ?? undefined;
    const req = (tls ? https : http).get(url, reqOpts, (res) => {
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        res.resume();
        settle(fail(InstallErrorCode.downloadFailed, `${where} answered HTTP ${status}`, undefined, { status }));
        return;
      }
      const announced = Number(res.headers['content-length'] ?? NaN);
      if (Number.isFinite(announced) && announced > ref.size) {
        settle(fail(InstallErrorCode.tooLarge, `${where} announces ${announced} bytes, more than the artifact's ${ref.size}`, undefined, { announced, size: ref.size }));
        return;
      }
      res.on('data', (chunk: Buffer) => {
        if (settled) return;
        clearTimeout(idle);
        idle = setTimeout(onIdle, idleMs);
        bytes += chunk.length;
        if (bytes > ref.size) {
          settle(fail(InstallErrorCode.tooLarge, `${where} sent more than the artifact's ${ref.size} bytes`, undefined, { size: ref.size }));
          return;
        }
        hash.update(chunk);
        // Back-pressure: pause the socket until the write lands, so memory stays bounded.
        res.pause();
        const w = out.write(chunk).then(() => res.resume());
        writing = writing.then(() => w);
        w.catch((e: unknown) => settle(fail(InstallErrorCode.downloadFailed, `writing ${where} to disk failed: ${(e as Error).message}`, e)));
      });
      res.on('end', () => {
        if (bytes < ref.size) settle(fail(InstallErrorCode.truncated, `${where} ended after ${bytes} of ${ref.size} bytes`, undefined, { bytes, size: ref.size }));
        else settle(null);
      });
      // A connection cut mid-body: 'aborted' on the message, then an error on the socket.
      res.on('aborted', () => settle(fail(InstallErrorCode.truncated, `${where}: connection closed after ${bytes} of ${ref.size} bytes`, undefined, { bytes, size: ref.size })));
      res.on('error', (e) => settle(fail(InstallErrorCode.truncated, `${where}: ${e.message} after ${bytes} of ${ref.size} bytes`, e, { bytes, size: ref.size })));
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      settle(fail(InstallErrorCode.downloadFailed, `cannot fetch ${where}: ${e.code ?? 'error'}: ${e.message}`, e));
    });
  });
}
