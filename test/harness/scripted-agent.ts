/**
 * A scripted agent: enrolled by hand, then speaking the agent protocol over a real
 * WebSocket to a real coordinator, with the report and the answers to commands the
 * test chooses. Cheaper than a real agent (no probes, no host root, no process), and
 * able to reach states a real node reaches only slowly: an install that fails its
 * health check, a repair that does not help, a step that never finishes.
 */
import { WebSocket } from 'ws';
import type { MachineIdentity, NodeReport } from '@nodekeeper/protocol';
import { sampleReport } from '@nodekeeper/protocol/testing';
import { enrollByHand } from './machine-key.ts';

/** A command frame as the coordinator sends it. */
export interface CommandFrame {
  readonly commandId: string;
  readonly kind: string;
  readonly params: Record<string, any>;
}

/** What the agent does with a command: answer it (ok or not, with a result), or keep it. */
export type Answer = { ok: boolean; result?: Record<string, unknown>; error?: { code: string; message: string } } | 'hold';

export interface ScriptedAgentOptions {
  readonly url: string;
  readonly ca: string;
  readonly identity: MachineIdentity;
  readonly agentVersion?: string;
  /** The report sent after hello and after each change; `versions` are the installed packages. */
  readonly report?: (agent: ScriptedAgent) => NodeReport;
  /** Versions whose install fails at the health step (the agent switches back by itself). */
  readonly failVersions?: readonly string[];
}

/** A report of `identity` with the kubelet at `kubelet` (a semver), healthy unless told otherwise. */
export function healthyReport(identity: MachineIdentity, kubelet: string, healthy = true): NodeReport {
  const health = healthy
    ? { health: 'healthy' as const, reason: sampleReport.kubelet.reason, message: sampleReport.kubelet.message }
    : { health: 'unhealthy' as const, reason: 'HealthzFailed', message: 'GET :10248/healthz: connection refused' };
  return { ...sampleReport, identity, kubelet: { ...sampleReport.kubelet, ...health, version: { raw: `Kubernetes v${kubelet}`, semver: kubelet, source: 'binary' } } };
}

export class ScriptedAgent {
  /** Installed version per package (the kubelet's is what the default report says). */
  readonly versions: Record<string, string> = { kubelet: '1.31.2' };
  readonly commands: CommandFrame[] = [];
  /** The default report's kubelet health (report() sends it). */
  healthy = true;
  /** Decides each command; the default installs, rolls back and answers repairs as not helping. */
  answer: (f: CommandFrame) => Answer = (f) => this.defaultAnswer(f);
  private ws: WebSocket | null = null;
  private seq = 0;
  private readonly held: CommandFrame[] = [];

  readonly opts: ScriptedAgentOptions;
  readonly credential: string;

  private constructor(opts: ScriptedAgentOptions, credential: string) {
    this.opts = opts;
    this.credential = credential;
  }

  get name(): string {
    return this.opts.identity.hostname;
  }

  /** Enrolls `identity` with `token` (201 expected) and returns the agent, not yet connected. */
  static async enroll(opts: ScriptedAgentOptions, token: string): Promise<ScriptedAgent> {
    const r = await enrollByHand(opts.url, opts.ca, token, opts.identity);
    if (r.status !== 201 || r.body.credential === undefined) throw new Error(`enrolling ${opts.identity.hostname}: ${r.status} ${JSON.stringify(r.body)}`);
    return new ScriptedAgent(opts, r.body.credential);
  }

  async connect(): Promise<void> {
    const ws = new WebSocket(`${this.opts.url.replace(/^http/, 'ws')}/v1/agent/connect`, { ca: this.opts.ca, headers: { Authorization: `Bearer ${this.credential}` } });
    ws.on('message', (d) => this.frame(JSON.parse(String(d))));
    ws.on('error', () => {});
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    this.ws = ws;
    ws.send(JSON.stringify({ type: 'hello', minProtocolVersion: 1, maxProtocolVersion: 1, agentVersion: this.opts.agentVersion ?? '0.1.0', identity: this.opts.identity }));
    this.report();
  }

  close(): void {
    this.ws?.close();
    this.ws = null;
  }

  report(): void {
    const report = this.opts.report?.(this) ?? healthyReport(this.opts.identity, this.versions['kubelet'] ?? '1.31.2', this.healthy);
    this.ws?.send(JSON.stringify({ type: 'report', seq: ++this.seq, full: true, report }));
  }

  /** How many commands are kept back now. */
  heldCount(): number {
    return this.held.length;
  }

  /** Answers the commands kept back (by an `answer` that said hold) with `answer` as it is now. */
  release(): void {
    for (const f of this.held.splice(0)) this.reply(f, this.answer(f));
  }

  private frame(f: any): void {
    if (f.type !== 'command') return;
    const cmd: CommandFrame = { commandId: f.commandId, kind: f.kind, params: f.params };
    this.commands.push(cmd);
    this.reply(cmd, this.answer(cmd));
  }

  private reply(f: CommandFrame, a: Answer): void {
    if (a === 'hold') {
      this.held.push(f);
      return;
    }
    this.ws?.send(JSON.stringify({ type: 'command.result', commandId: f.commandId, ok: a.ok, ...(a.result === undefined ? {} : { result: a.result }), ...(a.error === undefined ? {} : { error: a.error }) }));
    this.report();
  }

  /** What the agent answers unless told otherwise: installs (failing `failVersions`), rolls back, repairs without effect. */
  defaultAnswer(f: CommandFrame): Answer {
    const pkg = String(f.params['package'] ?? '');
    const previous = this.versions[pkg] ?? null;
    if (f.kind === 'package.install') {
      const version = String(f.params['version']);
      if ((this.opts.failVersions ?? []).includes(version)) {
        const message = `HealthCheckFailed: ${pkg} did not become healthy after the switch; switched back to ${previous ?? 'nothing'}`;
        return { ok: false, error: { code: 'NK_INSTALL_HEALTH_FAILED', message }, result: { package: pkg, outcome: 'rolled-back', activeVersion: previous, previousVersion: previous, failedStep: 'health', message } };
      }
      this.versions[pkg] = version;
      return { ok: true, result: { package: pkg, outcome: 'installed', activeVersion: version, previousVersion: previous, message: 'installed' } };
    }
    if (f.kind === 'package.rollback') {
      return { ok: true, result: { package: pkg, outcome: 'rolled-back', activeVersion: previous, previousVersion: previous, message: 'switched back' } };
    }
    // A repair that was carried out but did not make the probe agree.
    return { ok: true, result: { outcome: 'unhealthy', target: String(f.params['unit'] ?? f.params['path'] ?? ''), probe: 'none', message: 'still unhealthy' } };
  }
}
