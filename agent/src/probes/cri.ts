/**
 * The container runtime over CRI v1 (RuntimeService.Version and .Status) on its unix
 * socket, the way the kubelet sees it: gRPC over node:http2, with the two calls'
 * messages encoded by cri-wire.ts. One short-lived HTTP/2 session per probe, closed
 * before returning, so a probe loop cannot leak sessions or sockets.
 */
import { stat } from 'node:fs/promises';
import http2 from 'node:http2';
import net from 'node:net';
import { versionInfo } from '@nodekeeper/common';
import type { RuntimeStatus } from '@nodekeeper/protocol';
import { resolveHostPath } from './config.ts';
import { observedAt, type ProbeContext } from './context.ts';
import {
  CriCallError,
  decodeGrpcMessage,
  decodeStatusResponse,
  decodeVersionResponse,
  encodeStatusRequest,
  encodeVersionRequest,
  grpcFrame,
  GrpcStatus,
  grpcStatusName,
  grpcStatusOfHttp,
  unframe,
  type StatusResponse,
  type VersionResponse,
} from './cri-wire.ts';
import { probeService } from './service.ts';

/** The CRI API version the kubelet announces in VersionRequest. */
const KUBELET_RUNTIME_API_VERSION = '0.1.0';
/** The most of a runtime's grpc-message kept. */
const MAX_GRPC_MESSAGE = 1024;
/** The largest response message read (grpc-js's grpc.max_receive_message_length was set to this). */
const MAX_RESPONSE_BYTES = 1024 * 1024;

/**
 * One unary call on `session`: POST the framed request, read the framed response and the
 * trailers' grpc-status. Fails with a CriCallError whatever goes wrong.
 */
function unary(session: http2.ClientHttp2Session, method: string, request: Buffer, deadline: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const timeoutMs = Math.max(1, deadline - Date.now());
    const stream = session.request({
      ':method': 'POST',
      ':path': `/runtime.v1.RuntimeService/${method}`,
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': `${timeoutMs}m`,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    let httpStatus = 0;
    let grpcStatus: string | undefined;
    let grpcMessage = '';
    let failed = false;
    const fail = (err: CriCallError) => {
      if (failed) return;
      failed = true;
      stream.close(http2.constants.NGHTTP2_CANCEL);
      reject(err);
    };
    const statusOf = (headers: http2.IncomingHttpHeaders) => {
      const s = headers['grpc-status'];
      if (typeof s === 'string') {
        grpcStatus = s;
        const m = headers['grpc-message'];
        // Bounded: it ends up in the report's message, whose length the protocol caps.
        grpcMessage = typeof m === 'string' ? decodeGrpcMessage(m).slice(0, MAX_GRPC_MESSAGE) : '';
      }
    };
    stream.on('response', (headers) => {
      httpStatus = Number(headers[':status']);
      statusOf(headers); // a "trailers-only" answer carries grpc-status here
    });
    stream.on('trailers', statusOf);
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_RESPONSE_BYTES + 5) fail(new CriCallError(GrpcStatus.RESOURCE_EXHAUSTED, `response exceeds the limit of ${MAX_RESPONSE_BYTES} bytes`));
      else chunks.push(chunk);
    });
    stream.on('error', (err: NodeJS.ErrnoException) => fail(new CriCallError(GrpcStatus.UNAVAILABLE, `stream failed: ${err.message}`)));
    stream.on('close', () => {
      if (failed) return;
      if (httpStatus !== 200) return fail(new CriCallError(grpcStatusOfHttp(httpStatus), `HTTP status ${httpStatus || 'missing'} from the runtime socket`));
      if (grpcStatus === undefined) return fail(new CriCallError(GrpcStatus.UNKNOWN, 'the response ended without a grpc-status'));
      const code = Number(grpcStatus);
      if (code !== GrpcStatus.OK) return fail(new CriCallError(Number.isInteger(code) ? code : GrpcStatus.UNKNOWN, grpcMessage || `grpc-status ${grpcStatus}`));
      try {
        resolve(unframe(Buffer.concat(chunks), MAX_RESPONSE_BYTES));
      } catch (err) {
        fail(err as CriCallError);
      }
    });
    stream.end(grpcFrame(request));
  });
}

/** Runs `calls` on one HTTP/2 session to the socket, closed (or destroyed) before this returns. */
async function withSession<T>(socketPath: string, timeoutMs: number, calls: (session: http2.ClientHttp2Session, deadline: number) => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  const session = http2.connect('http://localhost', { createConnection: () => net.connect(socketPath) });
  let timer: NodeJS.Timeout | undefined;
  // Connect errors (ECONNREFUSED, ENOENT, EACCES) arrive as the session's 'error'; the
  // errno stays in the details, as grpc-js reported it, so classifyCriError can read it.
  const broken = new Promise<never>((_, reject) => {
    session.on('error', (err: NodeJS.ErrnoException) => reject(new CriCallError(GrpcStatus.UNAVAILABLE, `No connection established. Last error: ${err.message}`)));
    timer = setTimeout(() => reject(new CriCallError(GrpcStatus.DEADLINE_EXCEEDED, `Deadline exceeded after ${(timeoutMs / 1000).toFixed(3)}s`)), timeoutMs);
  });
  try {
    return await Promise.race([calls(session, deadline), broken]);
  } finally {
    clearTimeout(timer);
    broken.catch(() => {}); // settled later by a late 'error', or never
    session.destroy();
  }
}

