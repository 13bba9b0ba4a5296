/**
 * Error codes that cross the wire (in `error` frames, command results and HTTP error
 * bodies). Every code is documented in docs/errors.md; a test keeps the two in step.
 * Codes are never reused for another meaning.
 */
import type { ProtocolCode } from './codes.ts';

export const ProtocolErrorCode = {
  /** The frame is not valid UTF-8 JSON. */
  badJson: 'NK_PROTO_BAD_JSON',
  /** The frame is JSON but not an object with a string `type`. */
  badEnvelope: 'NK_PROTO_BAD_ENVELOPE',
  /** The `type` is not one this protocol version knows. */
  unknownType: 'NK_PROTO_UNKNOWN_TYPE',
  /** The message does not match its schema (wrong types, missing or extra fields). */
  invalidMessage: 'NK_PROTO_INVALID_MESSAGE',
  /** The frame is larger than MAX_FRAME_BYTES. */
  frameTooLarge: 'NK_PROTO_FRAME_TOO_LARGE',
  /** Binary frames are not part of the protocol. */
  binaryFrame: 'NK_PROTO_BINARY_FRAME',
  /** No protocol version both peers speak. */
  unsupportedVersion: 'NK_PROTO_UNSUPPORTED_VERSION',
  /** A message arrived in a state where it is not allowed (e.g. report before hello). */
  unexpectedMessage: 'NK_PROTO_UNEXPECTED_MESSAGE',
  /** A report delta did not follow the previous report's sequence number. */
  reportOutOfSequence: 'NK_PROTO_REPORT_OUT_OF_SEQUENCE',
  /** The peer exceeded its message rate. */
  rateLimited: 'NK_PROTO_RATE_LIMITED',
  /** The hello names a machine other than the one the credential was issued to. */
  identityMismatch: 'NK_PROTO_IDENTITY_MISMATCH',
  /** The hello's machine key differs from the one registered for the machine. */
  machineKeyMismatch: 'NK_PROTO_MACHINE_KEY_MISMATCH',
  /** The coordinator is overloaded; retry after `retryAfterMs`. */
  tryAgainLater: 'NK_PROTO_TRY_AGAIN_LATER',
} as const satisfies Record<string, ProtocolCode>;
export type ProtocolErrorCode = (typeof ProtocolErrorCode)[keyof typeof ProtocolErrorCode];

/** A decoding failure: what went wrong, where, in words a human can act on. */
export interface DecodeError {
  readonly code: ProtocolErrorCode;
  readonly message: string;
  /** JSON pointer of the first offending value, when the schema check failed. */
  readonly path?: string;
}
