/**
 * A gateway worker process (`nodekeeper-coordinator gateway-worker`, forked by the
 * writer: gateway-workers.ts). It listens on the coordinator's public port with
 * SO_REUSEPORT beside its siblings, terminates TLS and WebSockets, runs the agents'
 * transport half, and proxies every other request to the writer's unix socket. It holds
 * no state of its own: when the IPC channel to the writer closes (the writer died), it
 * exits, so no agent stays connected to nothing.
 */
import type { AddressInfo } from 'node:net';
import type tls from 'node:tls';
import { createLogger, type Logger } from '@nodekeeper/common';
import { LOG_BUFFER_BYTES } from '../logging.ts';
import { AGENT_PATH, CloseCode } from '@nodekeeper/protocol';
import { createCoordinatorServer } from '../server/http-server.ts';
import { serveTicketKeys, type TicketKeySet } from '../tls/ticket-keys.ts';
import { WorkerGateway } from './worker-gateway.ts';
import type { WorkerMessage, WorkerSetup, WriterMessage } from './worker-ipc.ts';
import { writerProxy } from './writer-proxy.ts';

type Level = NonNullable<Parameters<typeof createLogger>[0]['level']>;

const asBuffer = (b: Uint8Array) => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const keysOf = (k: TicketKeySet): TicketKeySet => ({ rotatedAt: k.rotatedAt, current: asBuffer(k.current), previous: k.previous === null ? null : asBuffer(k.previous) });

function send(m: WorkerMessage): void {
  if (process.connected) process.send!(m);
}

/** Runs the worker; the process ends when the writer goes. */
export async function workerMain(): Promise<void> {
  if (process.send === undefined) {
    process.stderr.write('nodekeeper-coordinator gateway-worker: started without an IPC channel; the coordinator forks its workers itself (--gateway-workers)\n');
    process.exit(2);
  }
  // The writer is gone (stopped, or killed): agents must not stay connected to nothing.
  // Their close frames (1001) get a moment to be written, then the process ends.
  let closeAgents = () => {};
  process.once('disconnect', () => {
    closeAgents();
    setTimeout(() => process.exit(0), 200).unref();
  });
  const setup = await new Promise<WorkerSetup>((resolve) => {
    process.once('message', (m: WriterMessage) => {
      if (m.t === 'setup') resolve(m);
      else process.exit(2);
    });
  });
  const log = createLogger({ name: 'nodekeeper-gateway-worker', level: setup.logLevel as Level, maxBufferedBytes: LOG_BUFFER_BYTES }).child({ worker: setup.worker });
  const fatal = (err: unknown) => {
    log.fatal({ err }, 'unexpected error in a gateway worker; exiting (the writer starts another)');
    process.exit(70);
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  const gateway = await serve(setup, log);
  closeAgents = () => gateway.close(CloseCode.goingAway, 'coordinator shutting down');
}

async function serve(setup: WorkerSetup, log: Logger): Promise<WorkerGateway> {
  let gateway: WorkerGateway | null = null;
  let tickets = setup.tickets === null ? null : keysOf(setup.tickets);
  const { server, connections } = createCoordinatorServer(setup.tls, writerProxy(setup.writerSocket, setup.secret, log), setup.http, {
    agentPath: AGENT_PATH,
    agentUpgrade: (req, socket, head) => gateway!.handleUpgrade(req, socket, head),
    refused: () => gateway?.refused(),
    handshake: (seconds) => gateway?.handshake(seconds),
    tlsSessionSeconds: setup.tlsSessionSeconds,
    log: log.child({ component: 'http' }),
  });
  const serveTickets = () => {
    if (tickets !== null && 'setTicketKeys' in server) serveTicketKeys(server as tls.Server, () => tickets!);
  };
  serveTickets();
  gateway = new WorkerGateway(setup, send, log.child({ component: 'gateway' }), connections);
  process.on('message', (m: WriterMessage) => {
    if (m.t === 'tls' && 'setSecureContext' in server) {
      server.setSecureContext({ cert: m.certPem, key: m.keyPem });
      serveTickets(); // a new context has Node's random ticket keys
    } else if (m.t === 'tickets') {
      tickets = keysOf(m.keys);
      serveTickets();
    } else {
      gateway!.fromWriter(m);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // Every worker binds the same port; the kernel spreads new connections among them.
    server.listen({ host: setup.host, port: setup.port, reusePort: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  send({ t: 'listening', port: (server.address() as AddressInfo).port });
  log.info({ port: setup.port }, 'gateway worker listening');
  return gateway;
}
