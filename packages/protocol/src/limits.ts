/**
 * Hard limits of the wire protocol. Both sides enforce them; a peer that exceeds one
 * gets a specific error (see errors.ts) and, for frames, the close code below.
 */

/** The protocol versions this build speaks. A connection uses the highest both speak. */
export const PROTOCOL_VERSION = 1;
export const MIN_PROTOCOL_VERSION = 1;

/** Largest frame either side accepts, in bytes (ws maxPayload). A full report is ~4 KiB. */
export const MAX_FRAME_BYTES = 256 * 1024;

/** Bounds on strings and lists inside messages, so a hostile peer cannot make us hold much. */
export const MAX_NAME = 253; // DNS subdomain, as Kubernetes object names
export const MAX_TEXT = 4096;
export const MAX_SHORT = 256;
export const MAX_LIST = 256;
export const MAX_LABELS = 64;

/** WebSocket close codes nodekeeper uses (4000-4999 are the application's range). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  /** A frame exceeded MAX_FRAME_BYTES (after an NK_PROTO_FRAME_TOO_LARGE error frame, when the frame could be read). */
  messageTooBig: 1009,
  /** A frame failed to decode or validate too often; see the preceding error frame. */
  protocolError: 4000,
  /** The credential was revoked while connected. */
  revoked: 4003,
  /** No common protocol version. */
  unsupportedVersion: 4010,
  /** A newer connection for the same machine replaced this one. */
  superseded: 4009,
  /** The peer sent more than its rate allows. */
  rateLimited: 4029,
  /** The coordinator is shedding load; reconnect after the error frame's retryAfterMs. */
  tryAgainLater: 4013,
  /** The peer stopped answering pings. */
  unresponsive: 4008,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];
