/**
 * The path table: one row per route of the HTTP API (the agents' WebSocket path is the
 * protocol's, not here). The server checks its routes against it when it starts
 * (coordinator/src/server/contract-check.ts), and `/openapi/v3` is generated from it
 * (openapi.ts). docs/api.md says how to add a row.
 */
import { Type, type TSchema } from '@sinclair/typebox';
import { ApiCredentialCreateBody, Challenge, ChallengeBody, DryRunBody, Enrolled, EnrollBody, HostRegisterBody, HostUnregisterBody, MachinePackagesBody, TokenCreateBody } from './bodies.ts';
import { EventList } from './event.ts';
import { HostRegistration } from './host.ts';
import { Machine, MachineDeleted, MachineList, NodeAction } from './machine.ts';
import { Artifact, ArtifactList, ClusterPackageVersion, ClusterPackageVersionInput, PackageList } from './package.ts';
import { Remediation, RemediationFleetStatus, RemediationList, RemediationRule, RemediationRuleInput, RemediationRuleList } from './remediation.ts';
import { DrainSpecSchema, ROLLOUT_ACTIONS, Rollout, RolloutList, RolloutObjectInputSchema } from './rollout.ts';
import { DeleteStatus, Deleted, ErrorBody } from './status.ts';
import { ApiCredential, ApiCredentialCreated, ApiCredentialList, Token, TokenCreated, TokenList } from './token.ts';
import { Session, SignedOut } from './session.ts';
import { Bookmark, WatchEvent, WatchStatus } from './watch.ts';

/** Every named schema of the API: the document's `components.schemas`. */
export const SCHEMAS = {
  ErrorBody, DeleteStatus, Deleted,
  Machine, MachineList, MachineDeleted, NodeAction, MachinePackagesBody,
  EnrollBody, Enrolled, ChallengeBody, Challenge,
  Token, TokenList, TokenCreateBody, TokenCreated,
  ApiCredential, ApiCredentialList, ApiCredentialCreateBody, ApiCredentialCreated,
  Artifact, ArtifactList, ClusterPackageVersion, ClusterPackageVersionInput, PackageList,
  Rollout, RolloutList, RolloutInput: RolloutObjectInputSchema, DrainSpec: DrainSpecSchema,
  EventList,
  Remediation, RemediationList, RemediationFleetStatus, RemediationRule, RemediationRuleInput, RemediationRuleList, DryRunBody,
  HostRegistration, HostRegisterBody, HostUnregisterBody,
  WatchEvent, Bookmark, WatchStatus,
  Session, SignedOut,
} as const satisfies Record<string, TSchema>;
export type SchemaName = keyof typeof SCHEMAS;

/** Who may call a route: anyone, an agent (machine credential, or any API credential), or an API role. */
export type Access = 'none' | 'agent' | 'read-only' | 'admin';
export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';

/** A path or query parameter: its schema, and a value that is valid (the server's check uses it). */
export interface Param {
  readonly schema: TSchema;
  readonly sample: string;
  readonly description?: string;
}

export interface PathEntry {
  /** The route's name as the server uses it (metrics label `route`). */
  readonly name: string;
  readonly method: Method;
  /** The path template, e.g. `/v1/rollouts/{name}`. */
  readonly path: string;
  readonly access: Access;
  readonly summary: string;
  readonly params?: Readonly<Record<string, Param>>;
  readonly query?: Readonly<Record<string, Param>>;
  /** A JSON body of this schema; `binary`: a streamed body (an artifact). */
  readonly request?: SchemaName | 'binary';
  /** Status and schema of success; a non-JSON answer names its content type instead. */
  readonly response: { readonly status: 200 | 201; readonly schema: SchemaName } | { readonly status: 200; readonly contentType: string };
  /** An apply (create-or-update): 201 with the same schema when it created the object. */
  readonly createsOnApply?: true;
}

