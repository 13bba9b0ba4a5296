/**
 * Decoding and encoding of frames. Every inbound frame, in both directions, goes
 * through decode*: it is size-checked, parsed, and validated against its compiled
 * schema before any code looks at it. Pure: no I/O, no logging, no clocks.
 */
import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ProtocolErrorCode, type DecodeError } from './errors.ts';
import { MAX_FRAME_BYTES } from './limits.ts';
import {
  Report,
  ReportDelta,
  agentMessageSchemas,
  coordinatorMessageSchemas,
  type AgentMessage,
  type CoordinatorMessage,
} from './messages.ts';

export type Decoded<T> = { ok: true; message: T } | { ok: false; error: DecodeError };

/**
 * The compiled validators of one direction, each compiled on its first use: the agent
 * decodes only what a coordinator sends, and a compiled validator (generated code and
 * its source text) costs memory for as long as the process runs (bench/README.md,
 * "Agent footprint").
 */
class Checks {
  private readonly compiled = new Map<string, TypeCheck<TSchema>>();
  private readonly schemas: Record<string, TSchema>;
  constructor(schemas: Record<string, TSchema>) {
    this.schemas = schemas;
  }
  /** The validator of `type`, or undefined for a type that has no schema. */
  get(type: string): TypeCheck<TSchema> | undefined {
    let c = this.compiled.get(type);
    if (c === undefined && Object.hasOwn(this.schemas, type)) {
      c = TypeCompiler.Compile(this.schemas[type]!);
      this.compiled.set(type, c);
    }
    return c;
  }
}

const agentChecks = new Checks(agentMessageSchemas);
const coordinatorChecks = new Checks(coordinatorMessageSchemas);
const reportChecks = new Checks({ full: Report, delta: ReportDelta });

const fail = (code: ProtocolErrorCode, message: string, path?: string): { ok: false; error: DecodeError } => ({
  ok: false,
  error: path === undefined ? { code, message } : { code, message, path },
});

function parseEnvelope(data: string | Buffer): Decoded<{ type: string } & Record<string, unknown>> {
  const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  if (size > MAX_FRAME_BYTES) {
    return fail(ProtocolErrorCode.frameTooLarge, `frame of ${size} bytes exceeds the limit of ${MAX_FRAME_BYTES}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  } catch (err) {
    return fail(ProtocolErrorCode.badJson, `frame is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail(ProtocolErrorCode.badEnvelope, 'frame must be a JSON object');
  }
  const type = (value as Record<string, unknown>)['type'];
  if (typeof type !== 'string') {
    return fail(ProtocolErrorCode.badEnvelope, 'frame must have a string "type"');
  }
  return { ok: true, message: value as { type: string } & Record<string, unknown> };
}

function check<T>(validator: TypeCheck<TSchema>, value: Record<string, unknown>, type: string): Decoded<T> {
  if (validator.Check(value)) return { ok: true, message: value as T };
  const first = validator.Errors(value).First();
  const where = first?.path || '/';
  return fail(
    ProtocolErrorCode.invalidMessage,
    `invalid "${type}" message at ${where}: ${first?.message ?? 'does not match the schema'}`,
    where,
  );
}

function decodeWith<T>(data: string | Buffer, checks: Checks, allowReport: boolean): Decoded<T> {
  const env = parseEnvelope(data);
  if (!env.ok) return env;
  const msg = env.message;
  if (allowReport && msg.type === 'report') {
    return check<T>(reportChecks.get(msg['full'] === true ? 'full' : 'delta')!, msg, 'report');
  }
  const validator = checks.get(msg.type);
  if (validator === undefined) {
    return fail(ProtocolErrorCode.unknownType, `unknown message type "${msg.type.slice(0, 64)}"`);
  }
  return check<T>(validator, msg, msg.type);
}

/** Decodes a frame an agent sent (coordinator side). */
export function decodeAgentMessage(data: string | Buffer): Decoded<AgentMessage> {
  return decodeWith<AgentMessage>(data, agentChecks, true);
}

/** Decodes a frame a coordinator sent (agent side). */
export function decodeCoordinatorMessage(data: string | Buffer): Decoded<CoordinatorMessage> {
  return decodeWith<CoordinatorMessage>(data, coordinatorChecks, false);
}

/** Encodes a message as a text frame. */
export function encode(message: AgentMessage | CoordinatorMessage): string {
  return JSON.stringify(message);
}
