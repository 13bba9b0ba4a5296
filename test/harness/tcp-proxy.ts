/**
 * A TCP forwarder a test can cut and restore, to make a peer (the member kube-apiserver,
 * a webhook) unreachable for a while without stopping it: cut() closes the listener and
 * every open connection (new ones are refused), restore() listens again on the same port.
 */
import net from 'node:net';

export interface TcpProxy {
  readonly port: number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  const make = () => net.createServer((client) => {
    const upstream = net.connect(targetPort, targetHost);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  const listen = (server: net.Server, port: number) => new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
  let server: net.Server | null = make();
  const port = await listen(server, 0);
  const stop = async () => {
    const s = server;
    server = null;
    for (const c of sockets) c.destroy();
    if (s !== null) await new Promise<void>((r) => s.close(() => r()));
  };
  return {
    port,
    cut: stop,
    async restore() {
      if (server !== null) return;
      server = make();
      await listen(server, port);
    },
    close: stop,
  };
}
