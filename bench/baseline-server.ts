/**
 * The bare minimum the coordinator is measured against: a ws server that speaks just
 * enough of the agent protocol for the simulated agents (hello -> welcome), parses every
 * frame with JSON.parse, and writes the same rows the coordinator's write batcher does
 * (a last-seen time per machine heard from, the latest report of machines whose report
 * changed) in one SQLite transaction per second. No authentication, validation, liveness,
 * conditions, commands or logging: whatever the coordinator spends beyond this is the
 * price of those.
 *
 *   node bench/baseline-server.ts --db FILE [--heartbeat-interval MS] [--processes K] [--tls-dir DIR]
 * Prints one JSON line {"listening":URL,"port":N,"stats":URL}; GET the stats URL for the counters.
 *
 * --tls-dir DIR: serve https/wss with DIR/server.crt and DIR/server.key (the bench passes
 * the coordinator's data dir's pki/, so the simulated agents pin the same CA against both), and
 * the wss rows compare like with like: the TLS records cost both sides the same.
 *
 * --processes K (default 1): K processes share the port with SO_REUSEPORT, as the
 * coordinator's gateway workers do (a process here holds at most 20,000 open files, one
 * per connection), each doing all of the above for the agents the kernel gives it, all
 * writing the one WAL database (busy_timeout: they take turns). This process then only
 * forks them and serves the stats, on a port of its own: the totals of all K, asked of
 * each over IPC at every read (so a read lands nowhere by chance). With K = 1 there is no
 * fork: this process serves the agents and /stats on the one port, as it always did.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { WebSocketServer } from 'ws';

const { values } = parseArgs({
  options: {
    db: { type: 'string' },
    'heartbeat-interval': { type: 'string', default: '10000' },
    processes: { type: 'string', default: '1' },
    'tls-dir': { type: 'string' },
    /** Internal: set by the parent on the K children, the port they share. */
    'child-port': { type: 'string' },
  },
});
if (values.db === undefined) throw new Error('--db FILE is required');
const dbFile = values.db;
const heartbeatIntervalMs = Number(values['heartbeat-interval']);
const processes = Number(values.processes);
if (!Number.isInteger(processes) || processes < 1 || processes > 64) throw new RangeError(`--processes must be 1..64, got ${values.processes}`);
const tlsDir = values['tls-dir'];
const tlsFiles = tlsDir === undefined ? null : { cert: readFileSync(path.join(tlsDir, 'server.crt')), key: readFileSync(path.join(tlsDir, 'server.key')) };
const scheme = tlsFiles === null ? 'http' : 'https';

/** What /stats answers: counters since start, and the event-loop delay since the previous read. */
interface Counters { rowsWritten: number; frames: number; connections: number; loopP99Ms: number; loopMaxMs: number }
type ToChild = { t: 'stats' };
type FromChild = { t: 'listening' } | { t: 'stats'; counters: Counters };

function openDb() {
  const db = new Database(dbFile);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL'); // as the coordinator's store
  // With K processes, K writers share the file: a flush waits for another's rather than fail.
  db.pragma('busy_timeout = 10000');
  db.exec('CREATE TABLE IF NOT EXISTS machines (name TEXT PRIMARY KEY, last_seen INTEGER, report TEXT)');
  return db;
}

/**
 * One process's share of the work: the agents' ws server on `port` (0: any), its SQLite
 * flush once a second, and a read of its counters (which resets the loop histogram). With
 * `statsPath`, GET /stats on the same port answers them (the K = 1 server).
 */
function serve(port: number, reusePort: boolean, statsPath: boolean, onListening: (port: number) => void): () => Counters {
  const db = openDb();
  const upsertSeen = db.prepare('INSERT INTO machines (name, last_seen) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET last_seen = excluded.last_seen');
  const upsertReport = db.prepare('INSERT INTO machines (name, report) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET report = excluded.report');

  const lastSeen = new Map<string, number>();
  const reports = new Map<string, Record<string, unknown>>();
  const dirtyReports = new Set<string>();
  let rowsWritten = 0;
  let frames = 0;
  const flush = db.transaction(() => {
    for (const [name, at] of lastSeen) upsertSeen.run(name, at);
    for (const name of dirtyReports) upsertReport.run(name, JSON.stringify(reports.get(name)));
    rowsWritten += lastSeen.size + dirtyReports.size;
    lastSeen.clear();
    dirtyReports.clear();
  });
  // BEGIN IMMEDIATE takes the write lock first, so a busy database is waited on (busy_timeout), never a failed upgrade.
  setInterval(() => flush.immediate(), 1000);

  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const counters = (): Counters => {
    const c = { rowsWritten, frames, connections: wss.clients.size, loopP99Ms: loop.percentile(99) / 1e6, loopMaxMs: loop.max / 1e6 };
    loop.reset();
    return c;
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    if (!statsPath || req.url !== '/stats') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(counters()));
  };
  const server = tlsFiles === null ? createServer(handler) : createHttpsServer(tlsFiles, handler);
  const wss = new WebSocketServer({ server, path: '/v1/agent/connect', maxPayload: 256 * 1024, perMessageDeflate: false });
  wss.on('connection', (ws) => {
    let name: string | null = null;
    ws.on('message', (data) => {
      frames += 1;
      const msg = JSON.parse(String(data)) as { type: string; identity?: { hostname: string }; full?: boolean; report?: Record<string, unknown> };
      if (name === null) {
        if (msg.type !== 'hello' || msg.identity === undefined) return ws.close(1002);
        name = msg.identity.hostname;
        ws.send(JSON.stringify({ type: 'welcome', protocolVersion: 1, machine: name, heartbeatIntervalMs, coordinatorVersion: 'baseline' }));
        return;
      }
      lastSeen.set(name, Date.now());
      if (msg.type === 'report' && msg.report !== undefined) {
        reports.set(name, msg.full === true ? msg.report : { ...reports.get(name), ...msg.report });
        dirtyReports.add(name);
      }
    });
  });
  server.listen({ port, host: '127.0.0.1', reusePort }, () => onListening((server.address() as AddressInfo).port));
  return counters;
}

