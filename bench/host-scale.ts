/**
 * The host cluster at scale: the reference etcd and kube-apiserver (test/harness/kube.ts),
 * the host CRDs and base objects installed as `nkctl host install` does, then M simulated
 * members of N machines each, every member the real HostSync (registration, Lease,
 * Cluster status, Machine mirror, ClusterPackageVersion pull) over a synthetic fleet
 * built as the coordinator builds it (bench/lib/host-fleet.ts), several members per
 * worker process (bench/lib/host-member-worker.ts).
 *
 * Measures: one member's cold mirror alone, then all the others from cold together;
 * the host apiserver's writes per second in steady state by resource (its own
 * apiserver_request_total, before and after the window) beside the status changes the
 * fleets made; apiserver and etcd CPU over the window and their RSS; etcd's db size per
 * Machine (compacted and defragmented, against the same before any member); the cost of
 * listing every Machine of every member as `kubectl get machines -A` pages it (500 a page).
 *
 *   node bench/host-scale.ts [--members M] [--machines N] [--window S] [--sync-interval MS]
 *     [--faults-per-minute 0.01] [--fault-seconds 90] [--pressure-share 0.01]
 *     [--members-per-worker 5] [--mirror unhealthy|all] [--linger S] [--settle S] [--no-record]
 *
 * The full size: --members 20 --machines 5000 --window 120. With --mirror unhealthy it
 * settles for the fault time plus the linger (about 7 minutes) before its window; with
 * --mirror all the cold mirror of 100,000 Machines dominates (about 11 ms of apiserver
 * CPU each, so 20 minutes or more on two cores), and the apiserver's RSS grows by tens of
 * KB per Machine (several GB at 100,000; see bench/README.md): check the memory first.
 * Members run 5 to a worker process (about 1 GB of RSS per 25,000 machines, a few dozen
 * sockets each); the apiserver and etcd are single processes on loopback.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createMemberToken, installHost } from '../coordinator/src/host/host-admin.ts';
import { readKubeconfig } from '../coordinator/src/host/kube-client.ts';
import { DEFAULT_MIRROR_LINGER_MS, HOST_MIRROR_MODES, type HostMirrorMode } from '../coordinator/src/host/mirror-selection.ts';
import { startControlPlane } from '../test/harness/kube.ts';
import { cpuMs, rssBytes } from './lib/servers.ts';
import { record } from './lib/results.ts';
import type { MemberSpec, MemberStats, WorkerReply, WorkerRequest } from './lib/host-member-worker.ts';

const { values } = parseArgs({
  options: {
    members: { type: 'string', default: '4' }, machines: { type: 'string', default: '500' }, window: { type: 'string', default: '60' },
    'sync-interval': { type: 'string', default: '10000' }, 'faults-per-minute': { type: 'string', default: '0.01' }, 'fault-seconds': { type: 'string', default: '90' },
    'pressure-share': { type: 'string', default: '0.01' }, 'members-per-worker': { type: 'string', default: '5' }, mirror: { type: 'string', default: 'unhealthy' },
    linger: { type: 'string', default: String(DEFAULT_MIRROR_LINGER_MS / 1000) }, settle: { type: 'string' },
    'no-record': { type: 'boolean', default: false },
  },
});
const M = Number(values.members);
const N = Number(values.machines);
const WINDOW_S = Number(values.window);
const SYNC_MS = Number(values['sync-interval']);
const PER_WORKER = Number(values['members-per-worker']);
const churn = { faultsPerMinute: Number(values['faults-per-minute']), faultSeconds: Number(values['fault-seconds']), pressureShare: Number(values['pressure-share']), probeIntervalMs: 10_000 };
for (const [k, v] of Object.entries({ M, N, WINDOW_S, SYNC_MS, PER_WORKER })) if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${k} must be a positive number`);
if (!HOST_MIRROR_MODES.includes(values.mirror as HostMirrorMode)) throw new RangeError(`--mirror must be one of ${HOST_MIRROR_MODES.join(', ')}`);
const MIRROR = values.mirror as HostMirrorMode;
const LINGER_S = Number(values.linger);
// Steady means every population settled: with the unhealthy mirror, a fault's Machine
// lives for the fault plus the linger, so the window starts once the first ones are gone.
const SETTLE_S = values.settle !== undefined ? Number(values.settle) : 2 * SYNC_MS / 1000 + (MIRROR === 'unhealthy' ? churn.faultSeconds + LINGER_S : 0);
if (!Number.isFinite(LINGER_S) || LINGER_S < 0 || !Number.isFinite(SETTLE_S) || SETTLE_S < 0) throw new RangeError('--linger and --settle are seconds');

class Worker {
  readonly child: ChildProcess;
  #waiting: Array<(r: WorkerReply) => void> = [];
  constructor() {
    this.child = fork(path.join(import.meta.dirname, 'lib/host-member-worker.ts'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (r: WorkerReply) => this.#waiting.shift()?.(r));
    this.child.on('exit', (code) => {
      if (code !== 0 && code !== null) console.error(`worker ${this.child.pid} exited ${code}`);
    });
  }
  ask<T extends WorkerReply['type']>(req: WorkerRequest): Promise<Extract<WorkerReply, { type: T }>> {
    return new Promise((resolve) => {
      this.#waiting.push((r) => resolve(r as Extract<WorkerReply, { type: T }>));
      this.child.send(req);
    });
  }
}

/** GET over TLS as the admin; resolves with the status, the body size and the body (unless `discard`). */
function get(url: string, ca: string, token: string, discard = false): Promise<{ status: number; bytes: number; body: string }> {
  return new Promise((resolve, reject) => {
    https.get(url, { ca, headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (!discard) chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, body: Buffer.concat(chunks).toString('utf8') }));
    }).on('error', reject);
  });
}

