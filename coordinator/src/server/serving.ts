/**
 * Where the coordinator listens. In-process (`--gateway-workers 0`): one https server on
 * the public port serves the API and the agents. With workers: they hold the public port
 * (gateway/gateway-workers.ts), and this process serves its whole HTTP app to them
 * alone, on a unix socket in a fresh 0700 directory, behind a per-start secret.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import type http from 'node:http';
import type { AddressInfo, ListenOptions } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '@nodekeeper/common';
import { AGENT_PATH } from '@nodekeeper/protocol';
import type { CoordinatorConfig } from '../config.ts';
import type { AgentGateway } from '../gateway/agent-gateway.ts';
import { GatewayWorkers } from '../gateway/gateway-workers.ts';
import { workerOnly } from '../gateway/writer-proxy.ts';
import { registerConnectionMetrics, type Metrics } from '../metrics.ts';
import type { TlsMaterial } from '../tls/pki.ts';
import { ticketLifetimeSeconds, type TicketKeyRing } from '../tls/ticket-keys.ts';
import type { ApiHandler } from './http-api.ts';
import { createCoordinatorServer } from './http-server.ts';
import { endWithError } from './socket-answers.ts';

export interface Serving {
  readonly port: number;
  /** A renewed serving certificate, applied in place (in every worker too). */
  applyTls(m: TlsMaterial): void;
  close(): Promise<void>;
}

export interface ServingDeps {
  readonly config: CoordinatorConfig;
  readonly tls: TlsMaterial | null;
  readonly tickets: TicketKeyRing | null;
  readonly api: ApiHandler;
  readonly gateway: AgentGateway;
  readonly metrics: Metrics;
  readonly log: Logger;
}

function listen(server: http.Server, where: ListenOptions): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(where, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

async function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Starts listening; resolves with the public port once agents and clients can connect. */
export async function startServing(d: ServingDeps): Promise<Serving> {
  return d.config.gatewayWorkers === 0 ? inProcess(d) : withWorkers(d);
}

async function inProcess(d: ServingDeps): Promise<Serving> {
  const { config, tls, tickets, metrics } = d;
  const { server, connections } = createCoordinatorServer(tls, d.api, config.http, {
    agentPath: AGENT_PATH,
    agentUpgrade: (req, socket, head) => d.gateway.handleUpgrade(req, socket, head),
    refused: () => metrics.httpConnectionsRefused.inc(),
    handshake: (seconds) => metrics.tlsHandshakeDuration.observe(seconds),
    tlsSessionSeconds: ticketLifetimeSeconds(config.tlsTicketRotationMs),
    log: d.log.child({ component: 'http' }),
  });
  if (tickets !== null && 'setTicketKeys' in server) tickets.attach(server);
  registerConnectionMetrics(metrics, connections);
  await listen(server, { port: config.port, host: config.host });
  return {
    port: (server.address() as AddressInfo).port,
    applyTls: (m) => {
      if (!('setSecureContext' in server)) return;
      server.setSecureContext({ cert: m.certPem, key: m.keyPem });
      // A new context has Node's random ticket keys: serve ours again, or every agent's
      // next handshake after a renewal would be a full one.
      if (tickets !== null) tickets.attach(server);
    },
    close: () => closeServer(server),
  };
}

async function withWorkers(d: ServingDeps): Promise<Serving> {
  const { config, metrics, log } = d;
  // Under the system's temp dir, not --data-dir: a unix socket path is at most 108 bytes.
  const dir = await mkdtemp(join(tmpdir(), 'nk-writer-'));
  const socketPath = join(dir, 'writer.sock');
  const secret = randomBytes(32).toString('base64url');
  // Each worker keeps its own cap of non-agent connections; their proxied requests meet here.
  const limits = { ...config.http, maxConnections: config.http.maxConnections * config.gatewayWorkers };
  const { server } = createCoordinatorServer(null, workerOnly(d.api, secret), limits, {
    agentPath: AGENT_PATH,
    agentUpgrade: (_req, socket) => endWithError(socket, 404, 'NK_HTTP_NOT_FOUND', 'agents connect to a gateway worker on the public port'),
    refused: () => metrics.httpConnectionsRefused.inc(),
    log: log.child({ component: 'http' }),
  });
  await listen(server, { path: socketPath });
  await chmod(socketPath, 0o600);
  const workers = new GatewayWorkers(
    { gateway: d.gateway, metrics, log: log.child({ component: 'gateway-workers' }), entry: process.argv[1]! },
    config.gatewayWorkers,
    {
      host: config.host,
      tlsSessionSeconds: ticketLifetimeSeconds(config.tlsTicketRotationMs),
      http: config.http,
      transport: { rateLimit: config.rateLimit, maxInvalidFrames: config.maxInvalidFrames },
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      writerSocket: socketPath,
      secret,
      logLevel: config.logLevel,
    },
    d.tls,
    d.tickets?.keys ?? null,
  );
  d.tickets?.onRotated((keys) => workers.pushTickets(keys));
  registerConnectionMetrics(metrics, () => workers.connections());
  const stop = async () => {
    await workers.stop();
    await closeServer(server);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const port = await workers.start(config.port);
    return { port, applyTls: (m) => workers.pushTls(m), close: stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
