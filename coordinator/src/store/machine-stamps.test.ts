/**
 * changedSince('machine') answers from a connection-local stamp log (object-meta.ts)
 * instead of scanning every machine row: over random writes (reports and liveness
 * through the batcher, last-seen flushes that stamp nothing, pins, revocations,
 * resets, a transaction rolled back), it names exactly the machines the full scan of
 * the table names, asked as the watch hub asks (a version that never goes back, the
 * same one again after a failed tick, the first time too: the log starts seeded from one
 * scan of the table).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { createLogger } from '@nodekeeper/common';
import { FleetView } from '../fleet/fleet-view.ts';
import { enrolledStore, sampleReport, tempDir } from './test-support.ts';
import { WriteBatcher } from './write-batcher.ts';

const log = createLogger({ name: 'test', level: 'silent' });
const NODES = Array.from({ length: 8 }, (_, i) => `node-${i}`);
const tmp = tempDir('nk-machine-stamps-');
after(() => tmp.remove());

type Op =
  | { op: 'report' | 'touch' | 'pin' | 'revoke' | 'reset' | 'rolledBack'; node: number }
  | { op: 'flush' | 'check' | 'retry' };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constantFrom('report' as const, 'touch' as const, 'pin' as const, 'revoke' as const, 'reset' as const, 'rolledBack' as const), node: fc.nat(NODES.length - 1) }),
  fc.record({ op: fc.constantFrom('flush' as const, 'check' as const, 'retry' as const) }),
);

let runs = 0;

test('the machines changed since a version, from the stamp log, are those the full table scan finds', () => {
  fc.assert(
    fc.property(fc.array(op, { minLength: 1, maxLength: 30 }), (ops) => {
      const now = { t: 1_000_000 };
      const file = tmp.file(`stamps-${runs++}.db`);
      const store = enrolledStore(file, NODES, { now: () => now.t, log });
      const batcher = new WriteBatcher(store, { intervalMs: 3_600_000, log });
      const reader = new Database(file, { readonly: true });
      try {
        const fleet = new FleetView({ store, batcher, clock: () => now.t, log }, { livenessGraceMs: 40_000, livenessRecoverMs: 0 });
        for (const n of NODES) fleet.attach(n, { resync() {}, close() {}, sendCommand: () => true }, 't');
        const scan = (rv: number) => (reader.prepare('SELECT name FROM machines WHERE resource_version > ? ORDER BY name').all(rv) as Array<{ name: string }>).map((r) => r.name);
        let seen = Number(store.currentResourceVersion());
        let last: string[] = [];
        const check = () => {
          last = [...store.changedSince('machine', seen)].sort();
          assert.deepEqual(last, scan(seen));
        };
        for (const o of ops) {
          now.t += 1000;
          const name = 'node' in o ? NODES[o.node] ?? 'node-0' : '';
          switch (o.op) {
            case 'report': {
              const r = sampleReport(name);
              r.kubelet.message = `at ${now.t}`;
              fleet.report(name, true, r);
              break;
            }
            case 'touch':
              fleet.touch(name);
              break;
            case 'pin':
              if (store.getMachine(name)?.revokedAt === null) store.setPackageOverrides(name, { kubelet: { version: `1.31.${now.t % 7}` } });
              break;
            case 'revoke':
              if (store.getMachine(name)?.revokedAt === null) store.revokeMachine(name);
              break;
            case 'reset':
              if (store.getMachine(name)?.revokedAt === null) store.resetMachine(name, 'test');
              break;
            case 'rolledBack':
              assert.throws(() => store.transaction(() => {
                store.revokeMachine(name);
                throw new Error('rolled back');
              }));
              break;
            case 'flush':
              batcher.flush();
              break;
            case 'retry':
              // A hub tick that failed after asking: it asks again from the same version.
              check();
              break;
            case 'check':
              check();
              seen = Number(store.currentResourceVersion());
              break;
          }
        }
        batcher.flush();
        check();
      } finally {
        reader.close();
        batcher.close();
        store.close();
      }
    }),
    { numRuns: 40 },
  );
});
