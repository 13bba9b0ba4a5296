/**
 * Benchmark (not a test): the coordinator's CPU for a TLS handshake plus one request,
 * full versus resumed (session tickets, coordinator/src/tls/ticket-keys.ts), and resumed
 * after a kill -9 and restart on the same data dir (the reconnect storm's case).
 *
 *   node bench/tls-handshake.ts [--connections N] [--concurrency N] [--no-record]
 *
 * A real coordinator (TLS, generated CA) and N `tls.connect` clients pinning its CA, C in
 * flight, each sending `GET /healthz` and reading the answer to its end. The coordinator's
 * CPU (user + system, from /proc) over each phase, divided by N. Phase 1: N full
 * handshakes, each keeping its ticket. Phase 2: N connections, each offering its ticket.
 * Phase 3: kill -9, restart, the same N tickets again. The clients run on the same cores:
 * only the coordinator's own CPU is counted.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { parseArgs } from 'node:util';
import { startCoordinator, type CoordinatorProc } from '../test/harness/processes.ts';
import { cpuMs } from './lib/servers.ts';
import { record } from './lib/results.ts';

const { values } = parseArgs({ options: { connections: { type: 'string', default: '2000' }, concurrency: { type: 'string', default: '20' }, 'no-record': { type: 'boolean', default: false } } });
const N = Number(values.connections);
const C = Number(values.concurrency);
if (!Number.isInteger(N) || N < 10) throw new RangeError(`--connections must be a whole number >= 10, got ${values.connections}`);
if (!Number.isInteger(C) || C < 1) throw new RangeError(`--concurrency must be a whole number >= 1, got ${values.concurrency}`);

const dir = await mkdtemp(path.join(tmpdir(), 'nk-bench-tls-'));
const dataDir = path.join(dir, 'coordinator');
let coord: CoordinatorProc = await startCoordinator(dataDir, ['--liveness-grace', '600000']);
const ca = await readFile(path.join(dataDir, 'ca.crt'), 'utf8');

const once = (session: Buffer | undefined): Promise<{ reused: boolean; ticket: Buffer | undefined }> => new Promise((resolve, reject) => {
  let ticket = session;
  const s = tls.connect({ host: '127.0.0.1', port: coord.port, ca, servername: 'localhost', ...(session === undefined ? {} : { session }) }, () => {
    s.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
  });
  s.on('session', (t: Buffer) => (ticket = t));
  s.on('data', () => {});
  s.on('error', reject);
  s.on('end', () => resolve({ reused: s.isSessionReused(), ticket }));
});

/** N connections, C at a time; the coordinator's CPU over them. */
async function phase(tickets: readonly (Buffer | undefined)[]): Promise<{ cpuUsPerConn: number; resumed: number; wallMs: number; tickets: (Buffer | undefined)[] }> {
  const out: (Buffer | undefined)[] = new Array(tickets.length);
  let resumed = 0;
  let next = 0;
  const pid = coord.child.pid!;
  const cpu0 = cpuMs(pid);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: C }, async () => {
    while (next < tickets.length) {
      const i = next++;
      const r = await once(tickets[i]);
      if (r.reused) resumed += 1;
      out[i] = r.ticket;
    }
  }));
  const wallMs = performance.now() - t0;
  return { cpuUsPerConn: ((cpuMs(pid) - cpu0) * 1000) / tickets.length, resumed, wallMs, tickets: out };
}

try {
  await phase(new Array(Math.min(200, N)).fill(undefined)); // warm-up: JIT, TLS contexts
  const full = await phase(new Array(N).fill(undefined));
  const resumed = await phase(full.tickets);
  await coord.stop('SIGKILL');
  coord = await startCoordinator(dataDir, ['--liveness-grace', '600000']);
  await phase(new Array(Math.min(200, N)).fill(undefined)); // the same warm-up after the restart
  const afterRestart = await phase(full.tickets);
  const us = (v: number) => v.toFixed(0);
  const result = `${N} connections, ${C} in flight, coordinator CPU per handshake + GET /healthz: full ${us(full.cpuUsPerConn)} us (${full.resumed} resumed, ${(full.wallMs / 1000).toFixed(1)} s); resumed ${us(resumed.cpuUsPerConn)} us (${resumed.resumed}/${N} resumed, ${(resumed.wallMs / 1000).toFixed(1)} s); after kill -9 and restart ${us(afterRestart.cpuUsPerConn)} us (${afterRestart.resumed}/${N} resumed); resumed/full ${(resumed.cpuUsPerConn / full.cpuUsPerConn).toFixed(2)}x; load average ${loadavg()[0]!.toFixed(1)} (the box is shared)`;
  if (values['no-record']) console.log(result);
  else record('TLS handshake CPU, full vs resumed (session tickets kept across restarts)', result);
} finally {
  await coord.stop();
  await rm(dir, { recursive: true, force: true });
}
