/**
 * nkctl's HTTP client for the coordinator API (docs/nkctl.md, "API"). Node's own
 * http/https, a bearer credential, a CA of our choosing, one deadline per request.
 * Every failure becomes one AppError with a code a script can act on: server errors
 * keep the server's code and carry the HTTP status; network and TLS faults get one
 * clear line each instead of a stack of socket errors.
 */
import http from 'node:http';
import https from 'node:https';
import type { HostSyncState } from '../host/host-sync.ts';
import type { Readable } from 'node:stream';
import { AppError } from '@nodekeeper/common';
import type { EventList, MachineList, MachineObject, TokenCreated, TokenList } from '../api/objects.ts';
import type { ApiCredentialCreated, ApiCredentialList, ApiCredentialObject } from '../api/credential-objects.ts';
import { CliErrorCode } from './cli-errors.ts';
import type { ConnectionConfig } from './config.ts';
import type { ArtifactList, ArtifactObject, ClusterPackageVersionObject, PackageList } from './package-objects.ts';
import type { RemediationFleetStatus, RemediationList, RemediationObject, RemediationRuleList, RemediationRuleObject } from './remediation-objects.ts';
import type { RolloutAction, RolloutList, RolloutObject } from './rollout-objects.ts';

/** Largest response body nkctl reads: a MachineList of ~10k machines at ~4 KiB each. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

// Node's certificate verification codes (from OpenSSL) and TLS handshake failures.
const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'EPROTO',
]);

/** What a list answers with besides its items (docs/nkctl.md, "Watch"). */
export interface Listed {
  readonly metadata?: { readonly resourceVersion?: string };
}

/** One line of a watch stream. */
export interface WatchLine {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  readonly object: Record<string, unknown>;
}

export interface RequestOptions {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly path: string;
  readonly body?: unknown;
  /** A streamed binary body (an artifact) instead of a JSON one. */
  readonly upload?: Upload;
}

/** A body streamed from a file: never held in memory whole. */
export interface Upload {
  /** A fresh stream of exactly `size` bytes. */
  readonly open: () => Readable;
  readonly size: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** Called with the bytes handed to the socket so far. */
  readonly onProgress?: (sent: number) => void;
}

export interface ClientDeps {
  /** Sent as User-Agent (`nkctl/<version>`), so server logs say who called. */
  readonly userAgent: string;
}

export class ApiClient {
  readonly #cfg: ConnectionConfig;
  readonly #userAgent: string;

  constructor(cfg: ConnectionConfig, deps: ClientDeps) {
    this.#cfg = cfg;
    this.#userAgent = deps.userAgent;
  }

  /** GET /v1/machines */
  async listMachines(): Promise<MachineList> {
    return expectKind<MachineList>(await this.request({ method: 'GET', path: '/v1/machines' }), 'MachineList', 'GET /v1/machines');
  }

  /** GET /v1/machines/{name} */
  async getMachine(name: string): Promise<MachineObject> {
    const path = `/v1/machines/${encodeURIComponent(name)}`;
    return expectKind<MachineObject>(await this.request({ method: 'GET', path }), 'Machine', `GET ${path}`);
  }

  /** GET /v1/machines/{name}/events?limit=N */
  async machineEvents(name: string, limit: number): Promise<EventList> {
    const path = `/v1/machines/${encodeURIComponent(name)}/events?limit=${limit}`;
    return expectKind<EventList>(await this.request({ method: 'GET', path }), 'EventList', `GET ${path}`);
  }

  /** POST /v1/machines/{name}/revoke */
  async revokeMachine(name: string): Promise<MachineObject> {
    const path = `/v1/machines/${encodeURIComponent(name)}/revoke`;
    return expectKind<MachineObject>(await this.request({ method: 'POST', path }), 'Machine', `POST ${path}`);
  }

  /** POST /v1/machines/{name}/reset: voids the credential and key; the next token enrollment of the name is accepted. */
  async resetMachine(name: string): Promise<MachineObject> {
    const path = `/v1/machines/${encodeURIComponent(name)}/reset`;
    return expectKind<MachineObject>(await this.request({ method: 'POST', path }), 'Machine', `POST ${path}`);
  }