const name: Param = { schema: Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9._-]{0,252}$' }), sample: 'node-1', description: 'object name' };
const sha: Param = { schema: Type.String({ pattern: '^[0-9a-f]{64}$' }), sample: 'a'.repeat(64), description: 'the artifact\'s sha256, hex' };
const limit: Param = { schema: Type.Integer({ minimum: 1, maximum: 9999, default: 50 }), sample: '5', description: 'newest events to return' };
/**
 * The watch parameters of a list route (the shared watch wire format, watch.ts): to be
 * set as a list row's `query` where the server streams that list (`?watch=1`).
 */
export const WATCH_QUERY: Readonly<Record<string, Param>> = {
  watch: { schema: Type.Union([Type.Literal('1'), Type.Literal('true'), Type.Literal('0'), Type.Literal('false'), Type.Literal('')]), sample: '1', description: 'stream WatchEvents, one JSON object per line, instead of the list' },
  resourceVersion: { schema: Type.String({ pattern: '^(0|[1-9][0-9]{0,14})$' }), sample: '1', description: "the list's metadata.resourceVersion (or a BOOKMARK's) to watch from (410 Gone when too old); absent or 0: ADDED for every object first" },
  allowWatchBookmarks: { schema: Type.Union([Type.Literal('1'), Type.Literal('true'), Type.Literal('0'), Type.Literal('false'), Type.Literal('')]), sample: 'true', description: 'accepted; bookmarks are always sent' },
  timeoutSeconds: { schema: Type.Integer({ minimum: 1, maximum: 86_400 }), sample: '30', description: 'end the watch after this many seconds' },
};
const labelSelector: Param = { schema: Type.String({ maxLength: 1024 }), sample: 'zone=a', description: 'equality-based label selector (kubectl -l)' };
const ok = (schema: SchemaName) => ({ status: 200, schema }) as const;
const created = (schema: SchemaName) => ({ status: 201, schema }) as const;
const text = { status: 200, contentType: 'text/plain' } as const;

