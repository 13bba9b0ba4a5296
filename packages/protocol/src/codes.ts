/**
 * Every NK_ code @nodekeeper/protocol raises, with its meaning in one line. Owner of the codes of
 * the wire protocol and the install policy both ends apply.
 * docs/errors.md says what happens with each; test/error-catalog.test.ts reads this
 * catalogue and holds it, the docs and the sources together (a code is in one
 * catalogue only, the one of the package that owns it; codes are never reused).
 */
export const PROTOCOL_CODES = {
  // Wire protocol
  NK_PROTO_BAD_JSON: 'the frame is not valid UTF-8 JSON',
  NK_PROTO_BAD_ENVELOPE: 'the frame is JSON but not an object with a string `type`',
  NK_PROTO_UNKNOWN_TYPE: 'the `type` is not one this protocol version knows (in this direction)',
  NK_PROTO_INVALID_MESSAGE: 'the message does not match its schema; the message names the first bad path',
  NK_PROTO_FRAME_TOO_LARGE: 'a frame exceeds 256 KiB',
  NK_PROTO_BINARY_FRAME: 'a binary frame; the protocol is JSON text',
  NK_PROTO_UNSUPPORTED_VERSION: 'no protocol version both peers speak',
  NK_PROTO_UNEXPECTED_MESSAGE: 'a message not allowed now (report before hello, a second hello, a result for no outstanding command, no hello within 10 s)',
  NK_PROTO_REPORT_OUT_OF_SEQUENCE: 'a report delta does not follow the previous report',
  NK_PROTO_RATE_LIMITED: 'the agent exceeded its message rate (20/s sustained, burst 100)',
  NK_PROTO_IDENTITY_MISMATCH: 'a hello or report names a machine other than the one the credential was issued to',
  NK_PROTO_MACHINE_KEY_MISMATCH: 'the hello\'s `publicKey` differs from the machine key registered for the machine',
  NK_PROTO_TRY_AGAIN_LATER: 'the coordinator is at its connection limit, or admitting agents gradually (admission control: too many connections between upgrade and welcome, `--max-pending-upgrades`; over `--max-upgrades-per-second`; or its event loop lagging)',
  // Install policy: the manifest rules (install-policy.ts), refused by the coordinator on apply and by the agent before it acts
  NK_INSTALL_PATH_NOT_ALLOWED: 'a link path is not a normalised absolute path on the install allow-list',
  NK_INSTALL_TARGET_OUTSIDE: 'a link target is absolute, has a `..` segment, or resolves outside the version directory',
  NK_INSTALL_SERVICE_NOT_ALLOWED: 'the manifest\'s service is not a `*.service` unit on the install allow-list',
  NK_AGENT_UPGRADE_MANIFEST_INVALID: 'the manifest of `nodekeeper-agent` is not the agent\'s own (links, service other than `nodekeeper-agent.service`, health probe other than `agent`), another package names `nodekeeper-agent.service` or the `agent` health probe, or a `package.rollback` of the agent was asked (the agent goes back by its guard, or by an install of the earlier version); nothing was changed',
} as const satisfies Readonly<Record<`NK_${string}`, string>>;
export type ProtocolCode = keyof typeof PROTOCOL_CODES;
