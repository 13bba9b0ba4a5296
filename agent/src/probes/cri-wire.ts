/**
 * The wire format of the two CRI v1 calls the runtime probe makes (RuntimeService.Version
 * and .Status): the six messages of agent/proto/cri.proto read and written with
 * protobufjs's minimal runtime (its Reader and Writer, as code that protobufjs's static
 * generator emits; cri-wire.test.ts checks the result against protobufjs reading the
 * .proto itself), and gRPC's length-prefixed message framing. Pure: bytes in, values out.
 *
 * Why not a gRPC client: @grpc/grpc-js with @grpc/proto-loader parsing cri.proto at start
 * cost the agent about 4 MB of resident memory (bench/README.md, "Agent footprint") for
 * two unary calls over a unix socket; the transport is node:http2 (cri.ts).
 */
import protobuf from 'protobufjs/minimal.js';

const { Reader, Writer } = protobuf;
type Reader = protobuf.Reader;

/** gRPC status codes (grpc/doc/statuscodes.md) the probe tells apart, by number. */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

const STATUS_NAMES = new Map<number, string>(Object.entries(GrpcStatus).map(([name, code]) => [code, name]));

/** The name of a gRPC status code (`UNAVAILABLE`), or its number for one outside the table. */
export const grpcStatusName = (code: number): string => STATUS_NAMES.get(code) ?? String(code);

/** A failed call: a gRPC status code and its details, as grpc-js's ServiceError carried them. */
export class CriCallError extends Error {
  readonly code: number;
  readonly details: string;
  constructor(code: number, details: string) {
    super(`${code} ${grpcStatusName(code)}: ${details}`);
    this.code = code;
    this.details = details;
  }
}

/** The HTTP status of a response that is not gRPC, mapped as gRPC's http-grpc-status-mapping.md says. */
export function grpcStatusOfHttp(status: number): number {
  switch (status) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

export interface VersionResponse { version: string; runtimeName: string; runtimeVersion: string; runtimeApiVersion: string }
export interface WireCondition { type: string; status: boolean; reason: string; message: string }
/** StatusResponse with only what the probe reads: `status` (null when absent); `info` is skipped. */
export interface StatusResponse { status: { conditions: WireCondition[] } | null }

// --- Encoding: the two requests, each one field ------------------------------------

/** VersionRequest { string version = 1 }. */
export function encodeVersionRequest(version: string): Buffer {
  // proto3 leaves a default (empty) scalar out.
  return version === '' ? Buffer.alloc(0) : Buffer.from(Writer.create().uint32(0x0a).string(version).finish());
}

/** StatusRequest { bool verbose = 1 }. */
export function encodeStatusRequest(verbose: boolean): Buffer {
  return verbose ? Buffer.from(Writer.create().uint32(0x08).bool(true).finish()) : Buffer.alloc(0);
}

/** One gRPC message frame: not compressed, 4-byte big-endian length, the message. */
export function grpcFrame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

// --- Decoding ----------------------------------------------------------------------

/** A malformed message: the call fails with INTERNAL, as grpc-js failed a message it could not parse. */
const malformed = (what: string): CriCallError => new CriCallError(GrpcStatus.INTERNAL, `malformed CRI response: ${what}`);

/**
 * Reads `buf`'s fields with protobufjs's reader: `read` takes the ones it knows
 * (returning true), the rest are skipped, as proto3 requires.
 */
function fields(buf: Uint8Array, read: (r: Reader, field: number, wire: number) => boolean): void {
  const r = Reader.create(buf);
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 0) throw malformed('field number 0');
    if (!read(r, field, wire)) r.skipType(wire);
  }
}

/** Decodes with `decode`; whatever the reader throws (truncation, a bad varint or wire type) is a malformed message. */
function decoding<T>(decode: () => T): T {
  try {
    return decode();
  } catch (err) {
    if (err instanceof CriCallError) throw err;
    throw malformed(err instanceof Error ? err.message : String(err));
  }
}

/** A string field; a field of another wire type is malformed (protobufjs and grpc-js refuse it too). */
function stringField(r: Reader, wire: number): string {
  if (wire !== 2) throw malformed(`string field with wire type ${wire}`);
  // Not r.string(): on a Buffer it clamps a length that overruns the message instead of failing.
  return Buffer.from(r.bytes()).toString('utf8');
}

export function decodeVersionResponse(buf: Buffer): VersionResponse {
  const out: VersionResponse = { version: '', runtimeName: '', runtimeVersion: '', runtimeApiVersion: '' };
  const names = [undefined, 'version', 'runtimeName', 'runtimeVersion', 'runtimeApiVersion'] as const;
  return decoding(() => {
    fields(buf, (r, field, wire) => {
      const name = names[field];
      if (name === undefined) return false;
      out[name] = stringField(r, wire);
      return true;
    });
    return out;
  });
}

function decodeCondition(buf: Uint8Array): WireCondition {
  const c: WireCondition = { type: '', status: false, reason: '', message: '' };
  fields(buf, (r, field, wire) => {
    if (field === 2) {
      if (wire !== 0) throw malformed(`bool field with wire type ${wire}`);
      c.status = r.bool();
      return true;
    }
    const name = field === 1 ? 'type' : field === 3 ? 'reason' : field === 4 ? 'message' : undefined;
    if (name === undefined) return false;
    c[name] = stringField(r, wire);
    return true;
  });
  return c;
}

/** At most this many conditions are kept (the probe reports 16); the rest are read past. */
const MAX_CONDITIONS = 64;

export function decodeStatusResponse(buf: Buffer): StatusResponse {
  let status: { conditions: WireCondition[] } | null = null;
  return decoding(() => {
    fields(buf, (r, field, wire) => {
      if (field !== 1) return false;
      if (wire !== 2) throw malformed(`message field with wire type ${wire}`);
      // A repeated message field may come in more than one piece: proto3 merges them.
      const st = (status ??= { conditions: [] });
      fields(r.bytes(), (rr, f, w) => {
        if (f !== 1) return false;
        if (w !== 2) throw malformed(`message field with wire type ${w}`);
        const c = decodeCondition(rr.bytes());
        if (st.conditions.length < MAX_CONDITIONS) st.conditions.push(c);
        return true;
      });
      return true;
    });
    return { status };
  });
}

/**
 * The one message of a unary response body (gRPC frames: flag byte, 4-byte length,
 * message). Not exactly one uncompressed frame, or longer than `maxBytes`: malformed.
 */
export function unframe(body: Buffer, maxBytes: number): Buffer {
  if (body.length < 5) throw malformed(body.length === 0 ? 'no message in the response' : 'truncated message frame');
  if (body[0] !== 0) throw malformed(`compressed message (flag ${body[0]}), which was not asked for`);
  const len = body.readUInt32BE(1);
  if (len > maxBytes) throw new CriCallError(GrpcStatus.RESOURCE_EXHAUSTED, `response message of ${len} bytes exceeds the limit of ${maxBytes}`);
  if (body.length !== 5 + len) throw malformed(body.length < 5 + len ? 'truncated message frame' : 'more than one message in a unary response');
  return body.subarray(5);
}

/** grpc-message is percent-encoded (gRPC's PROTOCOL-HTTP2.md); a broken encoding is shown as sent. */
export function decodeGrpcMessage(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}
