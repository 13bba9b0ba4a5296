/**
 * The bare minimum the coordinator is measured against: a ws server that speaks just
 * enough of the agent protocol for the simulated agents (hello -> welcome), parses every
 * frame with JSON.parse, and writes the same rows the coordinator's write batcher does
 * (a last-seen time per machine heard from, the latest report of machines whose report
 * changed) in one SQLite transaction per second. No authentication, validation, liveness,
 * conditions, commands or logging: whatever the coordinator spends beyond this is the
 * price of those.
 *
 *   node bench/baseline-server.ts --db FILE [--heartbeat-interval MS]
 * Prints one JSON line {"listening":URL,"port":N}; GET /stats answers the counters.
 */
import { createServer } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { WebSocketServer } from 'ws';

const { values } = parseArgs({ options: { db: { type: 'string' }, 'heartbeat-interval': { type: 'string', default: '10000' } } });
if (values.db === undefined) throw new Error('--db FILE is required');
const heartbeatIntervalMs = Number(values['heartbeat-interval']);

const db = new Database(values.db);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL'); // as the coordinator's store
db.exec('CREATE TABLE IF NOT EXISTS machines (name TEXT PRIMARY KEY, last_seen INTEGER, report TEXT)');
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
setInterval(() => flush(), 1000);

const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
const server = createServer((req, res) => {
  if (req.url !== '/stats') {
    res.writeHead(404).end();
    return;
  }
  const stats = { rowsWritten, frames, connections: wss.clients.size, loopP99Ms: loop.percentile(99) / 1e6, loopMaxMs: loop.max / 1e6 };
  loop.reset();
  res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(stats));
});
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
server.listen(0, '127.0.0.1', () => {
  const port = (server.address() as { port: number }).port;
  console.log(JSON.stringify({ listening: `http://127.0.0.1:${port}`, port }));
});
