/**
 * A coordinator killed -9 and restarted after its agents' reconnect backoff has grown past
 * the liveness grace: the agents (the agent's own connection code, its backoff and
 * jitter) come back up to a whole backoff step after the restart, and the restart grace
 * (coordinator/src/fleet/restart-grace.ts) must cover that: no machine is ever Unknown
 * (no MachineUnknown event, none seen Unknown while polling), and all are Ready again.
 * The same as the 4-node demo's 15 s outage against its 8 s grace, on a shorter clock:
 * a 1 s grace, a 3 s backoff cap, agents that always draw near the top of their jitter.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, rawPublicKey } from '@nodekeeper/common';
import type { MachineIdentity } from '@nodekeeper/protocol';
import { CoordinatorConnection } from '../agent/src/connection.ts';
import { enroll } from '../agent/src/enrollment.ts';
import { createToken, startCoordinator, waitFor, type CoordinatorProc } from './harness/processes.ts';
import { healthyReport } from './harness/scripted-agent.ts';

const COUNT = 4;
const CAP_MS = 3000;
const ARGS = ['--insecure', '--heartbeat-interval', '300', '--liveness-grace', '1000', '--liveness-recover', '100', '--flush-interval', '100', '--reconnect-backoff-cap', String(CAP_MS)];
const identity = (n: number): MachineIdentity => ({ machineId: `${n + 1}`.repeat(32), hostname: `node-${n}`, addresses: [], zone: null, labels: {} });
const quiet = createLogger({ name: 'agent', level: 'silent' });
type Machine = { metadata: { name: string }; status: { phase: string } };

describe('liveness across a coordinator restart with grown agent backoff', { timeout: 60_000 }, () => {
  let coord: CoordinatorProc;
  const connections: CoordinatorConnection[] = [];
  /** Every redial delay each agent drew, in order. */
  const delays: number[][] = [];

  const get = async <T>(p: string): Promise<T> => {
    const token = readFileSync(path.join(coord.dataDir, 'admin.credential'), 'utf8').trim();
    const res = await fetch(new URL(p, coord.url), { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200, p);
    return (await res.json()) as T;
  };
  const machines = async () => (await get<{ items: Machine[] }>('/v1/machines')).items;

  before(async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'nk-restart-grace-'));
    coord = await startCoordinator(path.join(dir, 'coordinator'), ARGS);
    const { token } = await createToken(coord.nkctlConfig, COUNT);
    for (let n = 0; n < COUNT; n += 1) {
      const { credential } = await enroll(coord.url, null, token, identity(n), 'test', rawPublicKey(generateKeyPairSync('ed25519').publicKey));
      const drawn: number[] = [];
      delays.push(drawn);
      // The agent's debug line for each redial carries the delay it drew.
      const log = Object.assign(Object.create(quiet) as typeof quiet, { debug: (o: { delayMs?: number }) => void (o.delayMs !== undefined && drawn.push(o.delayMs)) });
      let seq = 0;
      let beat: NodeJS.Timeout | null = null;
      const c: CoordinatorConnection = new CoordinatorConnection({
        server: coord.url,
        credential: () => credential,
        caPem: null,
        backoff: { baseMs: 100, capMs: CAP_MS },
        log,
        // Near the top of every jitter range: the slowest agents a fleet can have.
        random: () => 0.95,
        hello: async () => ({ type: 'hello', minProtocolVersion: 1, maxProtocolVersion: 1, agentVersion: 'test', identity: identity(n) }),
        onReady: (welcome) => {
          c.send({ type: 'report', seq: ++seq, full: true, report: healthyReport(identity(n), '1.31.2') });
          if (beat !== null) clearInterval(beat);
          beat = setInterval(() => c.send({ type: 'heartbeat', seq }), welcome.heartbeatIntervalMs).unref();
        },
        onMessage: () => {},
        onLost: () => {},
      });
      connections.push(c);
      c.start();
    }
    await waitFor('all Ready', async () => (await machines()).every((m) => m.status.phase === 'Ready') && (await machines()).length === COUNT, 20_000);
  });

  after(async () => {
    await Promise.all(connections.map((c) => c.stop()));
    await coord?.stop();
  });

  test('kill -9, down until every agent waits a step longer than the grace, restart: never Unknown, all Ready', async () => {
    const port = coord.port;
    await coord.stop('SIGKILL');
    const killedAt = Date.now();
    for (const d of delays) d.length = 0;
    // Down until each agent has drawn a redial delay longer than the 1 s grace.
    await waitFor('backoff grown past the grace', () => delays.every((d) => d.some((ms) => ms > 1500)), 15_000);
    coord = await startCoordinator(coord.dataDir, [...ARGS, '--port', String(port)]);
    const restartedAt = Date.now();
    const seen = new Set<string>();
    await waitFor('all Ready again', async () => {
      const ms = await machines();
      for (const m of ms) seen.add(m.status.phase);
      return ms.length === COUNT && ms.every((m) => m.status.phase === 'Ready') && connections.every((c) => c.isReady);
    }, 20_000, 50);
    const backAfterMs = Date.now() - restartedAt;
    // Past one ordinary grace since the restart the last agents may have come back only
    // now: still within the restart grace (1 s + 4 ms + 3 s).
    const events = (await get<{ items: Array<{ object: string; reason: string; at: string }> }>('/v1/events?limit=1000')).items;
    const unknown = events.filter((e) => e.reason === 'MachineUnknown' && Date.parse(e.at) >= killedAt);
    assert.deepEqual(unknown, [], `no machine Unknown after the restart (all back after ${backAfterMs} ms)`);
    assert.ok(!seen.has('Unknown') && !seen.has('NotReady'), `phases seen: ${[...seen].join(', ')}`);
  });
});