/** Every route of the HTTP API (docs/api.md says how to add one). */
export const PATHS: readonly PathEntry[] = [
  // Health and discovery: no credential.
  { name: 'healthz', method: 'GET', path: '/healthz', access: 'none', summary: 'Liveness: the process answers.', response: text },
  { name: 'readyz', method: 'GET', path: '/readyz', access: 'none', summary: 'Readiness: the store answers and takes writes (503 with the outage otherwise).', response: text },
  { name: 'metrics', method: 'GET', path: '/metrics', access: 'none', summary: 'Prometheus metrics.', response: { status: 200, contentType: 'text/plain; version=0.0.4' } },
  { name: 'ca', method: 'GET', path: '/v1/ca', access: 'none', summary: "The coordinator CA's certificate (404 when serving plain HTTP).", response: { status: 200, contentType: 'application/x-pem-file' } },
  { name: 'openapi', method: 'GET', path: '/openapi/v3', access: 'read-only', summary: 'This document: OpenAPI 3.1, generated from the contract (@nodekeeper/api).', response: { status: 200, contentType: 'application/json' } },
  // The fleet page (docs/ui.md): its files, and its sign-in (a credential in the Authorization header for a session cookie).
  { name: 'ui', method: 'GET', path: '/ui/', access: 'none', summary: 'The fleet page and its assets (any path under /ui/).', response: { status: 200, contentType: 'text/html' } },
  { name: 'ui-head', method: 'HEAD', path: '/ui/', access: 'none', summary: 'Headers of the fleet page or an asset.', response: { status: 200, contentType: 'text/html' } },
  { name: 'session-create', method: 'POST', path: '/v1/sessions', access: 'none', summary: 'Sign in: exchange the API credential of the Authorization header for an nk_session cookie (HttpOnly, Secure, SameSite=Strict).', response: created('Session') },
  { name: 'session', method: 'GET', path: '/v1/sessions/current', access: 'read-only', summary: 'The session of the nk_session cookie, with its CSRF token.', response: ok('Session') },
  { name: 'session-delete', method: 'DELETE', path: '/v1/sessions/current', access: 'read-only', summary: 'Sign out: the session ends and the cookie is cleared.', response: ok('SignedOut') },
  // Enrollment.
  { name: 'enroll-challenge', method: 'POST', path: '/v1/enroll/challenge', access: 'none', summary: 'A single-use nonce for re-enrollment by proof of the machine key.', request: 'ChallengeBody', response: ok('Challenge') },
  { name: 'enroll', method: 'POST', path: '/v1/enroll', access: 'none', summary: 'Enroll a machine with a bootstrap token or a key proof; answers its credential once.', request: 'EnrollBody', response: created('Enrolled') },
  // Machines.
  { name: 'machines', method: 'GET', path: '/v1/machines', access: 'read-only', summary: 'List machines, sorted by name; or watch them (?watch=1).', query: { ...WATCH_QUERY, labelSelector }, response: ok('MachineList') },
  { name: 'machine', method: 'GET', path: '/v1/machines/{name}', access: 'read-only', summary: 'One machine.', params: { name }, response: ok('Machine') },
  { name: 'machine-events', method: 'GET', path: '/v1/machines/{name}/events', access: 'read-only', summary: "A machine's newest events.", params: { name }, query: { limit }, response: ok('EventList') },
  { name: 'machine-revoke', method: 'POST', path: '/v1/machines/{name}/revoke', access: 'admin', summary: "Revoke a machine's credential and close its connections.", params: { name }, response: ok('Machine') },
  { name: 'machine-reset', method: 'POST', path: '/v1/machines/{name}/reset', access: 'admin', summary: 'Let the next bootstrap-token enrollment of this name become this machine.', params: { name }, response: ok('Machine') },
  { name: 'machine-packages', method: 'PUT', path: '/v1/machines/{name}/packages', access: 'admin', summary: "Pin package versions on a machine over the ClusterPackageVersion.", params: { name }, request: 'MachinePackagesBody', response: ok('Machine') },
  {
    name: 'machine-delete', method: 'DELETE', path: '/v1/machines/{name}', access: 'admin', summary: 'Delete a machine for good (409 NK_MACHINE_IN_USE while a rollout holds it, unless force).', params: { name },
    query: { force: { schema: Type.Union([Type.Literal('true'), Type.Literal('false')]), sample: 'false', description: 'delete even while a rollout holds it' } }, response: ok('MachineDeleted'),
  },
  { name: 'machine-cordon', method: 'POST', path: '/v1/machines/{name}/cordon', access: 'admin', summary: "Cordon the machine's Node in the member cluster.", params: { name }, response: ok('NodeAction') },
  { name: 'machine-uncordon', method: 'POST', path: '/v1/machines/{name}/uncordon', access: 'admin', summary: "Uncordon the machine's Node.", params: { name }, response: ok('NodeAction') },
  { name: 'machine-drain', method: 'POST', path: '/v1/machines/{name}/drain', access: 'admin', summary: "Cordon and drain the machine's Node with kubectl drain's rules.", params: { name }, request: 'DrainSpec', response: ok('NodeAction') },
  // Bootstrap tokens and API credentials.
  { name: 'token-create', method: 'POST', path: '/v1/tokens', access: 'admin', summary: 'Create a bootstrap token; the secret is in this answer only.', request: 'TokenCreateBody', response: created('TokenCreated') },
  { name: 'tokens', method: 'GET', path: '/v1/tokens', access: 'read-only', summary: 'List bootstrap tokens (never their secrets).', response: ok('TokenList') },
  { name: 'token-revoke', method: 'DELETE', path: '/v1/tokens/{id}', access: 'admin', summary: 'Revoke a bootstrap token.', params: { id: { schema: Type.String({ pattern: '^[a-z0-9]{6}$' }), sample: 'abcdef', description: 'token id' } }, response: ok('Deleted') },
  { name: 'apicredential-create', method: 'POST', path: '/v1/apicredentials', access: 'admin', summary: 'Create an API credential; the secret is in this answer only.', request: 'ApiCredentialCreateBody', response: created('ApiCredentialCreated') },
  { name: 'apicredentials', method: 'GET', path: '/v1/apicredentials', access: 'admin', summary: 'List API credentials (never their secrets).', response: ok('ApiCredentialList') },
  { name: 'apicredential-revoke', method: 'DELETE', path: '/v1/apicredentials/{id}', access: 'admin', summary: 'Revoke an API credential (refused for the last admin one).', params: { id: { schema: Type.String({ pattern: '^[0-9a-f]{16}$' }), sample: '0123456789abcdef', description: 'credential id' } }, response: ok('ApiCredential') },
  // Artifacts and packages.
  {
    name: 'artifact-push', method: 'PUT', path: '/v1/artifacts', access: 'admin', summary: 'Upload an artifact (streamed; header X-Nodekeeper-Signature optional).', request: 'binary',
    query: { package: { schema: Type.String({ pattern: '^[a-z][a-z0-9-]{0,62}$' }), sample: 'kubelet' }, version: { schema: Type.String(), sample: '1.31.3' } }, response: created('Artifact'),
  },
  { name: 'artifacts', method: 'GET', path: '/v1/artifacts', access: 'read-only', summary: 'List artifacts.', response: ok('ArtifactList') },
  { name: 'artifact-download', method: 'GET', path: '/v1/artifacts/sha256/{sha}', access: 'agent', summary: "An artifact's bytes.", params: { sha }, response: { status: 200, contentType: 'application/octet-stream' } },
  { name: 'artifact-delete', method: 'DELETE', path: '/v1/artifacts/sha256/{sha}', access: 'admin', summary: 'Delete an artifact nothing refers to (409 NK_ARTIFACT_IN_USE otherwise).', params: { sha }, response: ok('DeleteStatus') },
  { name: 'cpv', method: 'GET', path: '/v1/clusterpackageversion', access: 'read-only', summary: 'The ClusterPackageVersion and how the fleet stands against it.', response: ok('ClusterPackageVersion') },
  { name: 'cpv-apply', method: 'PUT', path: '/v1/clusterpackageversion', access: 'admin', summary: 'Apply the ClusterPackageVersion (201 on first apply); optimistic concurrency on metadata.resourceVersion.', request: 'ClusterPackageVersionInput', createsOnApply: true, response: ok('ClusterPackageVersion') },
  { name: 'packages', method: 'GET', path: '/v1/packages', access: 'read-only', summary: "Each package's desired version and the fleet's versions.", response: ok('PackageList') },
  // Rollouts.
  { name: 'rollout-create', method: 'POST', path: '/v1/rollouts', access: 'admin', summary: 'Create a rollout.', request: 'RolloutInput', response: created('Rollout') },
  { name: 'rollouts', method: 'GET', path: '/v1/rollouts', access: 'read-only', summary: 'List rollouts; or watch them (?watch=1).', query: { ...WATCH_QUERY, name: { ...name, description: 'only the rollout of this name' } }, response: ok('RolloutList') },
  { name: 'events', method: 'GET', path: '/v1/events', access: 'read-only', summary: "The coordinator's event log, newest last; or watch it (?watch=1; an event's resourceVersion is its id).", query: { ...WATCH_QUERY, limit }, response: ok('EventList') },
  { name: 'rollout', method: 'GET', path: '/v1/rollouts/{name}', access: 'read-only', summary: 'One rollout.', params: { name }, response: ok('Rollout') },
  { name: 'rollout-apply', method: 'PUT', path: '/v1/rollouts/{name}', access: 'admin', summary: 'Create or update a rollout by name (201 when created); optimistic concurrency on metadata.resourceVersion.', params: { name }, request: 'RolloutInput', createsOnApply: true, response: ok('Rollout') },
  { name: 'rollout-delete', method: 'DELETE', path: '/v1/rollouts/{name}', access: 'admin', summary: 'Delete a finished rollout.', params: { name }, response: ok('DeleteStatus') },
  { name: 'rollout-events', method: 'GET', path: '/v1/rollouts/{name}/events', access: 'read-only', summary: "A rollout's newest events.", params: { name }, query: { limit }, response: ok('EventList') },
  {
    name: 'rollout-request', method: 'POST', path: '/v1/rollouts/{name}/{action}', access: 'admin', summary: 'Ask a rollout to pause, resume, abort or roll back (409 outside the phases that allow it).',
    params: { name, action: { schema: Type.Union(ROLLOUT_ACTIONS.map((a) => Type.Literal(a))), sample: 'pause' } }, response: ok('Rollout'),
  },
  // Remediation.
  { name: 'remediations', method: 'GET', path: '/v1/remediations', access: 'read-only', summary: 'Machines with a remediation story or a fault, and the fleet-wide state; or watch them (?watch=1).', query: WATCH_QUERY, response: ok('RemediationList') },
  { name: 'remediation-switch', method: 'POST', path: '/v1/remediations/pause', access: 'admin', summary: 'Pause automatic remediation fleet-wide.', response: ok('RemediationFleetStatus') },
  { name: 'remediation-switch', method: 'POST', path: '/v1/remediations/resume', access: 'admin', summary: 'Resume automatic remediation fleet-wide.', response: ok('RemediationFleetStatus') },
  { name: 'remediation-dry-run', method: 'POST', path: '/v1/remediations/dry-run', access: 'admin', summary: 'Turn dry run on or off.', request: 'DryRunBody', response: ok('RemediationFleetStatus') },
  { name: 'remediation', method: 'GET', path: '/v1/remediations/{name}', access: 'read-only', summary: "One machine's remediation.", params: { name }, response: ok('Remediation') },
  { name: 'remediation-machine-switch', method: 'POST', path: '/v1/remediations/{name}/pause', access: 'admin', summary: 'Pause remediation of one machine.', params: { name }, response: ok('Remediation') },
  { name: 'remediation-machine-switch', method: 'POST', path: '/v1/remediations/{name}/resume', access: 'admin', summary: 'Resume remediation of one machine.', params: { name }, response: ok('Remediation') },
  { name: 'remediation-rules', method: 'GET', path: '/v1/remediationrules', access: 'read-only', summary: 'The rules in force (applied and built-in).', response: ok('RemediationRuleList') },
  { name: 'remediation-rule-apply', method: 'PUT', path: '/v1/remediationrules/{name}', access: 'admin', summary: 'Apply a rule (201 when created).', params: { name }, request: 'RemediationRuleInput', createsOnApply: true, response: ok('RemediationRule') },
  { name: 'remediation-rule-delete', method: 'DELETE', path: '/v1/remediationrules/{name}', access: 'admin', summary: "Delete a rule: its fault's built-in rule applies again.", params: { name }, response: ok('Deleted') },
  // Host cluster registration.
  { name: 'host', method: 'GET', path: '/v1/host', access: 'read-only', summary: 'The host cluster registration and its sync state.', response: ok('HostRegistration') },
  { name: 'host-register', method: 'POST', path: '/v1/host/register', access: 'admin', summary: 'Register with a host cluster (pull mode).', request: 'HostRegisterBody', response: ok('HostRegistration') },
  { name: 'host-unregister', method: 'POST', path: '/v1/host/unregister', access: 'admin', summary: 'Leave the host cluster (or forget the registration only).', request: 'HostUnregisterBody', response: ok('HostRegistration') },
  { name: 'host-rotate', method: 'POST', path: '/v1/host/rotate', access: 'admin', summary: "Rotate the member's host credential now.", response: ok('HostRegistration') },
  { name: 'host-sync', method: 'POST', path: '/v1/host/sync', access: 'admin', summary: 'Sync with the host now.', response: ok('HostRegistration') },
  // Backups.
  { name: 'backup-create', method: 'POST', path: '/v1/backups', access: 'admin', summary: 'Take a backup and stream the archive (sha256 in X-Nodekeeper-Backup-Sha256).', response: { status: 200, contentType: 'application/gzip' } },
];

/** The path with every `{param}` replaced by its sample: a request target the route accepts. */
export function samplePath(e: PathEntry): string {
  return e.path.replace(/\{([a-zA-Z]+)\}/g, (_m, p: string) => {
    const param = e.params?.[p];
    if (param === undefined) throw new TypeError(`${e.method} ${e.path}: no parameter "${p}" declared`);
    return encodeURIComponent(param.sample);
  });
}

/** The entry of a route name (the first, for routes with several paths). */
export function pathEntry(routeName: string): PathEntry {
  const e = PATHS.find((p) => p.name === routeName);
  if (e === undefined) throw new TypeError(`no route "${routeName}" in the contract`);
  return e;
}
