/**
 * The fleet simulator, as the benchmarks drive it: enrolls N machines with the agent's
 * own enrollment code (one bootstrap token, real /v1/enroll), then runs them as
 * simulated agents in worker processes of at most PER_WORKER agents each (a process
 * here may hold about 20,000 open files), their connections spread over several
 * loopback source addresses (127.0.0.x: each has about 28,000 ephemeral ports).
 *
 *   const specs = await enrollFleet(server, token, 5000);
 *   const fleet = await SimFleet.start({ server, specs, profile });
 *   await fleet.waitConnected(5000); ... await fleet.stop();
 */
import { generateKeyPairSync } from 'node:crypto';
import { rawPublicKey } from '@nodekeeper/common';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { enroll } from '../../agent/src/enrollment.ts';
import { initialReport, type Role, type SimAgentSpec, type SimProfile } from './sim-agent.ts';
import type { CommandSeen, FromWorker, ToWorker } from './worker.ts';

/** Agents per simulator process: the ~20,000 open-file limit, with room to spare. */
export const PER_WORKER = 9500;
/** Source addresses the agents dial from. */
export const LOCAL_ADDRESSES = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 10}`);
const ZONES = ['zone-a', 'zone-b', 'zone-c'];

export const simName = (i: number) => `sim-${String(i).padStart(5, '0')}`;

/**
 * Enrolls machines sim-00000.. with the bootstrap token, `concurrency` at a time;
 * `onProgress` hears the count done every `progressMs` (10 s), however slow the server.
 */
export async function enrollFleet(server: string, token: string, count: number, opts: { concurrency?: number; kubeletVersion?: string; onProgress?: (done: number) => void; progressMs?: number; caPem?: string | null } = {}): Promise<SimAgentSpec[]> {
  const specs: SimAgentSpec[] = new Array(count);
  let next = 0;
  let done = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const partial = { name: simName(i), machineId: i.toString(16).padStart(32, '0'), credential: '', zone: ZONES[i % ZONES.length]!, kubeletVersion: opts.kubeletVersion ?? '1.35.2' };
      const { credential } = await enroll(server, opts.caPem ?? null, token, initialReport(partial, new Date()).identity, 'sim-0.1.0', rawPublicKey(generateKeyPairSync('ed25519').publicKey));
      specs[i] = { ...partial, credential };
      done += 1;
    }
  };
  const progress = opts.onProgress === undefined ? null : setInterval(() => opts.onProgress!(done), opts.progressMs ?? 10_000);
  try {
    await Promise.all(Array.from({ length: opts.concurrency ?? 32 }, worker));
  } finally {
    if (progress !== null) clearInterval(progress);
  }
  return specs;
}

/** Assigns roles by the profile's shares, spread evenly over the fleet. */
export function assignRoles(count: number, profile: SimProfile): Role[] {
  const roles: Role[] = new Array(count).fill('healthy');
  const take = (role: Role, share: number, offset: number) => {
    const n = Math.round(count * share);
    for (let k = 0; k < n; k += 1) roles[Math.floor((k * count) / n + offset) % count] = role;
  };
  take('unhealthy', profile.unhealthyShare, 0);
  take('flapping', profile.flappingShare, 1);
  take('silent', profile.silentShare, 2);
  return roles;
}

export interface FleetStats {
  readonly connected: number;
  readonly frames: number;
  readonly rssBytes: number;
  /** Welcomed wss connections since start, by TLS handshake: full, or a resumed session. */
  readonly handshakesFull: number;
  readonly handshakesResumed: number;
}

export class SimFleet {
  private readonly workers: ChildProcess[];
  private readonly replies = new Map<ChildProcess, ((m: FromWorker) => void)[]>();
  private readonly markWaiters = new Map<string, (m: { sentAt: number; ok: boolean }) => void>();
  private readonly workerOf = new Map<string, ChildProcess>();
  /** Every command an agent received, in arrival order. */
  readonly commands: CommandSeen[] = [];

  private constructor(workers: ChildProcess[]) {
    this.workers = workers;
    for (const w of workers) {
      this.replies.set(w, []);
      w.on('message', (m: FromWorker) => {
        if (m.type === 'commands') this.commands.push(...m.seen);
        else if (m.type === 'marked') this.markWaiters.get(m.token)?.(m);
        else this.replies.get(w)!.shift()?.(m);
      });
    }
  }

  /**
   * Starts the agents in worker processes, `startPerS` a second in all (default 1,000, the
   * coordinator's default admission rate; a fleet's first dials are not one instant's):
   * resolves once every process has its agents, before they are all dialling (waitConnected).
   */
  static async start(opts: { server: string; specs: readonly SimAgentSpec[]; profile: SimProfile; seed?: number; caPem?: string | null; startPerS?: number }): Promise<SimFleet> {
    const roles = assignRoles(opts.specs.length, opts.profile);
    const count = Math.max(1, Math.ceil(opts.specs.length / PER_WORKER));
    const workers = Array.from({ length: count }, () => fork(fileURLToPath(new URL('./worker.ts', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' }));
    const fleet = new SimFleet(workers);
    await Promise.all(workers.map((w, k) => {
      const from = Math.floor((k * opts.specs.length) / count);
      const to = Math.floor(((k + 1) * opts.specs.length) / count);
      const agents = opts.specs.slice(from, to);
      for (const a of agents) fleet.workerOf.set(a.name, w);
      // Each worker dials from its own share of the addresses.
      const addresses = LOCAL_ADDRESSES.filter((_, i) => i % count === k % count);
      return fleet.ask(w, { type: 'start', server: opts.server, caPem: opts.caPem ?? null, localAddresses: addresses, profile: opts.profile, agents, roles: roles.slice(from, to), seed: (opts.seed ?? 1) + k, startPerS: (opts.startPerS ?? 1000) / count });
    }));
    return fleet;
  }

  /** The simulator processes, for their CPU. */
  get pids(): number[] {
    return this.workers.map((w) => w.pid!);
  }

  private ask(w: ChildProcess, m: ToWorker): Promise<FromWorker> {
    return new Promise((resolve) => {
      this.replies.get(w)!.push(resolve);
      w.send(m);
    });
  }

  async stats(): Promise<FleetStats> {
    const all = await Promise.all(this.workers.map((w) => this.ask(w, { type: 'stats' })));
    let connected = 0;
    let frames = 0;
    let rssBytes = 0;
    let handshakesFull = 0;
    let handshakesResumed = 0;
    for (const s of all) {
      if (s.type !== 'stats') continue;
      connected += s.connected;
      frames += s.frames;
      rssBytes += s.rssBytes;
      handshakesFull += s.handshakesFull;
      handshakesResumed += s.handshakesResumed;
    }
    return { connected, frames, rssBytes, handshakesFull, handshakesResumed };
  }

  /** Waits until `count` agents are connected and welcomed; returns the time it took. */
  async waitConnected(count: number, timeoutMs = 300_000, onProgress?: (connected: number) => void): Promise<number> {
    const started = Date.now();
    let lastShown = -1;
    for (;;) {
      const { connected } = await this.stats();
      if (connected >= count) return Date.now() - started;
      if (Date.now() - started > timeoutMs) throw new Error(`only ${connected} of ${count} simulated agents connected after ${timeoutMs} ms`);
      if (onProgress !== undefined && Math.floor(connected / 1000) !== lastShown) {
        lastShown = Math.floor(connected / 1000);
        onProgress(connected);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Makes one agent report a change carrying `token`; resolves with when it was sent. */
  mark(name: string, token: string): Promise<{ sentAt: number; ok: boolean }> {
    const w = this.workerOf.get(name);
    if (w === undefined) throw new Error(`no simulated agent ${name}`);
    return new Promise((resolve) => {
      this.markWaiters.set(token, (m) => {
        this.markWaiters.delete(token);
        resolve(m);
      });
      w.send({ type: 'mark', name, token } satisfies ToWorker);
    });
  }

  async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => new Promise<void>((resolve) => {
      if (w.exitCode !== null) return resolve();
      w.once('exit', () => resolve());
      w.send({ type: 'stop' } satisfies ToWorker);
      setTimeout(() => w.kill('SIGKILL'), 10_000).unref();
    })));
  }
}