/** The parent of K > 1: binds a free port (SO_REUSEPORT) to learn it, forks the K, serves the totals. */
async function parent(k: number): Promise<void> {
  openDb().close(); // the table and WAL mode once, before K processes race to create them
  const holder = createNetServer((s) => s.destroy());
  await new Promise<void>((resolve, reject) => {
    holder.once('error', reject);
    holder.listen({ host: '127.0.0.1', port: 0, reusePort: true }, () => resolve());
  });
  const port = (holder.address() as AddressInfo).port;
  const replies = new Map<ChildProcess, ((c: Counters) => void)[]>();
  let stopping = false;
  const children = Array.from({ length: k }, () => {
    const args = ['--db', dbFile, '--heartbeat-interval', String(heartbeatIntervalMs), '--child-port', String(port), ...(tlsDir === undefined ? [] : ['--tls-dir', tlsDir])];
    const child = fork(import.meta.filename, args, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    replies.set(child, []);
    child.once('exit', (code, signal) => {
      if (stopping) return;
      console.error(`baseline: a child process exited (${code ?? signal}); stopping`);
      stop(1);
    });
    return child;
  });
  // Every child listens before the holder closes, so the port is never free for another program to take.
  await Promise.all(children.map((c) => new Promise<void>((resolve) => {
    c.on('message', (m: FromChild) => {
      if (m.t === 'listening') resolve();
      else replies.get(c)!.shift()?.(m.counters);
    });
  })));
  holder.close();

  const ask = (c: ChildProcess) => new Promise<Counters>((resolve) => {
    replies.get(c)!.push(resolve);
    c.send({ t: 'stats' } satisfies ToChild);
  });
  const stats = createServer((req, res) => {
    if (req.url !== '/stats') {
      res.writeHead(404).end();
      return;
    }
    void Promise.all(children.map(ask)).then((all) => {
      // Counters add up; the loop delay is the worst process's (a percentile does not add).
      const total: Counters = { rowsWritten: 0, frames: 0, connections: 0, loopP99Ms: 0, loopMaxMs: 0 };
      for (const c of all) {
        total.rowsWritten += c.rowsWritten;
        total.frames += c.frames;
        total.connections += c.connections;
        total.loopP99Ms = Math.max(total.loopP99Ms, c.loopP99Ms);
        total.loopMaxMs = Math.max(total.loopMaxMs, c.loopMaxMs);
      }
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ ...total, processes: k }));
    });
  });
  function stop(code: number): void {
    stopping = true;
    const exits = children.filter((c) => c.exitCode === null && c.signalCode === null).map((c) => new Promise((r) => c.once('exit', r)));
    for (const c of children) c.kill('SIGTERM');
    void Promise.all(exits).then(() => process.exit(code));
  }
  process.once('SIGTERM', () => stop(0));
  process.once('SIGINT', () => stop(0));
  stats.listen(0, '127.0.0.1', () => {
    const statsPort = (stats.address() as AddressInfo).port;
    console.log(JSON.stringify({ listening: `${scheme}://127.0.0.1:${port}`, port, stats: `http://127.0.0.1:${statsPort}/stats`, processes: k }));
  });
}

if (values['child-port'] !== undefined) {
  const counters = serve(Number(values['child-port']), true, false, () => process.send?.({ t: 'listening' } satisfies FromChild));
  process.on('message', (m: ToChild) => {
    if (m.t === 'stats') process.send?.({ t: 'stats', counters: counters() } satisfies FromChild);
  });
  // A parent gone (even by SIGKILL) takes its children with it.
  process.on('disconnect', () => process.exit(0));
} else if (processes === 1) {
  serve(0, false, true, (port) => console.log(JSON.stringify({ listening: `${scheme}://127.0.0.1:${port}`, port, stats: `${scheme}://127.0.0.1:${port}/stats` })));
  // An exit rather than the signal's default death, so a --cpu-prof in NODE_OPTIONS writes its profile.
  process.once('SIGTERM', () => process.exit(0));
} else {
  await parent(processes);
}
