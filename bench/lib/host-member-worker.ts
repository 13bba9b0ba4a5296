/**
 * A worker process of bench/host-scale.ts: several simulated members, each the real
 * `HostSync` (registration with the CA discovered and pinned, Lease renewal, Cluster
 * status, the Machine mirror, the ClusterPackageVersion pull) against the host, fed by a
 * synthetic fleet (host-fleet.ts). Driven over IPC by the parent:
 *   {type:'init', ...}            builds the fleets (nothing is sent to the host)
 *   {type:'register', clusters}   registers those members, each from cold; answers with
 *                                 the time each took to register and mirror everything
 *   {type:'stats'}                writes, errors and churn so far, per member
 *   {type:'stop'}                 stops every HostSync and exits
 * Churn runs once a second over every fleet.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '@nodekeeper/common';
import { HostSync, DEFAULT_HOST_SYNC } from '../../coordinator/src/host/host-sync.ts';
import type { HostMirrorMode } from '../../coordinator/src/host/mirror-selection.ts';
import { MemberFleet, type FleetChurn } from './host-fleet.ts';

export interface MemberSpec {
  readonly cluster: string;
  readonly token: string;
}

export type WorkerRequest =
  | { type: 'init'; members: MemberSpec[]; machines: number; churn: FleetChurn; syncIntervalMs: number; server: string; caHash: string; mirror: HostMirrorMode; lingerMs: number; seed: number }
  | { type: 'register'; clusters: string[] }
  | { type: 'stats' }
  | { type: 'stop' };

export interface MemberStats {
  readonly cluster: string;
  readonly machineWrites: number;
  readonly statusWrites: number;
  readonly mirrored: number;
  readonly changes: number;
  readonly lastError: string | null;
}

export type WorkerReply =
  | { type: 'ready' }
  | { type: 'registered'; results: Array<{ cluster: string; ms: number; machineWrites: number; error: string | null }> }
  | { type: 'stats'; members: MemberStats[]; rssBytes: number; cpuMs: number }
  | { type: 'stopped' };

interface Member {
  readonly spec: MemberSpec;
  readonly fleet: MemberFleet;
  readonly sync: HostSync;
}

const members = new Map<string, Member>();
let init: Extract<WorkerRequest, { type: 'init' }> | null = null;
let churnTimer: NodeJS.Timeout | null = null;
const send = (msg: WorkerReply) => process.send!(msg);

process.on('message', (msg: WorkerRequest) => {
  void handle(msg).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
});

async function handle(msg: WorkerRequest): Promise<void> {
  if (msg.type === 'init') {
    init = msg;
    const log = createLogger({ name: 'host-bench', level: 'silent' });
    const dir = mkdtempSync(path.join(tmpdir(), 'nk-host-member-'));
    const now = Date.now();
    for (const [i, spec] of msg.members.entries()) {
      const fleet = new MemberFleet(spec.cluster, msg.machines, msg.churn, msg.seed + i, now);
      const sync = new HostSync({
        registrationFile: path.join(dir, `${spec.cluster}.json`), log, wallClock: () => Date.now(),
        statusInput: () => fleet.statusInput(), machines: () => fleet.machines(Date.now()),
        controlPlaneVersion: () => 'v1.36.3', localPackages: () => [], applyPackages: () => 1, recordEvent: () => {},
      }, { ...DEFAULT_HOST_SYNC, syncIntervalMs: msg.syncIntervalMs, mirror: msg.mirror, mirrorLingerMs: msg.lingerMs });
      members.set(spec.cluster, { spec, fleet, sync });
    }
    churnTimer = setInterval(() => {
      const t = Date.now();
      for (const m of members.values()) m.fleet.churn(t);
    }, 1000);
    send({ type: 'ready' });
  } else if (msg.type === 'register') {
    const o = init!;
    const results = await Promise.all(msg.clusters.map(async (cluster) => {
      const m = members.get(cluster)!;
      const started = performance.now();
      try {
        const state = await m.sync.register({ cluster, server: o.server, caPem: null, caHash: o.caHash, bootstrapToken: m.spec.token, tokenTtlSeconds: 86_400, now: Date.now() });
        return { cluster, ms: performance.now() - started, machineWrites: state.machineWrites, error: state.lastError === null ? null : `${state.lastError.code}: ${state.lastError.message}` };
      } catch (err) {
        return { cluster, ms: performance.now() - started, machineWrites: 0, error: (err as Error).message };
      }
    }));
    send({ type: 'registered', results });
  } else if (msg.type === 'stats') {
    const out: MemberStats[] = [];
    for (const m of members.values()) {
      const s = m.sync.state();
      out.push({ cluster: m.spec.cluster, machineWrites: s.machineWrites, statusWrites: s.statusWrites, mirrored: s.machinesMirrored, changes: m.fleet.changes, lastError: s.lastError === null ? null : `${s.lastError.code}: ${s.lastError.message}` });
    }
    const usage = process.cpuUsage();
    send({ type: 'stats', members: out, rssBytes: process.memoryUsage.rss(), cpuMs: (usage.user + usage.system) / 1000 });
  } else {
    if (churnTimer !== null) clearInterval(churnTimer);
    await Promise.all([...members.values()].map((m) => m.sync.stop()));
    send({ type: 'stopped' });
    process.disconnect();
  }
}