  /** DELETE /v1/machines/{name}[?force=true] */
  async deleteMachine(name: string, force: boolean): Promise<{ name: string; commands: number; observations: number; forced: boolean }> {
    const path = `/v1/machines/${encodeURIComponent(name)}${force ? '?force=true' : ''}`;
    const res = await this.request({ method: 'DELETE', path });
    if (!isObject(res) || res['kind'] !== 'MachineDeleted') throw badResponse(`DELETE ${path}`, 'expected a MachineDeleted object');
    return res as unknown as { name: string; commands: number; observations: number; forced: boolean };
  }

  /** PUT /v1/machines/{name}/packages: replaces the machine's package pins. */
  async setMachinePackages(name: string, packages: ReadonlyArray<{ name: string; version: string }>): Promise<MachineObject> {
    const path = `/v1/machines/${encodeURIComponent(name)}/packages`;
    return expectKind<MachineObject>(await this.request({ method: 'PUT', path, body: { packages } }), 'Machine', `PUT ${path}`);
  }

  /** POST /v1/tokens */
  async createToken(body: { ttlSeconds: number; uses: number; description: string }): Promise<TokenCreated> {
    const res = await this.request({ method: 'POST', path: '/v1/tokens', body });
    if (!isObject(res) || typeof res['token'] !== 'string' || typeof res['id'] !== 'string') {
      throw badResponse('POST /v1/tokens', 'expected an object with "token" and "id"');
    }
    return res as unknown as TokenCreated;
  }

  /** GET /v1/tokens */
  async listTokens(): Promise<TokenList> {
    return expectKind<TokenList>(await this.request({ method: 'GET', path: '/v1/tokens' }), 'TokenList', 'GET /v1/tokens');
  }

  /** DELETE /v1/tokens/{id} */
  async revokeToken(id: string): Promise<{ id: string; revoked: true }> {
    const res = await this.request({ method: 'DELETE', path: `/v1/tokens/${encodeURIComponent(id)}` });
    if (!isObject(res) || res['revoked'] !== true) throw badResponse(`DELETE /v1/tokens/${id}`, 'expected {"id", "revoked": true}');
    return res as { id: string; revoked: true };
  }

  /** POST /v1/apicredentials: the credential is in the answer, and only there. */
  async createApiCredential(body: { role: string; description: string }): Promise<ApiCredentialCreated> {
    const res = await this.request({ method: 'POST', path: '/v1/apicredentials', body });
    if (!isObject(res) || typeof res['credential'] !== 'string' || typeof res['id'] !== 'string') {
      throw badResponse('POST /v1/apicredentials', 'expected an object with "credential" and "id"');
    }
    return res as unknown as ApiCredentialCreated;
  }

  /** GET /v1/apicredentials */
  async listApiCredentials(): Promise<ApiCredentialList> {
    return expectKind<ApiCredentialList>(await this.request({ method: 'GET', path: '/v1/apicredentials' }), 'ApiCredentialList', 'GET /v1/apicredentials');
  }

  /** DELETE /v1/apicredentials/{id} */
  async revokeApiCredential(id: string): Promise<ApiCredentialObject> {
    const path = `/v1/apicredentials/${encodeURIComponent(id)}`;
    const res = await this.request({ method: 'DELETE', path });
    if (!isObject(res) || res['revoked'] !== true) throw badResponse(`DELETE ${path}`, 'expected an API credential with "revoked": true');
    return res as unknown as ApiCredentialObject;
  }

  /** PUT /v1/artifacts?package=P&version=V with the bytes streamed from `upload`. */
  async pushArtifact(pkg: string, version: string, upload: Upload): Promise<ArtifactObject> {
    const path = `/v1/artifacts?package=${encodeURIComponent(pkg)}&version=${encodeURIComponent(version)}`;
    const res = await this.request({ method: 'PUT', path, upload });
    return expectKind<ArtifactObject>(res, 'Artifact', 'PUT /v1/artifacts');
  }

  /** GET /v1/artifacts */
  async listArtifacts(): Promise<ArtifactList> {
    return expectKind<ArtifactList>(await this.request({ method: 'GET', path: '/v1/artifacts' }), 'ArtifactList', 'GET /v1/artifacts');
  }

