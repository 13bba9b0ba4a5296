/**
 * Frames for a generative test of the agent protocol: valid frames of every agent
 * message type, mutated; random JSON, text and bytes; binary and oversize frames.
 * Arbitraries only; no I/O.
 */
import fc from 'fast-check';
import { MAX_FRAME_BYTES, type MachineIdentity } from '@nodekeeper/protocol';
import { sampleReport } from '@nodekeeper/protocol/testing';
import { anyJson, deepNest, mutated, type Json } from './mutate.ts';

export interface FuzzFrame {
  readonly binary: boolean;
  readonly data: Buffer;
  /** What the generator meant (shown in a counterexample). */
  readonly note: string;
}

/** A valid frame of each agent message type, for the machine `identity`. */
export function validAgentFrames(identity: MachineIdentity): Record<string, Json> {
  const report = { ...sampleReport, identity } as unknown as Json;
  return {
    hello: { type: 'hello', minProtocolVersion: 1, maxProtocolVersion: 1, agentVersion: 'fuzz', identity: identity as unknown as Json },
    'report-full': { type: 'report', seq: 1, full: true, report },
    'report-delta': { type: 'report', seq: 2, full: false, report: { kubelet: sampleReport.kubelet as unknown as Json } },
    heartbeat: { type: 'heartbeat', seq: 3 },
    'command.progress': { type: 'command.progress', commandId: 'cmd-1', step: 'download', message: 'fetching' },
    'command.result': { type: 'command.result', commandId: 'cmd-1', ok: false, result: { a: 1 }, error: { code: 'NK_INSTALL_BUSY', message: 'busy' } },
    error: { type: 'error', code: 'NK_AGENT_PROBE_FAILED', message: 'probe failed', fatal: false },
  };
}

const text = (s: string, note: string): FuzzFrame => ({ binary: false, data: Buffer.from(s, 'utf8'), note });

export function frameArb(identity: MachineIdentity): fc.Arbitrary<FuzzFrame> {
  const valid = validAgentFrames(identity);
  const kinds = Object.keys(valid);
  return fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom(...kinds).chain((k) => mutated(valid[k]!).map((s) => text(s, `mutated ${k}`))) },
    { weight: 2, arbitrary: anyJson().map((j) => text(JSON.stringify(j), 'random JSON')) },
    { weight: 1, arbitrary: fc.string({ maxLength: 200, unit: 'grapheme' }).map((s) => text(s, 'random text')) },
    { weight: 1, arbitrary: fc.constantFrom(deepNest(20_000, 'array'), deepNest(5_000, 'object'), '{"type":', '{"type":null}', '{"type":"report","__proto__":{"full":true}}').map((s) => text(s, 'edge JSON')) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 0, maxLength: 256 }).map((a) => ({ binary: true, data: Buffer.from(a), note: 'binary frame' })) },
    // Text frames whose bytes are not UTF-8 (a fuzzer's random bytes sent as text).
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }).map((a) => ({ binary: false, data: Buffer.concat([Buffer.from([0xff]), Buffer.from(a)]), note: 'text frame, not UTF-8' })) },
    { weight: 1, arbitrary: fc.constantFrom(MAX_FRAME_BYTES + 1, MAX_FRAME_BYTES * 2).map((n) => text(`{"type":"heartbeat","seq":1,"pad":"${'p'.repeat(n)}"}`, `oversize text frame (${n} bytes of padding)`)) },
    { weight: 1, arbitrary: fc.constant(text(JSON.stringify({ ...(valid['command.progress'] as object), message: 'm'.repeat(MAX_FRAME_BYTES - 200) }), 'a frame just under the limit with a too-long string')) },
  );
}

/** One connection's worth: whether it says hello first, then the frames. */
export interface FrameBatch {
  readonly hello: boolean;
  readonly frames: readonly FuzzFrame[];
}

export const batchArb = (identity: MachineIdentity): fc.Arbitrary<FrameBatch> =>
  fc.record({ hello: fc.oneof({ weight: 6, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }), frames: fc.array(frameArb(identity), { minLength: 1, maxLength: 6 }) });
