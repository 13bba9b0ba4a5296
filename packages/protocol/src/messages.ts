/**
 * The messages of protocol version 1. Every frame is one JSON object with a `type`.
 *
 * agent -> coordinator: hello, report, heartbeat, command.progress, command.result, credential.saved, error
 * coordinator -> agent: welcome, command, resync, credential, error
 *
 * The agent authenticates at the WebSocket upgrade (Authorization: Bearer <credential>),
 * then sends `hello`; the coordinator answers `welcome` (or `error` and closes). The
 * agent then sends a full `report`, and afterwards deltas (only sections that changed)
 * plus a `heartbeat` every `heartbeatIntervalMs`. Sequence numbers let the coordinator
 * notice a lost delta and ask for a full report (`resync`).
 */
import { Type, type Static } from '@sinclair/typebox';
import { MAX_NAME, MAX_SHORT, MAX_TEXT } from './limits.ts';
import { MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from './wire.ts';
import { MachineIdentity, NodeReport, NodeReportDelta } from './status.ts';
import { ProtocolErrorCode } from './errors.ts';
import { MachinePublicKey } from './identity.ts';

const Seq = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const Id = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:-]+$' });
const strict = { additionalProperties: false } as const;

export const Hello = Type.Object(
  {
    type: Type.Literal('hello'),
    /** Inclusive range of protocol versions the agent speaks. */
    minProtocolVersion: Type.Integer({ minimum: 1, maximum: 1000 }),
    maxProtocolVersion: Type.Integer({ minimum: 1, maximum: 1000 }),
    agentVersion: Type.String({ maxLength: MAX_SHORT }),
    identity: MachineIdentity,
    /**
     * The agent's machine key (see identity.ts). The coordinator registers it if the
     * machine has none yet (machines enrolled before keys existed) and refuses the hello
     * if it differs from the registered one.
     */
    publicKey: Type.Optional(MachinePublicKey),
  },
  strict,
);

export const Welcome = Type.Object(
  {
    type: Type.Literal('welcome'),
    protocolVersion: Type.Integer({ minimum: 1, maximum: 1000 }),
    /** The Machine name the credential speaks for. */
    machine: Type.String({ minLength: 1, maxLength: MAX_NAME }),
    heartbeatIntervalMs: Type.Integer({ minimum: 100, maximum: 3_600_000 }),
    coordinatorVersion: Type.String({ maxLength: MAX_SHORT }),
  },
  strict,
);

export const Report = Type.Object(
  {
    type: Type.Literal('report'),
    seq: Seq,
    full: Type.Literal(true),
    report: NodeReport,
  },
  strict,
);

export const ReportDelta = Type.Object(
  {
    type: Type.Literal('report'),
    seq: Seq,
    full: Type.Literal(false),
    report: NodeReportDelta,
  },
  strict,
);

/**
 * A new machine credential, sent over the live connection before the current one
 * expires. The agent stores it durably, then answers `credential.saved`; until then the
 * old credential keeps working, so a crash in between loses nothing.
 */
export const CredentialRotate = Type.Object(
  {
    type: Type.Literal('credential'),
    credential: Type.String({ minLength: 1, maxLength: 256, pattern: '^nkm\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$' }),
    /** How long the new credential lasts from now (relative: no clock comparison). */
    expiresInMs: Type.Integer({ minimum: 1, maximum: 10 * 366 * 86_400_000 }),
  },
  strict,
);

/** The agent saved the credential with this id; the coordinator may retire the old one. */
export const CredentialSaved = Type.Object(
  { type: Type.Literal('credential.saved'), credentialId: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' }) },
  strict,
);

export const Heartbeat = Type.Object({ type: Type.Literal('heartbeat'), seq: Seq }, strict);

/** Ask the agent for a full report (after a gap in sequence numbers). */
export const Resync = Type.Object({ type: Type.Literal('resync') }, strict);

export const Command = Type.Object(
  {
    type: Type.Literal('command'),
    commandId: Id,
    /** What to do, e.g. `probe.now`, `service.restart`, `package.install`. */
    kind: Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z][a-z0-9.-]*$' }),
    params: Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), { maxProperties: 64 }),
    /** Relative deadline: the agent gives up this long after receiving it (no clock compare). */
    timeoutMs: Type.Integer({ minimum: 1, maximum: 24 * 3_600_000 }),
  },
  strict,
);

