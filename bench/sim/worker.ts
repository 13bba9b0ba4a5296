/**
 * A fleet-simulator process: hosts a share of the simulated agents (at most about 9,500,
 * as a process here may hold about 20,000 open files) and talks to the benchmark over
 * the IPC channel. Started by SimFleet (fleet.ts), never by hand.
 */
import { createSecureContext } from 'node:tls';
import { createLogger } from '@nodekeeper/common';
import type { Command } from '@nodekeeper/protocol';
import { SimAgent, type Role, type SimAgentSpec, type SimProfile } from './sim-agent.ts';
import { prng } from '../../coordinator/src/testing/prng.ts';

export type ToWorker =
  | { type: 'start'; server: string; caPem: string | null; localAddresses: string[]; profile: SimProfile; agents: SimAgentSpec[]; roles: Role[]; seed: number; startPerS: number }
  | { type: 'mark'; name: string; token: string }
  | { type: 'stats' }
  | { type: 'stop' };

export interface CommandSeen { readonly name: string; readonly kind: string; readonly commandId: string; readonly at: number }

export type FromWorker =
  | { type: 'started' }
  | { type: 'marked'; token: string; sentAt: number; ok: boolean }
  | { type: 'stats'; connected: number; frames: number; rssBytes: number; handshakesFull: number; handshakesResumed: number }
  | { type: 'commands'; seen: CommandSeen[] };

const send = (m: FromWorker) => process.send?.(m);
const agents = new Map<string, SimAgent>();
let frames = 0;
/** Welcomed wss connections by TLS handshake kind (a storm after a restart should resume). */
const handshakes = { full: 0, resumed: 0 };
let pending: CommandSeen[] = [];
let stopping = false;

// Commands are forwarded in batches: one IPC message per agent would cost more than the agent.
setInterval(() => {
  if (pending.length === 0) return;
  send({ type: 'commands', seen: pending });
  pending = [];
}, 50).unref();

process.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'start': {
      const random = prng(m.seed);
      const log = createLogger({ name: 'sim', level: 'silent' });
      // One TLS context for all of this process's agents: a real agent builds one, once.
      const secureContext = m.caPem === null ? undefined : createSecureContext({ ca: m.caPem });
      const events = {
        framesSent: (n: number) => (frames += n),
        welcomed: (resumed: boolean | null) => void (resumed === true ? handshakes.resumed++ : resumed === false && handshakes.full++),
        command: (name: string, cmd: Command, at: number) => pending.push({ name, kind: cmd.kind, commandId: cmd.commandId, at }),
      };
      const all = m.agents.map((spec, i) => {
        const agent = new SimAgent(spec, m.roles[i] ?? 'healthy', m.profile, { server: m.server, caPem: m.caPem, ...(secureContext === undefined ? {} : { secureContext }), localAddress: m.localAddresses[i % m.localAddresses.length]!, log, random, events });
        agents.set(spec.name, agent);
        return agent;
      });
      // Started startPerS a second, a tenth each 100 ms, not all in one turn: every start
      // dials at once (over wss a TLS context and handshake each), and 8,000 dials in one
      // synchronous loop ran their own handshake timeouts out before this process could
      // answer any, while a coordinator refuses what it cannot admit yet (Retry-After).
      const perTick = Math.max(1, Math.round(m.startPerS / 10));
      let next = 0;
      const startSome = () => {
        if (stopping) return;
        for (const until = Math.min(all.length, next + perTick); next < until; next += 1) all[next]!.start();
        if (next < all.length) setTimeout(startSome, 100);
      };
      startSome();
      send({ type: 'started' });
      return;
    }
    case 'mark': {
      const sentAt = Date.now();
      send({ type: 'marked', token: m.token, sentAt, ok: agents.get(m.name)?.mark(m.token) ?? false });
      return;
    }
    case 'stats': {
      let connected = 0;
      for (const a of agents.values()) if (a.connected) connected += 1;
      send({ type: 'stats', connected, frames, rssBytes: process.memoryUsage.rss(), handshakesFull: handshakes.full, handshakesResumed: handshakes.resumed });
      return;
    }
    case 'stop':
      stopping = true;
      for (const a of agents.values()) a.stop();
      setTimeout(() => process.exit(0), 200);
  }
});
process.on('disconnect', () => process.exit(0));
