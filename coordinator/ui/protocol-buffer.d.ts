/**
 * For the page's type check only (coordinator/ui/tsconfig.json; esbuild never reads it).
 * The page takes its API types from @nodekeeper/api, whose schemas import
 * @nodekeeper/protocol, and two of that package's modules (codec.ts, identity.ts: the
 * agent wire codec, never bundled into the page) name Node's global Buffer. This program
 * has no @types/node, so that browser code cannot use Node's globals unnoticed; it gets
 * just the part of Buffer those two modules use. test/ui-model.test.ts checks that the
 * page's own sources never name Buffer.
 */
declare class Buffer extends Uint8Array {
  static byteLength(s: string): number;
  static from(s: string, encoding: 'utf8'): Buffer;
  toString(encoding?: 'utf8'): string;
}
