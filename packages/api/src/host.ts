/** The host cluster registration (`/v1/host`, pull mode): what this coordinator's HostSync says of itself. */
import { Type, type Static } from '@sinclair/typebox';
import { Nullable, Time } from './meta.ts';

export const HostSyncState = Type.Object({
  registered: Type.Boolean(),
  cluster: Nullable(Type.String()),
  server: Nullable(Type.String()),
  namespace: Nullable(Type.String()),
  tokenExpires: Nullable(Type.String()),
  lastSyncTime: Nullable(Time),
  lastLeaseRenewTime: Nullable(Time),
  lastError: Nullable(Type.Object({ code: Type.String(), message: Type.String(), at: Type.String() })),
  machinesMirrored: Type.Integer({ minimum: 0 }),
  statusWrites: Type.Integer({ minimum: 0 }),
  machineWrites: Type.Integer({ minimum: 0 }),
  /** Status writes to host Rollouts and RemediationRules (written only when they change). */
  objectStatusWrites: Type.Integer({ minimum: 0 }),
});
export type HostSyncState = Static<typeof HostSyncState>;

/** Answer of `GET /v1/host` and of register, unregister (with `removed`: what it deleted on the host), rotate and sync. */
export const HostRegistration = Type.Composite([
  Type.Object({ kind: Type.Literal('HostRegistration') }),
  HostSyncState,
  Type.Object({ removed: Type.Optional(Type.Array(Type.String())) }),
]);
export type HostRegistration = Static<typeof HostRegistration>;
