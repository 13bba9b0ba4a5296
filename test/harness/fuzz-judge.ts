/**
 * Judges a coordinator's answers against its documents: HTTP answers (status, a JSON
 * `{code, message}` body whose code docs/errors.md lists, with the status listed there)
 * and what happens on an agent connection after a frame (the frames it sends back, the
 * close code, the fatal error frame before a close). Pure; the tests do the I/O.
 */
import { CloseCode, MAX_FRAME_BYTES, decodeCoordinatorMessage, type ErrorMessage } from '@nodekeeper/protocol';
import { readErrorCatalog } from './error-docs.ts';
import type { FuzzFrame } from './frame-fuzz.ts';
import type { RawRequest, RawResult } from './raw-http.ts';

/** Statuses the API documents (docs/nkctl.md "API", docs/errors.md); a 500 is a bug. */
export const HTTP_STATUSES: ReadonlySet<number> = new Set([101, 200, 201, 304, 308, 400, 401, 403, 404, 405, 409, 413, 417, 431, 502, 503]);
/** Close codes of docs/protocol.md. */
export const CLOSE_CODES: ReadonlySet<number> = new Set<number>([1000, 1001, 1009, ...Object.values(CloseCode)]);

export const catalog = readErrorCatalog();

/** A request, shortened for a failure message. */
export function describeRequest(r: RawRequest): string {
  const body = r.body === null ? 'no body' : `${r.body.length} bytes: ${JSON.stringify(r.body.subarray(0, 160).toString('latin1'))}`;
  const headers = r.headers.map(([k, v]) => [k, v.length > 60 ? `${v.slice(0, 40)}...(${v.length})` : v]);
  return `${JSON.stringify(r.method)} ${JSON.stringify(r.target.slice(0, 160))}${r.target.length > 160 ? `...(${r.target.length})` : ''} headers ${JSON.stringify(headers)} ${body}`;
}

export const describeFrame = (f: FuzzFrame) => `${f.note}: ${f.binary ? 'binary' : 'text'} ${f.data.length} bytes ${JSON.stringify(f.data.subarray(0, 160).toString('latin1'))}`;

/** The ways an HTTP answer breaks the contract; empty when it keeps it. */
export function judgeAnswer(req: RawRequest, result: RawResult): string[] {
  if (result.kind === 'no-answer') return [`no HTTP answer (${result.error}); received ${JSON.stringify(result.received)}`];
  const { status, body } = result.response;
  const problems: string[] = [];
  if (!HTTP_STATUSES.has(status)) problems.push(`status ${status} is not one the API documents`);
  if (status < 400 || req.method === 'HEAD') return problems;
  let parsed: { code?: unknown; message?: unknown };
  try {
    parsed = JSON.parse(body.toString('utf8')) as { code?: unknown; message?: unknown };
  } catch {
    return [...problems, `error answer ${status} without a JSON body: ${JSON.stringify(body.subarray(0, 200).toString('latin1'))}`];
  }
  const code = parsed.code;
  if (typeof code !== 'string' || !catalog.codes.has(code)) problems.push(`error code ${JSON.stringify(code)} (status ${status}) is not in docs/errors.md`);
  else if (catalog.httpStatus.has(code) && catalog.httpStatus.get(code) !== status) problems.push(`${code} answered ${status}; docs/errors.md says ${catalog.httpStatus.get(code)}`);
  if (typeof parsed.message !== 'string' || parsed.message === '') problems.push(`error answer ${status} without a message`);
  return problems;
}

/** What the generator found in the agent gateway before it was fixed (names of the tests that keep them fixed). */
export const GAP = {
  handshake: "a malformed WebSocket handshake on /v1/agent/connect with a valid credential (no or bad Sec-WebSocket-Key or -Version, a method other than GET) gets ws's plain-text 400/405, no code",
  notUtf8: 'a text frame that is not UTF-8 is closed 1007 with no NK_PROTO_BAD_JSON error frame (docs/errors.md: "error frame; the frame is ignored")',
  oversize: 'an oversize frame gets a bare 1009 close, with no NK_PROTO_FRAME_TOO_LARGE error frame (docs/protocol.md)',
} as const;

export interface FrameVerdict {
  readonly problems: string[];
  /** The frame got an error frame or closed the connection: it was refused. */
  readonly refused: boolean;
}

/** Judges what the coordinator sent (`answers`) and did (`closed`) after one frame. */
export function judgeFrame(frame: FuzzFrame, answers: readonly string[], closed: { code: number } | null): FrameVerdict {
  const problems: string[] = [];
  const errors: ErrorMessage[] = [];
  for (const a of answers) {
    const d = decodeCoordinatorMessage(a);
    if (!d.ok) problems.push(`the coordinator sent a frame that is not its protocol (${d.error.code}): ${a.slice(0, 200)}`);
    else if (d.message.type === 'error') {
      errors.push(d.message);
      if (!catalog.codes.has(d.message.code)) problems.push(`error frame code ${d.message.code} is not in docs/errors.md`);
    }
  }
  if (closed !== null) {
    const fatal = errors.some((e) => e.fatal);
    if (!CLOSE_CODES.has(closed.code)) problems.push(`closed with ${closed.code}, which docs/protocol.md does not list`);
    else if (closed.code === 1009 && !fatal) {
      // docs/protocol.md: beyond twice the limit the transport cuts the connection unread.
      if (frame.data.length <= 2 * MAX_FRAME_BYTES) problems.push(`closed 1009 without a fatal NK_PROTO_FRAME_TOO_LARGE error frame after a frame of ${frame.data.length} bytes`);
    } else if (closed.code !== 1000 && closed.code !== 1001 && !fatal) problems.push(`closed ${closed.code} without a fatal error frame before it`);
  }
  return { problems, refused: closed !== null || errors.length > 0 };
}

