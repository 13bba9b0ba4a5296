/**
 * Bench-only preload (never in the product): `node --expose-gc --import
 * bench/lib/heap-probe.ts`. On SIGUSR2 it runs two full GCs and writes the heap's size
 * (v8.getHeapStatistics, process.memoryUsage) as JSON to the file named by
 * BENCH_HEAP_FILE, and, when BENCH_HEAP_SNAPSHOT names a path, a heap snapshot there.
 * bench/fleet.ts starts the coordinator with it (heapProbeEnv) to read the JS heap per
 * agent without a product endpoint.
 */
import { renameSync, writeFileSync } from 'node:fs';
import v8 from 'node:v8';

const file = process.env['BENCH_HEAP_FILE'];
const snapshot = process.env['BENCH_HEAP_SNAPSHOT'];
const gc = (globalThis as { gc?: () => void }).gc;

if (file !== undefined && file !== '') {
  process.on('SIGUSR2', () => {
    gc?.();
    gc?.();
    const h = v8.getHeapStatistics();
    const m = process.memoryUsage();
    const out = { at: Date.now(), gc: gc !== undefined, usedHeap: h.used_heap_size, totalHeap: h.total_heap_size, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss };
    if (snapshot !== undefined && snapshot !== '') v8.writeHeapSnapshot(snapshot);
    writeFileSync(`${file}.tmp`, JSON.stringify(out));
    renameSync(`${file}.tmp`, file);
  });
}