  /** GET /v1/packages */
  async listPackages(): Promise<PackageList> {
    return expectKind<PackageList>(await this.request({ method: 'GET', path: '/v1/packages' }), 'PackageList', 'GET /v1/packages');
  }

  /** GET /v1/clusterpackageversion */
  async getClusterPackageVersion(): Promise<ClusterPackageVersionObject> {
    const path = '/v1/clusterpackageversion';
    return expectKind<ClusterPackageVersionObject>(await this.request({ method: 'GET', path }), 'ClusterPackageVersion', `GET ${path}`);
  }

  /** PUT /v1/clusterpackageversion */
  async putClusterPackageVersion(obj: unknown): Promise<ClusterPackageVersionObject> {
    const path = '/v1/clusterpackageversion';
    return expectKind<ClusterPackageVersionObject>(await this.request({ method: 'PUT', path, body: obj }), 'ClusterPackageVersion', `PUT ${path}`);
  }

  /** POST /v1/rollouts */
  async createRollout(obj: unknown): Promise<RolloutObject> {
    return expectKind<RolloutObject>(await this.request({ method: 'POST', path: '/v1/rollouts', body: obj }), 'Rollout', 'POST /v1/rollouts');
  }

  /** PUT /v1/rollouts/{name}: create-or-update (apply). */
  async applyRollout(name: string, obj: unknown): Promise<RolloutObject> {
    const path = `/v1/rollouts/${encodeURIComponent(name)}`;
    return expectKind<RolloutObject>(await this.request({ method: 'PUT', path, body: obj }), 'Rollout', `PUT ${path}`);
  }

  /** DELETE /v1/rollouts/{name}: finished rollouts only (NK_ROLLOUT_NOT_FINISHED). */
  async deleteRollout(name: string): Promise<{ deleted: true }> {
    const path = `/v1/rollouts/${encodeURIComponent(name)}`;
    const res = await this.request({ method: 'DELETE', path });
    if (!isObject(res) || res['deleted'] !== true) throw badResponse(`DELETE ${path}`, 'expected {"deleted": true}');
    return { deleted: true };
  }

  /** DELETE /v1/artifacts/sha256/{hex}: unreferenced artifacts only (NK_ARTIFACT_IN_USE). */
  async deleteArtifact(sha256: string): Promise<{ deleted: true }> {
    const path = `/v1/artifacts/sha256/${encodeURIComponent(sha256)}`;
    const res = await this.request({ method: 'DELETE', path });
    if (!isObject(res) || res['deleted'] !== true) throw badResponse(`DELETE ${path}`, 'expected {"deleted": true}');
    return { deleted: true };
  }

  /** GET /v1/rollouts[?name=N]: with the list's resourceVersion to watch from (absent from coordinators without watch). */
  async listRollouts(name?: string): Promise<RolloutList & Listed> {
    const path = `/v1/rollouts${name === undefined ? '' : `?name=${encodeURIComponent(name)}`}`;
    return expectKind<RolloutList & Listed>(await this.request({ method: 'GET', path }), 'RolloutList', `GET ${path}`);
  }

  /** GET /v1/machines?labelSelector=S, with the list's resourceVersion. */
  async listMachinesSelected(selector: string): Promise<MachineList & Listed> {
    const path = `/v1/machines${selector === '' ? '' : `?labelSelector=${encodeURIComponent(selector)}`}`;
    return expectKind<MachineList & Listed>(await this.request({ method: 'GET', path }), 'MachineList', `GET ${path}`);
  }

  /** The path of a watch of a list path (its own query kept) from a version. */
  static watchPath(listPath: string, resourceVersion: string): string {
    return `${listPath}${listPath.includes('?') ? '&' : '?'}watch=1&resourceVersion=${encodeURIComponent(resourceVersion)}`;
  }

  /** GET /v1/rollouts/{name} */
  async getRollout(name: string): Promise<RolloutObject> {
    const path = `/v1/rollouts/${encodeURIComponent(name)}`;
    return expectKind<RolloutObject>(await this.request({ method: 'GET', path }), 'Rollout', `GET ${path}`);
  }

