import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import {
  CriCallError,
  decodeGrpcMessage,
  decodeStatusResponse,
  decodeVersionResponse,
  encodeStatusRequest,
  encodeVersionRequest,
  grpcFrame,
  GrpcStatus,
  grpcStatusOfHttp,
  unframe,
} from './cri-wire.ts';

// The schema, read by protobufjs's full runtime: the reference both ways for the codec on its minimal one.
const root = protobuf.loadSync(path.join(import.meta.dirname, '../../proto/cri.proto'));
const type = (name: string) => root.lookupType(`runtime.v1.${name}`);
const encode = (name: string, value: object) => Buffer.from(type(name).encode(type(name).fromObject(value)).finish());

const text = fc.string({ unit: 'binary', maxLength: 40 });
const condition = fc.record({ type: text, status: fc.boolean(), reason: text, message: text }).map((c) => ({ ...c }));

const decode = (name: string, bytes: Buffer) => type(name).toObject(type(name).decode(bytes), { defaults: true });

test('requests decode in protobufjs to what was encoded', () => {
  fc.assert(fc.property(text, fc.boolean(), (version, verbose) => {
    assert.deepEqual(decode('VersionRequest', encodeVersionRequest(version)), { version });
    assert.deepEqual(decode('StatusRequest', encodeStatusRequest(verbose)), { verbose });
  }));
  // The one request the probe sends, byte for byte.
  assert.deepEqual([...encodeVersionRequest('0.1.0')], [0x0a, 5, ...Buffer.from('0.1.0')]);
});

test('responses protobufjs encodes decode to the same values, unknown fields skipped', () => {
  fc.assert(fc.property(text, text, text, text, (version, runtimeName, runtimeVersion, runtimeApiVersion) => {
    const v = { version, runtimeName, runtimeVersion, runtimeApiVersion };
    assert.deepEqual(decodeVersionResponse(encode('VersionResponse', v)), v);
  }));
  fc.assert(fc.property(fc.option(fc.array(condition, { maxLength: 5 }), { nil: undefined }), fc.dictionary(text, text, { maxKeys: 3 }), (conditions, info) => {
    const bytes = encode('StatusResponse', { ...(conditions === undefined ? {} : { status: { conditions } }), info });
    // A field unknown to this schema (runtime_handlers = 3 in the full CRI) is read past.
    const withUnknown = Buffer.concat([bytes, Buffer.from([0x1a, 2, 0x0a, 0x00]), Buffer.from([0x25, 1, 2, 3, 4])]);
    assert.deepEqual(decodeStatusResponse(withUnknown), { status: conditions === undefined ? null : { conditions } });
  }));
});

test('framing: one uncompressed message in, the same message out', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
    const msg = Buffer.from(bytes);
    assert.deepEqual(unframe(grpcFrame(msg), 1024), msg);
  }));
});

test('hostile responses fail the call with a gRPC code and say why; nothing is half-read', () => {
  const fails = (f: () => unknown, code: number, why: RegExp) => assert.throws(f, (e: unknown) => e instanceof CriCallError && e.code === code && why.test(e.details), String(f));
  fails(() => unframe(Buffer.alloc(0), 1024), GrpcStatus.INTERNAL, /no message/);
  fails(() => unframe(Buffer.from([0, 0, 0]), 1024), GrpcStatus.INTERNAL, /truncated message frame/);
  fails(() => unframe(Buffer.from([1, 0, 0, 0, 0]), 1024), GrpcStatus.INTERNAL, /compressed/);
  fails(() => unframe(Buffer.from([0, 0, 0, 0, 9, 1]), 1024), GrpcStatus.INTERNAL, /truncated message frame/);
  fails(() => unframe(Buffer.concat([grpcFrame(Buffer.from([1])), grpcFrame(Buffer.from([2]))]), 1024), GrpcStatus.INTERNAL, /more than one message/);
  fails(() => unframe(grpcFrame(Buffer.alloc(2000)), 1024), GrpcStatus.RESOURCE_EXHAUSTED, /2000 bytes exceeds the limit of 1024/);
  fails(() => decodeVersionResponse(Buffer.from([0x0a, 10, 1])), GrpcStatus.INTERNAL, /index out of range: 2 \+ 10 > 3/);
  fails(() => decodeVersionResponse(Buffer.from([0x08, 1])), GrpcStatus.INTERNAL, /string field with wire type 0/);
  fails(() => decodeVersionResponse(Buffer.from([0x0a, 0x80])), GrpcStatus.INTERNAL, /index out of range/);
  fails(() => decodeVersionResponse(Buffer.from([0x0a, ...Array(11).fill(0xff)])), GrpcStatus.INTERNAL, /index out of range/);
  fails(() => decodeVersionResponse(Buffer.from([0x2e])), GrpcStatus.INTERNAL, /invalid wire type 6/);
  fails(() => decodeVersionResponse(Buffer.from([0x00])), GrpcStatus.INTERNAL, /field number 0/);
  // A proto2 group (wire type 3) is read past to its end, as protobufjs does; this one never ends.
  fails(() => decodeVersionResponse(Buffer.from([0x2b])), GrpcStatus.INTERNAL, /index out of range/);
  fails(() => decodeStatusResponse(Buffer.from([0x0a, 3, 0x0a, 5, 0x12])), GrpcStatus.INTERNAL, /index out of range/);
  fails(() => decodeStatusResponse(Buffer.from([0x0a, 4, 0x0a, 2, 0x12, 0])), GrpcStatus.INTERNAL, /bool field with wire type 2/);
  // Random bytes never throw anything but a CriCallError (nor hang, nor return garbage types).
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
    for (const decode of [decodeVersionResponse, decodeStatusResponse]) {
      try {
        decode(Buffer.from(bytes));
      } catch (e) {
        assert.ok(e instanceof CriCallError && e.code === GrpcStatus.INTERNAL, String(e));
      }
    }
  }));
});

test('a runtime flooding conditions keeps at most 64 of them', () => {
  const conditions = Array.from({ length: 100 }, (_, i) => ({ type: `T${i}`, status: true, reason: '', message: '' }));
  assert.equal(decodeStatusResponse(encode('StatusResponse', { status: { conditions } })).status?.conditions.length, 64);
});

test('HTTP statuses map as gRPC maps them; grpc-message is percent-decoded', () => {
  assert.equal(grpcStatusOfHttp(404), GrpcStatus.UNIMPLEMENTED);
  assert.equal(grpcStatusOfHttp(503), GrpcStatus.UNAVAILABLE);
  assert.equal(grpcStatusOfHttp(401), GrpcStatus.UNAUTHENTICATED);
  assert.equal(grpcStatusOfHttp(500), GrpcStatus.UNKNOWN);
  assert.equal(decodeGrpcMessage('unknown%20service%20runtime.v1.RuntimeService'), 'unknown service runtime.v1.RuntimeService');
  assert.equal(decodeGrpcMessage('100%'), '100%');
});
