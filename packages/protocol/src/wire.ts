/**
 * The wire's fixed points, said once for both ends: where an agent connects, which
 * protocol versions this build speaks, and the WebSocket close codes with their meanings
 * (docs/protocol.md lists the same codes; test/error-catalog.test.ts holds the two together).
 */

/** The HTTP path of the agent's WebSocket upgrade; the agent dials it, the coordinator's gateway serves it. */
export const AGENT_PATH = '/v1/agent/connect';

/** The protocol versions this build speaks. A connection uses the highest both speak. */
export const PROTOCOL_VERSION = 1;
export const MIN_PROTOCOL_VERSION = 1;

/** The versions a peer speaks as said in messages: `1`, or `1-3` for a range. */
export function versionRange(min: number, max: number): string {
  return min === max ? `${min}` : `${min}-${max}`;
}

/** WebSocket close codes nodekeeper uses (4000-4999 are the application's range). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  /** A frame exceeded MAX_FRAME_BYTES (after an NK_PROTO_FRAME_TOO_LARGE error frame, when the frame could be read). */
  messageTooBig: 1009,
  /** Protocol error: too many invalid frames, an identity mismatch, or no hello; see the preceding error frame. */
  protocolError: 4000,
  /** The machine's credential was revoked, reset or replaced, is no longer accepted at hello, or its key does not match. */
  revoked: 4003,
  /** No common protocol version. */
  unsupportedVersion: 4010,
  /** A newer connection for the same machine replaced this one. */
  superseded: 4009,
  /** The peer sent more than its rate allows. */
  rateLimited: 4029,
  /** The coordinator is shedding load; reconnect after the error frame's retryAfterMs. */
  tryAgainLater: 4013,
  /** The peer stopped answering pings (reserved: a dead peer is terminated). */
  unresponsive: 4008,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];