/** POST to etcd's JSON gateway (v3). */
async function etcdCall(url: string, method: string, body: unknown): Promise<Record<string, unknown>> {
  const r = await fetch(`${url}/v3/${method}`, { method: 'POST', body: JSON.stringify(body) });
  if (!r.ok) throw new Error(`etcd ${method}: HTTP ${r.status} ${await r.text()}`);
  return await r.json() as Record<string, unknown>;
}

/** etcd's db file size after a compaction at the current revision and a defragmentation. */
async function compactedDbSize(url: string): Promise<number> {
  const status = await etcdCall(url, 'maintenance/status', {});
  const revision = (status['header'] as { revision: string }).revision;
  await etcdCall(url, 'kv/compaction', { revision, physical: true }).catch((err: unknown) => {
    // "required revision has been compacted": the apiserver compacted there already.
    if (!/compacted/.test(String(err))) throw err;
  });
  await etcdCall(url, 'maintenance/defragment', {});
  return Number((await etcdCall(url, 'maintenance/status', {}))['dbSize']);
}

/** apiserver_request_total summed by "VERB resource[/subresource]". */
function requestCounts(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    const key = `${labels['verb']} ${labels['resource']}${labels['subresource'] ? `/${labels['subresource']}` : ''}`;
    out.set(key, (out.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

const WRITE_VERBS = new Set(['POST', 'PUT', 'PATCH', 'DELETE', 'APPLY', 'CREATE', 'UPDATE', 'DELETECOLLECTION']);

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'nk-host-scale-'));
  const cp = await startControlPlane(dir);
  const workers: Worker[] = [];
  try {
    const { api, etcd } = cp;
    const { kc } = readKubeconfig(api.adminKubeconfig);
    const { caHash, server } = await installHost(kc, () => {});
    const specs: MemberSpec[] = [];
    for (let i = 0; i < M; i++) {
      const cluster = `member-${String(i).padStart(3, '0')}`;
      const t = await createMemberToken(kc, { cluster, ttlMs: 3_600_000, description: 'host-scale bench', now: Date.now() });
      specs.push({ cluster, token: t.token });
    }
    const dbBefore = await compactedDbSize(etcd.url);
    const byWorker: MemberSpec[][] = [];
    for (let i = 0; i < specs.length; i += PER_WORKER) byWorker.push(specs.slice(i, i + PER_WORKER));
    for (const [w, group] of byWorker.entries()) {
      const worker = new Worker();
      workers.push(worker);
      await worker.ask<'ready'>({ type: 'init', members: group, machines: N, churn, syncIntervalMs: SYNC_MS, server, caHash, mirror: MIRROR, lingerMs: LINGER_S * 1000, seed: 1000 * (w + 1) });
    }
    const pids = { api: api.child.pid!, etcd: etcd.child.pid! };

    // 1. One member alone, from cold: register, list, write every Machine.
    const first = await workers[0]!.ask<'registered'>({ type: 'register', clusters: [specs[0]!.cluster] });
    const cold = first.results[0]!;
    if (cold.error !== null) throw new Error(`member ${cold.cluster}: ${cold.error}`);
    console.log(`cold mirror of one member (${N} machines): ${(cold.ms / 1000).toFixed(1)} s, ${cold.machineWrites} Machine writes`);

    // 2. All the others together, from cold (as after a host restored empty).
    const restStarted = performance.now();
    const apiCpu0 = cpuMs(pids.api);
    const rest = (await Promise.all(byWorker.map((group, w) => workers[w]!.ask<'registered'>({ type: 'register', clusters: group.map((s) => s.cluster).filter((c) => c !== cold.cluster) })))).flatMap((r) => r.results);
    const restMs = performance.now() - restStarted;
    const restApiCpuMs = cpuMs(pids.api) - apiCpu0;
    const failed = rest.filter((r) => r.error !== null);
    if (failed.length > 0) console.log(`members with an error on their first sync: ${failed.map((r) => `${r.cluster}: ${r.error}`).join('; ')}`);
    console.log(`cold mirror of the other ${rest.length} members together: ${(restMs / 1000).toFixed(1)} s (slowest member ${(Math.max(0, ...rest.map((r) => r.ms)) / 1000).toFixed(1)} s), apiserver CPU ${(restApiCpuMs / 1000).toFixed(1)} s`);

    // 3. Settle (every member synced at least twice; the unhealthy mirror's population in balance), then the steady window.
    await new Promise((r) => setTimeout(r, SETTLE_S * 1000));
    const stats = async () => (await Promise.all(workers.map((w) => w.ask<'stats'>({ type: 'stats' }))));
    const metrics = async () => requestCounts((await get(`${api.url}/metrics`, api.caPem, api.admin.token)).body);
    const [m0, s0] = [await metrics(), await stats()];
    const cpu0 = { api: cpuMs(pids.api), etcd: cpuMs(pids.etcd), wall: performance.now() };
    await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
    const [m1, s1] = [await metrics(), await stats()];
    const wallS = (performance.now() - cpu0.wall) / 1000;
    const apiCore = (cpuMs(pids.api) - cpu0.api) / 1000 / wallS;
    const etcdCore = (cpuMs(pids.etcd) - cpu0.etcd) / 1000 / wallS;
    const writes = new Map<string, number>();
    for (const [k, v] of m1) {
      const d = v - (m0.get(k) ?? 0);
      if (d > 0 && WRITE_VERBS.has(k.split(' ')[0]!)) writes.set(k, d / wallS);
    }
    const sum = (f: (r: string) => boolean) => [...writes].filter(([k]) => f(k.split(' ')[1]!)).reduce((a, [, v]) => a + v, 0);
    // Members create and patch their Lease; the apiserver PUTs its own identity Leases (counted as other).
    const leases = [...writes].filter(([k]) => /^(PATCH|POST) leases$/.test(k)).reduce((a, [, v]) => a + v, 0);
    const machines = sum((r) => r.startsWith('machines'));
    const clusters = sum((r) => r.startsWith('clusters'));
    const other = sum(() => true) - leases - machines - clusters;
    const machineVerbs = [...writes].filter(([k]) => k.split(' ')[1]!.startsWith('machines')).map(([k, v]) => `${k.replace(' machines', '')} ${v.toFixed(2)}`).join(', ');
    const memberStats = (s: Awaited<ReturnType<typeof stats>>) => s.flatMap((x) => x.members);
    const delta = (f: (m: MemberStats) => number) => memberStats(s1).reduce((a, m) => a + f(m), 0) - memberStats(s0).reduce((a, m) => a + f(m), 0);
    const changes = delta((m) => m.changes) / wallS;
    const mirrorWrites = delta((m) => m.machineWrites) / wallS;
    const errors = memberStats(s1).filter((m) => m.lastError !== null);
    const workerRss = s1.reduce((a, w) => a + w.rssBytes, 0);
    console.log('writes/s by resource:', Object.fromEntries([...writes].map(([k, v]) => [k, Number(v.toFixed(2))])));

    // 4. Listing every Machine, as kubectl get machines -A pages it.
    const listStarted = performance.now();
    const listCpu0 = cpuMs(pids.api);
    let listed = 0;
    let listBytes = 0;
    let oneBytes = 0;
    for (let cont = ''; ;) {
      const page = await get(`${api.url}/apis/nodekeeper.io/v1alpha1/machines?limit=500${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`, api.caPem, api.admin.token);
      const body = JSON.parse(page.body) as { items: unknown[]; metadata: { continue?: string } };
      if (listed === 0 && body.items.length > 0) oneBytes = Buffer.byteLength(JSON.stringify(body.items[0]));
      listed += body.items.length;
      listBytes += page.bytes;
      cont = body.metadata.continue ?? '';
      if (cont === '') break;
    }
    const listMs = performance.now() - listStarted;
    const listCpuMs = cpuMs(pids.api) - listCpu0;
    const apiRss = rssBytes(pids.api);
    const etcdRss = rssBytes(pids.etcd);

    // 5. Storage, compacted and defragmented.
    const dbAfter = await compactedDbSize(etcd.url);
    const total = M * N;
    const perMachine = (dbAfter - dbBefore) / Math.max(1, listed);
    const perMemberMachine = (dbAfter - dbBefore) / total;
    const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MB`;
    const load = loadavg()[0]!.toFixed(1);
    const size = `${M} members x ${N} machines, --host-mirror ${MIRROR}${MIRROR === 'unhealthy' && LINGER_S * 1000 !== DEFAULT_MIRROR_LINGER_MS ? ` (linger ${LINGER_S} s)` : ''}`;
    const rows: Array<[string, string]> = [
      ['host-scale cold mirror', `${size}: one member alone ${(cold.ms / 1000).toFixed(1)} s (${cold.machineWrites} Machine writes); the other ${rest.length} together ${(restMs / 1000).toFixed(1)} s, apiserver CPU ${(restApiCpuMs / 1000).toFixed(1)} s; ${failed.length} first-sync errors; load average ${load} (the box is shared)`],
      ['host-scale steady writes', `${size}, sync ${SYNC_MS / 1000} s, churn ${churn.faultsPerMinute * 100} %/min faults of ${churn.faultSeconds} s, ${churn.pressureShare * 100} % under memory pressure, ${wallS.toFixed(0)} s window after ${SETTLE_S} s: host writes/s Leases ${leases.toFixed(2)}, Machines ${machines.toFixed(2)} (${machineVerbs || 'none'}), Clusters ${clusters.toFixed(2)}, other ${other.toFixed(2)}; fleet status changes ${changes.toFixed(2)}/s, mirror writes ${mirrorWrites.toFixed(2)}/s; apiserver ${(apiCore * 100).toFixed(1)} % of a core, etcd ${(etcdCore * 100).toFixed(1)} %; ${errors.length} members in error; load average ${load}`],
      ['host-scale storage and list', `${size}: ${listed} Machine objects; etcd db ${mb(dbAfter)} compacted (${mb(dbBefore)} before any member), ${(perMachine / 1024).toFixed(2)} KB per Machine object, ${(perMemberMachine / 1024).toFixed(2)} KB per member machine; one Machine ${(oneBytes / 1024).toFixed(1)} KB as JSON; list all ${listed} in pages of 500: ${(listMs / 1000).toFixed(2)} s, ${mb(listBytes)}, apiserver CPU ${(listCpuMs / 1000).toFixed(2)} s; RSS apiserver ${mb(apiRss)}, etcd ${mb(etcdRss)}, member workers ${mb(workerRss)}; load average ${load}`],
    ];
    if (errors.length > 0) console.log(`members in error: ${errors.map((e) => `${e.cluster}: ${e.lastError}`).join('; ')}`);
    for (const [name, result] of rows) {
      if (values['no-record']) console.log(`${name}: ${result}`);
      else record(name, result);
    }
  } finally {
    await Promise.all(workers.map(async (w) => {
      if (w.child.exitCode !== null) return;
      await w.ask<'stopped'>({ type: 'stop' }).catch(() => {});
    }));
    await cp.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