/**
 * Maps a failed call to a precise reason. Connect errors are UNAVAILABLE with the errno
 * in `details` (as grpc-js reported them), so the errno decides.
 */
export function classifyCriError(err: unknown): { reason: string; message: string } {
  const e = err as Partial<CriCallError>;
  const details = typeof e.details === 'string' && e.details !== '' ? e.details : String((err as Error)?.message ?? err);
  const codeName = typeof e.code === 'number' ? grpcStatusName(e.code) : 'UNKNOWN';
  switch (e.code) {
    case GrpcStatus.UNAVAILABLE:
      if (/ECONNREFUSED/.test(details)) return { reason: 'ConnectionRefused', message: `runtime socket refused the connection: ${details}` };
      if (/ENOENT/.test(details)) return { reason: 'SocketNotFound', message: `runtime socket vanished: ${details}` };
      if (/EACCES|EPERM/.test(details)) return { reason: 'PermissionDenied', message: `no permission to use the runtime socket: ${details}` };
      return { reason: 'RuntimeUnavailable', message: `runtime unavailable: ${details}` };
    case GrpcStatus.DEADLINE_EXCEEDED:
      return { reason: 'DeadlineExceeded', message: `runtime did not answer in time: ${details}` };
    case GrpcStatus.UNIMPLEMENTED:
      // containerd with its CRI plugin disabled, or a runtime that speaks only v1alpha2.
      return { reason: 'CriNotImplemented', message: `runtime does not serve CRI v1 RuntimeService: ${details}` };
    default:
      return { reason: 'CriCallFailed', message: `CRI call failed (${codeName}): ${details}` };
  }
}

/** Probes the runtime: Version and Status over CRI, plus its service state. */
export async function probeRuntime(ctx: ProbeContext): Promise<RuntimeStatus> {
  const { hostRoot, runtime } = ctx.config;
  const [service, outcome] = await Promise.all([probeService(runtime.unit, ctx), queryCri(ctx)]);
  const base = { service, observedAt: observedAt(ctx) };
  const socketPath = resolveHostPath(hostRoot, runtime.socket);

  if (outcome.kind === 'failed') {
    return {
      ...base,
      health: 'unhealthy',
      reason: outcome.reason,
      message: outcome.message,
      version: null,
      runtimeName: null,
      runtimeApiVersion: null,
      conditions: [],
    };
  }
  const { version, conditions } = outcome;
  const fields = {
    ...base,
    version: version.runtimeVersion === '' ? null : versionInfo(version.runtimeVersion, 'cri'),
    runtimeName: version.runtimeName === '' ? null : version.runtimeName.slice(0, 256),
    runtimeApiVersion: version.runtimeApiVersion === '' ? null : version.runtimeApiVersion.slice(0, 256),
    conditions,
  };
  const ready = conditions.find((c) => c.type === 'RuntimeReady');
  const network = conditions.find((c) => c.type === 'NetworkReady');
  // NetworkReady=false alone does not make the runtime unhealthy: the CNI probe owns that.
  const networkNote = network === undefined
    ? 'NetworkReady not reported'
    : network.status ? 'network ready' : `network not ready (${network.reason}: ${network.message})`;
  const name = `${fields.runtimeName ?? 'runtime'} ${version.runtimeVersion}`.trim();
  if (ready === undefined) {
    return { ...fields, health: 'unknown', reason: 'RuntimeReadyMissing', message: `${name} at ${socketPath} did not report RuntimeReady; ${networkNote}` };
  }
  if (!ready.status) {
    return {
      ...fields,
      health: 'unhealthy',
      reason: 'RuntimeNotReady',
      message: `${name} is not ready (${ready.reason}: ${ready.message}); ${networkNote}`,
    };
  }
  return { ...fields, health: 'healthy', reason: 'RuntimeReady', message: `${name} is ready; ${networkNote}` };
}

type CriOutcome =
  | { kind: 'ok'; version: VersionResponse; conditions: RuntimeStatus['conditions'] }
  | { kind: 'failed'; reason: string; message: string };

async function queryCri(ctx: ProbeContext): Promise<CriOutcome> {
  const { hostRoot, runtime } = ctx.config;
  const socketPath = resolveHostPath(hostRoot, runtime.socket);
  try {
    const st = await stat(socketPath);
    if (!st.isSocket()) return { kind: 'failed', reason: 'NotASocket', message: `${socketPath} exists but is not a socket` };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'failed', reason: 'SocketNotFound', message: `no runtime socket at ${socketPath}` };
    return { kind: 'failed', reason: 'SocketUnreadable', message: `cannot stat ${socketPath}: ${(err as Error).message}` };
  }
  try {
    const [version, status] = await withSession(socketPath, runtime.timeoutMs, (session, deadline) => Promise.all([
      unary(session, 'Version', encodeVersionRequest(KUBELET_RUNTIME_API_VERSION), deadline).then(decodeVersionResponse),
      unary(session, 'Status', encodeStatusRequest(false), deadline).then((b): StatusResponse => decodeStatusResponse(b)),
    ]));
    const conditions = (status.status?.conditions ?? []).slice(0, 16).map((c) => ({
      type: c.type.slice(0, 256),
      status: c.status,
      reason: c.reason.slice(0, 256),
      message: c.message.slice(0, 4096),
    }));
    return { kind: 'ok', version, conditions };
  } catch (err) {
    return { kind: 'failed', ...classifyCriError(err) };
  }
}