  /** GET /v1/rollouts/{name}/events?limit=N */
  async rolloutEvents(name: string, limit: number): Promise<EventList> {
    const path = `/v1/rollouts/${encodeURIComponent(name)}/events?limit=${limit}`;
    return expectKind<EventList>(await this.request({ method: 'GET', path }), 'EventList', `GET ${path}`);
  }

  /** POST /v1/rollouts/{name}/{pause|resume|abort|rollback} */
  async rolloutAction(name: string, action: RolloutAction): Promise<RolloutObject> {
    const path = `/v1/rollouts/${encodeURIComponent(name)}/${action}`;
    return expectKind<RolloutObject>(await this.request({ method: 'POST', path }), 'Rollout', `POST ${path}`);
  }

  /** GET /v1/remediations */
  async listRemediations(): Promise<RemediationList> {
    const res = expectKind<RemediationList>(await this.request({ method: 'GET', path: '/v1/remediations' }), 'RemediationList', 'GET /v1/remediations');
    return { ...res, status: expectFleetStatus(res.status, 'GET /v1/remediations') };
  }

  /** GET /v1/remediations/{machine} */
  async getRemediation(machine: string): Promise<RemediationObject> {
    const path = `/v1/remediations/${encodeURIComponent(machine)}`;
    return expectKind<RemediationObject>(await this.request({ method: 'GET', path }), 'Remediation', `GET ${path}`);
  }

  /** POST /v1/remediations/{pause|resume}: cluster-wide; answers the fleet status. */
  async remediationFleetAction(action: 'pause' | 'resume'): Promise<RemediationFleetStatus> {
    const path = `/v1/remediations/${action}`;
    return expectFleetStatus(await this.request({ method: 'POST', path }), `POST ${path}`);
  }

  /** POST /v1/remediations/{machine}/{pause|resume} */
  async remediationMachineAction(machine: string, action: 'pause' | 'resume'): Promise<RemediationObject> {
    const path = `/v1/remediations/${encodeURIComponent(machine)}/${action}`;
    return expectKind<RemediationObject>(await this.request({ method: 'POST', path }), 'Remediation', `POST ${path}`);
  }

  /** POST /v1/remediations/dry-run with {enabled} */
  async setRemediationDryRun(enabled: boolean): Promise<RemediationFleetStatus> {
    const path = '/v1/remediations/dry-run';
    return expectFleetStatus(await this.request({ method: 'POST', path, body: { enabled } }), `POST ${path}`);
  }

  /** GET /v1/remediationrules */
  async listRemediationRules(): Promise<RemediationRuleList> {
    const path = '/v1/remediationrules';
    return expectKind<RemediationRuleList>(await this.request({ method: 'GET', path }), 'RemediationRuleList', `GET ${path}`);
  }

  /** PUT /v1/remediationrules/{name}: creates or replaces the rule. */
  async putRemediationRule(name: string, obj: unknown): Promise<RemediationRuleObject> {
    const path = `/v1/remediationrules/${encodeURIComponent(name)}`;
    return expectKind<RemediationRuleObject>(await this.request({ method: 'PUT', path, body: obj }), 'RemediationRule', `PUT ${path}`);
  }

  /** POST /v1/machines/{name}/{cordon|uncordon|drain}: the machine's Node in the member cluster. */
  async nodeAction(name: string, action: 'cordon' | 'uncordon' | 'drain', body?: unknown): Promise<NodeActionObject> {
    const path = `/v1/machines/${encodeURIComponent(name)}/${action}`;
    return expectKind<NodeActionObject>(await this.request({ method: 'POST', path, ...(body === undefined ? {} : { body }) }), 'NodeAction', `POST ${path}`);
  }

  /** GET /v1/host: this member's registration with a host cluster. */
  async hostStatus(): Promise<HostRegistrationObject> {
    return expectKind<HostRegistrationObject>(await this.request({ method: 'GET', path: '/v1/host' }), 'HostRegistration', 'GET /v1/host');
  }

