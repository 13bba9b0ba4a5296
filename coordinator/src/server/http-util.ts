/**
 * Pieces every API route uses: the route shape, JSON answers, bounded and validated
 * bodies, and the mapping from error codes to HTTP statuses.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Static, TSchema } from '@sinclair/typebox';
import type { TypeCheck } from '@sinclair/typebox/compiler';
import { AppError, type Logger } from '@nodekeeper/common';
import type { InstallAllowList } from '@nodekeeper/protocol';
import type { ArtifactStore } from '../artifacts/artifact-store.ts';
import type { Clock } from '../clock.ts';
import type { FleetView } from '../fleet/fleet-view.ts';
import type { Metrics } from '../metrics.ts';
import { desiredSkewProblem } from '../rollout/skew.ts';
import type { Store } from '../store/db.ts';
import type { StoreHealth } from '../store/store-health.ts';
import type { ApiRole } from '../store/types.ts';
import type { EventLogWatch } from '../watch/event-log.ts';
import type { WatchHub } from '../watch/hub.ts';

export const MAX_BODY_BYTES = 64 * 1024;

export interface ApiDeps {
  readonly store: Store;
  readonly fleet: FleetView;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly artifacts: ArtifactStore;
  readonly caPem: string | null;
  readonly caHash: string | null;
  /** Base URL agents reach the coordinator at (for artifact URLs). */
  readonly url: () => string;
  readonly heartbeatIntervalMs: number;
  /** Lifetime of the machine credentials enrollment hands out. */
  readonly machineCredentialTtlMs: number;
  /** Failed enrollments per source address (shared with the agent gateway's upgrades). */
  readonly authFailures?: AuthFailures;
  readonly maxArtifactBytes: number;
  /** Whether the store takes writes (for /readyz, and to label the API's store writes). */
  readonly storeHealth?: StoreHealth;
  /** Link paths and services package manifests may use (the built-in ones plus --allow-install-path/-service). */
  readonly installAllowList?: InstallAllowList;
  /** kube-apiserver's version when known (the skew guard on applies and pins). */
  readonly controlPlaneVersion?: () => string | null;
  /** More of a Machine's status from other controllers (remediation), merged into the objects. */
  readonly machineStatusExtras?: (name: string) => Record<string, unknown>;
  /** The converger's summary and conditions for the ClusterPackageVersion's status. */
  readonly cpvStatusExtras?: () => Record<string, unknown>;
  /** Server-side watch (watch/); without it lists answer with the store counter and watches are refused. */
  readonly watch?: { readonly hub: WatchHub; readonly events: EventLogWatch };
}

/** Refuses a source address that failed too often (NK_AUTH_TOO_MANY_FAILURES), and counts failures. */
export interface AuthFailures {
  check(req: IncomingMessage): void;
  failed(req: IncomingMessage): void;
}

/**
 * Who may call a route: nobody needs a credential (null), an API role, or `agent`:
 * a machine credential or any API credential (artifact downloads).
 */
export type RouteAccess = ApiRole | 'agent' | null;

/** Who made a request: an API credential by bearer or by the fleet page's session cookie, or a machine. */
export interface Principal {
  readonly role: ApiRole | 'machine';
  readonly via: 'bearer' | 'session';
  /** The session cookie's value and expiry (ms), when via is 'session'. */
  readonly session: { readonly value: string; readonly expiresAt: number } | null;
}

export interface RouteContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly params: string[];
  readonly url: URL;
  /** Null on routes that need no credential. */
  readonly principal: Principal | null;
}

export interface Route {
  readonly method: string;
  readonly pattern: RegExp;
  readonly name: string;
  readonly access: RouteAccess;
  readonly handler: (ctx: RouteContext) => Promise<void> | void;
}

/** A path segment that is a valid object name (Kubernetes-style). */
export const NAME = '([a-z0-9A-Z][a-zA-Z0-9._-]{0,252})';

// The HTTP status of each error code is the contract's (@nodekeeper/api codes.ts).
export { STATUS_BY_CODE, statusFor } from '@nodekeeper/api';

/** The resourceVersion a list of objects answers with (watch/hub.ts: list then watch from it loses nothing). */
export function listVersion(deps: Pick<ApiDeps, 'store' | 'watch'>): string {
  return deps.watch?.hub.listVersion() ?? deps.store.currentResourceVersion();
}

/** The watch a list path serves with ?watch=1, or 400 when this coordinator has none. */
export function watchOf(deps: Pick<ApiDeps, 'watch'>): { readonly hub: WatchHub; readonly events: EventLogWatch } {
  if (deps.watch === undefined) throw new AppError('NK_WATCH_QUERY_INVALID', 'this server does not serve watches');
  return deps.watch;
}

export const httpError = (code: string, message: string) => new AppError(code, message);

/**
 * The version-skew guard on desired versions (a ClusterPackageVersion apply, a pin):
 * NK_VERSION_SKEW with the rule broken, before anything is stored.
 */
export function refuseSkew(packages: ReadonlyArray<{ readonly name: string; readonly version: string }>, deps: Pick<ApiDeps, 'controlPlaneVersion'>, what: string): void {
  const problem = desiredSkewProblem(packages, deps.controlPlaneVersion?.() ?? null);
  if (problem !== null) throw new AppError('NK_VERSION_SKEW', `${what} refused by the version-skew guard: ${problem}`);
}

/**
 * The request target as a URL, or null when it is not one: node's parser lets through
 * targets such as `//` or `http://[::1` that `new URL` refuses with a throw, and a throw
 * in a request listener would take the whole coordinator down.
 */
export function requestUrl(req: IncomingMessage): URL | null {
  try {
    return new URL(req.url ?? '/', 'http://coordinator');
  } catch {
    return null;
  }
}

/** Client addresses a gateway worker vouched for (gateway/writer-proxy.ts), by request. */
const vouched = new WeakMap<IncomingMessage, string>();

/** Records the client address a gateway worker gave, on the writer's own socket only. */
export function setClientAddress(req: IncomingMessage, address: string): void {
  vouched.set(req, address);
}

/** The client's address: the socket's peer, or behind a gateway worker the address it saw. */
export function clientAddress(req: IncomingMessage): string {
  return vouched.get(req) ?? req.socket.remoteAddress ?? 'unknown';
}

export function send(res: ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
  const text = contentType === 'application/json' ? `${JSON.stringify(body, null, 2)}\n` : String(body);
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(text);
}

/** Reads a JSON body of at most MAX_BODY_BYTES and checks it against a compiled schema. */
export async function readJson<S extends TSchema>(req: IncomingMessage, check: TypeCheck<S> | null): Promise<Static<S>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw httpError('NK_HTTP_BODY_TOO_LARGE', `request body exceeds ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  } catch (err) {
    throw httpError('NK_HTTP_BAD_REQUEST', `request body is not valid JSON: ${(err as Error).message}`);
  }
  if (check !== null && !check.Check(value)) {
    const first = check.Errors(value).First();
    throw httpError('NK_HTTP_BAD_REQUEST', `invalid request body at ${first?.path || '/'}: ${first?.message ?? 'does not match the schema'}`);
  }
  return value as Static<S>;
}
