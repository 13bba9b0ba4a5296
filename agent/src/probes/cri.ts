/**
 * The container runtime over CRI v1 (RuntimeService.Version and .Status) on its unix
 * socket, the way the kubelet sees it. One short-lived gRPC channel per probe, closed
 * before returning, so a probe loop cannot leak channels or sockets.
 */
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { versionInfo } from '@nodekeeper/common';
import type { RuntimeCondition, RuntimeStatus } from '@nodekeeper/protocol';
import { resolveHostPath } from './config.ts';
import { observedAt, type ProbeContext } from './context.ts';
import { probeService } from './service.ts';

/**
 * cri.proto, read at run time by @grpc/proto-loader: beside the release bundle
 * (lib/proto/, where scripts/release puts it, since the bundle is lib/nodekeeper-agent.mjs)
 * or in the sources (agent/proto/, two levels up from this file). The bundle's own
 * location is tried first so an installed agent never reads a file outside its version dir.
 */
const PROTO_CANDIDATES = ['./proto/cri.proto', '../../proto/cri.proto'].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
const protoPath = (): string => PROTO_CANDIDATES.find((p) => existsSync(p)) ?? PROTO_CANDIDATES[PROTO_CANDIDATES.length - 1]!;
/** The CRI API version the kubelet announces in VersionRequest. */
const KUBELET_RUNTIME_API_VERSION = '0.1.0';

interface VersionResponse { version: string; runtimeName: string; runtimeVersion: string; runtimeApiVersion: string }
interface StatusResponse { status: { conditions: RuntimeCondition[] } | null }
type Unary<Req, Res> = (req: Req, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => void;
interface RuntimeServiceClient extends grpc.Client {
  Version: Unary<{ version: string }, VersionResponse>;
  Status: Unary<{ verbose: boolean }, StatusResponse>;
}
type RuntimeServiceCtor = new (address: string, creds: grpc.ChannelCredentials, opts: grpc.ChannelOptions) => RuntimeServiceClient;

let clientCtor: RuntimeServiceCtor | undefined;

/** Loads cri.proto once; a broken proto file is a build defect, so it throws. */
function runtimeServiceCtor(): RuntimeServiceCtor {
  if (clientCtor === undefined) {
    const def = protoLoader.loadSync(protoPath(), { keepCase: false, longs: String, enums: String, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: { RuntimeService: RuntimeServiceCtor } } };
    clientCtor = pkg.runtime.v1.RuntimeService;
  }
  return clientCtor;
}

function call<Req, Res>(method: Unary<Req, Res>, client: RuntimeServiceClient, req: Req, deadline: Date): Promise<Res> {
  return new Promise((resolve, reject) => {
    method.call(client, req, { deadline }, (err, res) => {
      if (err !== null) reject(err);
      else if (res === undefined) reject(new Error('empty CRI response'));
      else resolve(res);
    });
  });
}

/**
 * Maps a gRPC failure to a precise reason. grpc-js reports unix-socket connect errors
 * as UNAVAILABLE with the errno in `details`, so the errno decides.
 */
export function classifyGrpcError(err: unknown): { reason: string; message: string } {
  const e = err as Partial<grpc.ServiceError>;
  const details = typeof e.details === 'string' && e.details !== '' ? e.details : String((err as Error)?.message ?? err);
  const codeName = typeof e.code === 'number' ? (grpc.status[e.code] ?? String(e.code)) : 'UNKNOWN';
  switch (e.code) {
    case grpc.status.UNAVAILABLE:
      if (/ECONNREFUSED/.test(details)) return { reason: 'ConnectionRefused', message: `runtime socket refused the connection: ${details}` };
      if (/ENOENT/.test(details)) return { reason: 'SocketNotFound', message: `runtime socket vanished: ${details}` };
      if (/EACCES|EPERM/.test(details)) return { reason: 'PermissionDenied', message: `no permission to use the runtime socket: ${details}` };
      return { reason: 'RuntimeUnavailable', message: `runtime unavailable: ${details}` };
    case grpc.status.DEADLINE_EXCEEDED:
      return { reason: 'DeadlineExceeded', message: `runtime did not answer in time: ${details}` };
    case grpc.status.UNIMPLEMENTED:
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
  | { kind: 'ok'; version: VersionResponse; conditions: RuntimeCondition[] }
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

  const Ctor = runtimeServiceCtor();
  const client = new Ctor(`unix://${socketPath}`, grpc.credentials.createInsecure(), {
    // Our own subchannel, so close() really closes the socket instead of parking it in the global pool.
    'grpc.use_local_subchannel_pool': 1,
    'grpc.enable_retries': 0,
    'grpc.max_receive_message_length': 1024 * 1024,
  });
  try {
    const deadline = new Date(Date.now() + runtime.timeoutMs);
    const [version, status] = await Promise.all([
      call(client.Version, client, { version: KUBELET_RUNTIME_API_VERSION }, deadline),
      call(client.Status, client, { verbose: false }, deadline),
    ]);
    const conditions = (status.status?.conditions ?? []).slice(0, 16).map((c) => ({
      type: String(c.type).slice(0, 256),
      status: c.status === true,
      reason: String(c.reason).slice(0, 256),
      message: String(c.message).slice(0, 4096),
    }));
    return { kind: 'ok', version, conditions };
  } catch (err) {
    return { kind: 'failed', ...classifyGrpcError(err) };
  } finally {
    client.close();
  }
}
