/**
 * @nodekeeper/api: the HTTP API contract. Every object the API serves or accepts as a
 * TypeBox schema with its static type, the API group and version, the path table, the
 * error codes' HTTP statuses and the OpenAPI document built from them. Pure: no I/O.
 * The coordinator's server and nkctl both import it (docs/api.md).
 */
export * from './version.ts';
export * from './meta.ts';
export * from './status.ts';
export * from './bodies.ts';
export * from './machine.ts';
export * from './event.ts';
export * from './token.ts';
export * from './package.ts';
export * from './rollout.ts';
export * from './remediation.ts';
export * from './host.ts';
export * from './watch.ts';
export * from './selector.ts';
export * from './session.ts';
export * from './http-status.ts';
export * from './paths.ts';
export * from './openapi.ts';
