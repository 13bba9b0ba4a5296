/**
 * A scripted agent over a real WebSocket, for tests that need many cheap machines: it
 * enrolls by hand over plain http (a coordinator started with --insecure), says hello, reports a sampleReport with its own
 * zone, labels and kubelet version and health, and answers package installs when
 * `hold` lets it (then reports the new version).
 */
import { WebSocket } from 'ws';
import type { MachineIdentity } from '@nodekeeper/protocol';
import { sampleReport } from '@nodekeeper/protocol/testing';
import { newMachinePublicKey } from './machine-key.ts';

export class ScriptedAgent {
  version: string;
  healthy = true;
  /** Installs of versions this says true for wait until release(). */
  hold: (version: string) => boolean = () => false;
  readonly installs: string[] = [];
  readonly identity: MachineIdentity;
  private ws: WebSocket | null = null;
  private seq = 0;
  private readonly held: any[] = [];
  private readonly url: string;
  private readonly credential: string;

  private constructor(identity: MachineIdentity, version: string, url: string, credential: string) {
    this.identity = identity;
    this.version = version;
    this.url = url;
    this.credential = credential;
  }

  /** Enrolls with `token` and connects. `url` is the coordinator's (http: with --insecure). */
  static async start(url: string, token: string, identity: MachineIdentity, version: string): Promise<ScriptedAgent> {
    const init: RequestInit = { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token, identity, agentVersion: 'scripted', publicKey: newMachinePublicKey() }) };
    const res = await fetch(new URL('/v1/enroll', url), init);
    const body = (await res.json()) as { credential?: string; message?: string };
    if (res.status !== 201 || body.credential === undefined) throw new Error(`enrollment of ${identity.hostname} answered ${res.status}: ${body.message}`);
    const a = new ScriptedAgent(identity, version, url, body.credential);
    await a.connect();
    return a;
  }

  get name(): string {
    return this.identity.hostname;
  }

  async connect(): Promise<void> {
    const ws = new WebSocket(`${this.url.replace(/^http/, 'ws')}/v1/agent/connect`, { headers: { Authorization: `Bearer ${this.credential}` } });
    ws.on('message', (d) => this.frame(JSON.parse(String(d))));
    ws.on('error', () => {});
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    this.ws = ws;
    ws.send(JSON.stringify({ type: 'hello', minProtocolVersion: 1, maxProtocolVersion: 1, agentVersion: 'scripted', identity: this.identity }));
    this.report();
  }

  close(): void {
    this.ws?.close();
    this.ws = null;
  }

  /** Sends a full report of the current version and health. */
  report(): void {
    const kubelet = this.healthy
      ? { ...sampleReport.kubelet, health: 'healthy' as const, reason: 'HealthzOk', message: 'ok' }
      : { ...sampleReport.kubelet, health: 'unhealthy' as const, reason: 'HealthzFailed', message: 'GET :10248/healthz: connection refused' };
    this.ws?.send(JSON.stringify({
      type: 'report', seq: ++this.seq, full: true,
      report: { ...sampleReport, identity: this.identity, kubelet: { ...kubelet, version: { raw: `Kubernetes v${this.version}`, semver: this.version, source: 'binary' } } },
    }));
  }

  /** Answers the installs `hold` kept back. */
  release(count = Infinity): void {
    for (const f of this.held.splice(0, count)) this.answer(f);
  }

  private frame(f: any): void {
    if (f.type !== 'command' || f.kind !== 'package.install') return;
    this.installs.push(f.params.version);
    if (this.hold(f.params.version)) this.held.push(f);
    else this.answer(f);
  }

  private answer(f: any): void {
    const previous = this.version;
    this.version = f.params.version;
    this.ws?.send(JSON.stringify({ type: 'command.result', commandId: f.commandId, ok: true, result: { package: 'kubelet', outcome: 'installed', activeVersion: this.version, previousVersion: previous, message: 'done' } }));
    this.report();
  }
}
