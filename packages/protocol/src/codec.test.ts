import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_FRAME_BYTES,
  ProtocolErrorCode,
  decodeAgentMessage,
  decodeCoordinatorMessage,
  encode,
  negotiateVersion,
  PROTOCOL_VERSION,
} from './index.ts';
import { sampleReport } from './testing.ts';

test('a full report round-trips through encode and decode', () => {
  const msg = { type: 'report', seq: 1, full: true, report: sampleReport } as const;
  const decoded = decodeAgentMessage(encode(msg));
  assert.equal(decoded.ok, true);
  assert.deepEqual(decoded.ok && decoded.message, msg);
});

test('a delta may carry any subset of sections, but no unknown section', () => {
  assert.equal(decodeAgentMessage(JSON.stringify({ type: 'report', seq: 2, full: false, report: { cni: sampleReport.cni } })).ok, true);
  const bad = decodeAgentMessage(JSON.stringify({ type: 'report', seq: 2, full: false, report: { gpu: {} } }));
  assert.equal(!bad.ok && bad.error.code, ProtocolErrorCode.invalidMessage);
});

test('a full report missing a section is invalid and names where', () => {
  const { cni: _cni, ...partial } = sampleReport;
  const r = decodeAgentMessage(JSON.stringify({ type: 'report', seq: 1, full: true, report: partial }));
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.error.code, ProtocolErrorCode.invalidMessage);
  assert.match(!r.ok ? r.error.message : '', /report/);
});

const cases: Array<[string, string | Buffer, string]> = [
  ['not JSON', '{nope', ProtocolErrorCode.badJson],
  ['not an object', '[1,2]', ProtocolErrorCode.badEnvelope],
  ['null', 'null', ProtocolErrorCode.badEnvelope],
  ['type not a string', '{"type":5}', ProtocolErrorCode.badEnvelope],
  ['unknown type', '{"type":"exec"}', ProtocolErrorCode.unknownType],
  ['prototype key as type', '{"type":"constructor"}', ProtocolErrorCode.unknownType],
  ['wrong field type', '{"type":"heartbeat","seq":"1"}', ProtocolErrorCode.invalidMessage],
  ['negative seq', '{"type":"heartbeat","seq":-1}', ProtocolErrorCode.invalidMessage],
  ['extra field', '{"type":"heartbeat","seq":1,"x":1}', ProtocolErrorCode.invalidMessage],
  ['coordinator-only type from an agent', '{"type":"welcome"}', ProtocolErrorCode.unknownType],
  ['oversize frame', Buffer.alloc(MAX_FRAME_BYTES + 1, 0x20), ProtocolErrorCode.frameTooLarge],
];
for (const [name, frame, code] of cases) {
  test(`agent frame rejected: ${name} -> ${code}`, () => {
    const r = decodeAgentMessage(frame);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.error.code, code);
  });
}

test('coordinator frames are validated on the agent side too', () => {
  assert.equal(decodeCoordinatorMessage('{"type":"welcome","protocolVersion":1,"machine":"n","heartbeatIntervalMs":10000,"coordinatorVersion":"0.1.0"}').ok, true);
  const r = decodeCoordinatorMessage('{"type":"command","commandId":"a b","kind":"x","params":{},"timeoutMs":1}');
  assert.equal(!r.ok && r.error.code, ProtocolErrorCode.invalidMessage);
  const hello = decodeCoordinatorMessage('{"type":"hello"}');
  assert.equal(!hello.ok && hello.error.code, ProtocolErrorCode.unknownType);
});

test('version negotiation picks the highest common version or none', () => {
  assert.equal(negotiateVersion(1, 5), PROTOCOL_VERSION);
  assert.equal(negotiateVersion(PROTOCOL_VERSION + 1, PROTOCOL_VERSION + 3), null);
  assert.equal(negotiateVersion(1, 0), null);
});