  /** POST /v1/host/register, /v1/host/unregister or /v1/host/sync. */
  async hostAction(action: 'register' | 'unregister' | 'sync' | 'rotate', body?: unknown): Promise<HostRegistrationObject & { removed?: string[] }> {
    const path = `/v1/host/${action}`;
    return expectKind<HostRegistrationObject>(await this.request({ method: 'POST', path, ...(body === undefined ? {} : { body }) }), 'HostRegistration', `POST ${path}`);
  }

  /** DELETE /v1/remediationrules/{name}: the fault's default rule applies again. */
  async deleteRemediationRule(name: string): Promise<{ name: string; deleted: true }> {
    const path = `/v1/remediationrules/${encodeURIComponent(name)}`;
    const res = await this.request({ method: 'DELETE', path });
    if (!isObject(res) || res['deleted'] !== true) throw badResponse(`DELETE ${path}`, 'expected {"name", "deleted": true}');
    return res as { name: string; deleted: true };
  }

  /**
   * A server-side watch (`?watch=1`, docs/nkctl.md "Watch"): `onEvent` gets each JSON
   * line as it arrives. Resolves when the server ends the stream; rejects with the
   * server's error (410 NK_WATCH_EXPIRED, 429, 401...) before it starts, or a network
   * error (the connection dropped). The request timeout is a deadline on silence: the
   * server sends a bookmark at least every 10 s.
   */
  watch(path: string, onEvent: (event: WatchLine) => void): Promise<void> {
    const url = new URL(this.#cfg.server + path);
    const secure = url.protocol === 'https:';
    const what = `GET ${url.pathname}`;
    const timeoutMs = this.#cfg.timeoutMs;
    const headers = { accept: 'application/json', authorization: `Bearer ${this.#cfg.token}`, 'user-agent': this.#userAgent };
    return new Promise((resolvePromise, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      // err: an AppError, or whatever onEvent threw (the caller's own way out).
      const finish = (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        if (err === null) resolvePromise();
        else reject(err);
      };
      const arm = () => {
        if (timeoutMs <= 0 || settled) return;
        clearTimeout(timer);
        timer = setTimeout(() => finish(new AppError(CliErrorCode.timeout, `the watch ${what} was silent for ${timeoutMs / 1000}s`)), timeoutMs);
      };
      const reqOpts: https.RequestOptions = { method: 'GET', headers, agent: false };
      if (secure) {
        if (this.#cfg.ca !== null) reqOpts.ca = this.#cfg.ca;
        reqOpts.rejectUnauthorized = !this.#cfg.insecureSkipTlsVerify;
      }
      const req = (secure ? https : http).request(url, reqOpts, (res) => {
        arm();
        const status = res.statusCode ?? 0;
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          arm();
          buf += chunk;
          if (status !== 200) {
            if (buf.length > MAX_BODY_BYTES) finish(badResponse(what, 'error body too large'));
            return;
          }
          for (let nl = buf.indexOf('\n'); nl >= 0 && !settled; nl = buf.indexOf('\n')) {
            const text = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (text.trim() === '') continue;
            let parsed: unknown;
            try {
              parsed = JSON.parse(text);
            } catch (cause) {
              finish(badResponse(what, 'a watch line is not JSON', cause));
              return;
            }
            if (!isObject(parsed) || typeof parsed['type'] !== 'string' || !isObject(parsed['object'])) {
              finish(badResponse(what, 'a watch line without type and object'));
              return;
            }
            try {
              onEvent(parsed as unknown as WatchLine);
            } catch (err) {
              finish(err);
              return;
            }
          }
          if (buf.length > MAX_BODY_BYTES) finish(badResponse(what, 'a watch line too large'));
        });
        res.on('error', (cause) => finish(networkError(cause, this.#cfg)));
        res.on('end', () => {
          if (status === 200) return finish(null);
          try {
            interpret(what, status, buf);
            finish(badResponse(what, `HTTP ${status} instead of a stream`));
          } catch (err) {
            finish(err);
          }
        });
      });
      arm();
      req.on('error', (cause) => finish(networkError(cause, this.#cfg)));
      req.end();
    });
  }

  /** One API call: JSON in, JSON out, or an AppError. */
  request(opts: RequestOptions): Promise<unknown> {
    const url = new URL(this.#cfg.server + opts.path);
    const secure = url.protocol === 'https:';
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const headers: Record<string, string> = {
      accept: 'application/json',
      authorization: `Bearer ${this.#cfg.token}`,
      'user-agent': this.#userAgent,
    };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    const upload = opts.upload;
    if (upload !== undefined) {
      Object.assign(headers, upload.headers);
      headers['content-type'] = 'application/octet-stream';
      headers['content-length'] = String(upload.size);
      // The server refuses (413, 401, 403) before a byte of the body is sent: streaming
      // into a refusal races the server's close (EPIPE before the answer is read).
      headers['expect'] = '100-continue';
    }
    const what = `${opts.method} ${url.pathname}`;
    const timeoutMs = this.#cfg.timeoutMs;
    return new Promise((resolvePromise, reject) => {
      let settled = false;
      let responded = false;
      let source: Readable | undefined;
      let timer: NodeJS.Timeout | undefined;
      const fail = (err: AppError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        source?.destroy();
        req.destroy();
        reject(err);
      };
      // 0 means no deadline, as kubectl's --request-timeout=0. An upload may take longer
      // than any sane deadline, so for uploads the deadline is on silence: it restarts
      // whenever bytes move.
      const arm = () => {
        if (timeoutMs <= 0 || settled) return;
        clearTimeout(timer);
        timer = setTimeout(() => {
          const idle = upload !== undefined ? ' without progress' : '';
          fail(new AppError(CliErrorCode.timeout, `no response from ${this.#cfg.server} within ${timeoutMs / 1000}s${idle} (${what})`));
        }, timeoutMs);
      };
      const reqOpts: https.RequestOptions = { method: opts.method, headers, agent: false };
      if (secure) {
        if (this.#cfg.ca !== null) reqOpts.ca = this.#cfg.ca;
        reqOpts.rejectUnauthorized = !this.#cfg.insecureSkipTlsVerify;
      }
      const req = (secure ? https : http).request(url, reqOpts, (res) => {
        responded = true;
        // The server may answer before it read everything (413, 401): stop sending.
        if (source !== undefined && !source.readableEnded) {
          source.unpipe(req);
          source.destroy();
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (upload !== undefined) arm();
          size += chunk.length;
          if (size > MAX_BODY_BYTES) fail(badResponse(what, `response larger than ${MAX_BODY_BYTES} bytes`));
          else chunks.push(chunk);
        });
        res.on('error', (cause) => fail(networkError(cause, this.#cfg)));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          if (upload !== undefined) req.destroy();
          try {
            resolvePromise(interpret(what, res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')));
          } catch (err) {
            reject(err);
          }
        });
      });
      arm();
      req.on('error', (cause) => {
        // A write that fails after the server answered (it closed early) is not the
        // story: the answer is, and 'end' or the response's own error will settle.
        if (!responded) fail(networkError(cause, this.#cfg));
      });
      if (upload === undefined) {
        req.end(payload);
        return;
      }
      // The body is opened and sent once the server says 100 Continue; a refusal arrives
      // as the response instead, and nothing is sent.
      let started = false;
      const sendBody = () => {
        if (started || responded || settled) return;
        started = true;
        const stream = upload.open();
        source = stream;
        let sent = 0;
        stream.on('data', (chunk: Buffer | string) => {
          sent += chunk.length;
          arm();
          upload.onProgress?.(sent);
        });
        stream.on('error', (cause) => {
          if (!responded) fail(new AppError(CliErrorCode.fileUnreadable, `cannot read the upload: ${(cause as Error).message}`, { cause }));
        });
        stream.pipe(req);
      };
      req.on('continue', sendBody);
      // A server (or proxy) that ignores Expect gets the body anyway after a short wait (RFC 9110, 10.1.1).
      setTimeout(sendBody, EXPECT_CONTINUE_WAIT_MS).unref();
      req.flushHeaders();
    });
  }
}

/** How long an upload waits for 100 Continue before sending its body regardless. */
const EXPECT_CONTINUE_WAIT_MS = 1000;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function badResponse(what: string, why: string, cause?: unknown): AppError {
  return new AppError(CliErrorCode.badResponse, `unexpected response to ${what}: ${why}`, cause === undefined ? {} : { cause });
}

/** Check the documented shape just enough that the renderers can trust it. */
function expectKind<T>(body: unknown, kind: string, what: string): T {
  if (!isObject(body) || body['kind'] !== kind) {
    throw badResponse(what, `expected kind ${kind}, got ${isObject(body) ? JSON.stringify(body['kind'] ?? null) : typeof body}`);
  }
  if (kind.endsWith('List') && !Array.isArray(body['items'])) throw badResponse(what, `${kind} without an items array`);
  if (kind === 'Machine' && (!isObject(body['metadata']) || !isObject(body['status']) || !isObject(body['spec']))) {
    throw badResponse(what, 'Machine without metadata, spec and status');
  }
  return body as T;
}

/** The fleet status object of the remediation API: checked because the list header reads every field. */
function expectFleetStatus(body: unknown, what: string): RemediationFleetStatus {
  if (!isObject(body) || typeof body['paused'] !== 'boolean' || typeof body['dryRun'] !== 'boolean' || !isObject(body['storm'])) {
    throw badResponse(what, 'expected a remediation status {paused, dryRun, storm, inFlight, maxConcurrent}');
  }
  return body as unknown as RemediationFleetStatus;
}

/** Turn a status and body into the parsed JSON or an AppError carrying the status. */
export function interpret(what: string, status: number, text: string): unknown {
  let body: unknown = undefined;
  let parseError: unknown = null;
  try {
    body = text === '' ? null : JSON.parse(text);
  } catch (err) {
    parseError = err;
  }
  if (status >= 200 && status < 300) {
    if (parseError !== null) throw badResponse(what, 'body is not JSON', parseError);
    return body;
  }
  const context = { status };
  if (isObject(body) && typeof body['code'] === 'string' && typeof body['message'] === 'string') {
    throw new AppError(body['code'], body['message'], { context });
  }
  // A proxy or a foreign server: say what we got, briefly.
  const snippet = text.replace(/\s+/g, ' ').trim().slice(0, 120);
  throw new AppError(CliErrorCode.serverError, `${what} failed with HTTP ${status}${snippet === '' ? '' : `: ${snippet}`}`, { context });
}

/** One clear line for a socket or TLS failure. */
export function networkError(cause: unknown, cfg: ConnectionConfig): AppError {
  const code = (cause as NodeJS.ErrnoException).code ?? '';
  // One line: Node appends advice about its own flags (--use-system-ca) that means nothing
  // to nkctl users, and OpenSSL errors come as `...:SSL routines:<func>:<reason>:<file>:<line>`.
  const raw = (cause as Error).message.split('; if the root CA')[0] ?? '';
  const ssl = /SSL routines:[^:]*:([^:]+)/.exec(raw)?.[1];
  const msg = ssl !== undefined ? ssl : raw.replace(/\s+/g, ' ').trim();
  const ctx = { context: { server: cfg.server, errno: code }, cause };
  if (code === 'ECONNREFUSED') {
    return new AppError(CliErrorCode.connectionRefused, `cannot connect to ${cfg.server}: connection refused (is the coordinator running?)`, ctx);
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new AppError(CliErrorCode.unreachable, `cannot resolve the host of ${cfg.server}`, ctx);
  }
  if (TLS_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) {
    const hint = code === 'EPROTO' || code.startsWith('ERR_SSL_')
      ? ' (is the server speaking TLS? use http:// for a coordinator started with plain http)'
      : cfg.ca === null
        ? ' (pass --ca with the coordinator\'s CA certificate, or --insecure-skip-tls-verify)'
        : ' (is --ca the coordinator\'s CA, and the server name in its certificate?)';
    return new AppError(CliErrorCode.tlsFailed, `TLS handshake with ${cfg.server} failed: ${msg}${hint}`, ctx);
  }
  return new AppError(CliErrorCode.unreachable, `cannot reach ${cfg.server}: ${msg}`, ctx);
}

export type HostRegistrationObject = HostSyncState & { readonly kind: 'HostRegistration' };

export interface NodeActionObject {
  readonly kind: 'NodeAction';
  readonly machine: string;
  readonly result: string;
  readonly evicted?: readonly string[];
  readonly skipped?: readonly string[];
}