export const CommandProgress = Type.Object(
  {
    type: Type.Literal('command.progress'),
    commandId: Id,
    step: Type.String({ maxLength: 64 }),
    message: Type.String({ maxLength: MAX_TEXT }),
  },
  strict,
);

const WireError = Type.Object(
  { code: Type.String({ maxLength: 64 }), message: Type.String({ maxLength: MAX_TEXT }) },
  strict,
);

export const CommandResult = Type.Object(
  {
    type: Type.Literal('command.result'),
    commandId: Id,
    ok: Type.Boolean(),
    result: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), { maxProperties: 64 })),
    error: Type.Optional(WireError),
  },
  strict,
);

export const ErrorMessage = Type.Object(
  {
    type: Type.Literal('error'),
    code: Type.String({ maxLength: 64 }),
    message: Type.String({ maxLength: MAX_TEXT }),
    /** When set, the sender closes the connection after this frame. */
    fatal: Type.Boolean(),
    /** Present with NK_PROTO_TRY_AGAIN_LATER and rate limits: when to retry. */
    retryAfterMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 3_600_000 })),
  },
  strict,
);

export type Hello = Static<typeof Hello>;
export type Welcome = Static<typeof Welcome>;
export type Report = Static<typeof Report>;
export type ReportDelta = Static<typeof ReportDelta>;
export type Heartbeat = Static<typeof Heartbeat>;
export type Resync = Static<typeof Resync>;
export type Command = Static<typeof Command>;
export type CommandProgress = Static<typeof CommandProgress>;
export type CommandResult = Static<typeof CommandResult>;
export type ErrorMessage = Static<typeof ErrorMessage>;
export type CredentialRotate = Static<typeof CredentialRotate>;
export type CredentialSaved = Static<typeof CredentialSaved>;

export type AgentMessage = Hello | Report | ReportDelta | Heartbeat | CommandProgress | CommandResult | CredentialSaved | ErrorMessage;
export type CoordinatorMessage = Welcome | Command | Resync | CredentialRotate | ErrorMessage;

/** Schemas by `type`, per direction. A report picks its schema by `full`. */
export const agentMessageSchemas = {
  hello: Hello,
  heartbeat: Heartbeat,
  'command.progress': CommandProgress,
  'command.result': CommandResult,
  'credential.saved': CredentialSaved,
  error: ErrorMessage,
} as const;
export const coordinatorMessageSchemas = {
  welcome: Welcome,
  command: Command,
  resync: Resync,
  credential: CredentialRotate,
  error: ErrorMessage,
} as const;

/**
 * Picks the protocol version for a connection: the highest both speak, or null.
 * Pure, so both sides and the tests agree on it.
 */
export function negotiateVersion(peerMin: number, peerMax: number): number | null {
  const v = Math.min(peerMax, PROTOCOL_VERSION);
  return v >= Math.max(peerMin, MIN_PROTOCOL_VERSION) ? v : null;
}

/** Builds an `error` frame. */
export function errorFrame(
  code: ProtocolErrorCode | string,
  message: string,
  opts: { fatal?: boolean; retryAfterMs?: number } = {},
): ErrorMessage {
  const frame: ErrorMessage = { type: 'error', code, message: message.slice(0, MAX_TEXT), fatal: opts.fatal ?? false };
  if (opts.retryAfterMs !== undefined) frame.retryAfterMs = Math.max(0, Math.round(opts.retryAfterMs));
  return frame;
}
