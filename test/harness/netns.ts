/**
 * A small network of Linux network namespaces for partition tests: a switch (a bridge
 * in a namespace of its own) and hosts, each in its own namespace with one veth port on
 * the bridge and a 10.x address. Nothing touches the machine's own namespace: the only
 * addresses used are those of these namespaces, made here and torn down by destroy()
 * (and, as a last resort, when the process exits). Names carry the pid and a random
 * suffix, so parallel runs never collide.
 *
 * A host is cut off in one of two ways:
 *   - `link-down`: its switch port goes down (the host sees no carrier);
 *   - `drop`: every frame to or from its port is dropped silently on the switch, with
 *     ebtables (nft's bridge family) where it works, else iptables on the host's side;
 *     the link stays up and nothing answers: a half-open TCP connection is only found by
 *     its keep-alives.
 *
 *   const lab = await NetLab.create(['coord', 'a1', 'a2']);
 *   const p = lab.spawn('a1', process.execPath, [script], log);   // runs inside a1
 *   lab.cut('a2', 'drop'); ... lab.heal('a2', 'drop');
 *   lab.destroy();
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { spawnLogged, type Proc } from './processes.ts';

export type CutMode = 'link-down' | 'drop';

/** iproute2's ip, by absolute path where found (a broken PATH entry must not stop a cleanup). */
const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p)) ?? 'ip';

function ip(args: readonly string[]): void {
  execFileSync(IP, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function tryRun(cmd: string, args: readonly string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

/**
 * Why this machine cannot run the partition tests (not root, no `ip`, no permission to
 * make a namespace), or null when it can. Makes and removes one namespace to find out.
 */
export function netnsUnavailable(): string | null {
  if (process.platform !== 'linux') return `network namespaces are Linux only (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'making network namespaces needs root';
  const probe = `nkprobe${process.pid.toString(36)}${randomBytes(3).toString('hex')}`;
  const made = spawnSync(IP, ['netns', 'add', probe], { encoding: 'utf8' });
  if (made.error !== undefined) return `the ip command (iproute2) is missing: ${made.error.message}`;
  if (made.status !== 0) return `cannot make a network namespace: ${made.stderr.trim()}`;
  spawnSync(IP, ['netns', 'del', probe], { stdio: 'ignore' });
  return null;
}

const live = new Set<NetLab>();
process.once('exit', () => {
  for (const lab of live) lab.destroy();
});

export class NetLab {
  readonly id: string;
  /** `10.a.b` of the lab's /24. */
  readonly prefix: string;
  readonly hosts: readonly string[];
  /** How `drop` cuts: ebtables on the switch, or iptables inside the host. */
  readonly dropWith: 'ebtables' | 'iptables';
  private readonly namespaces: string[] = [];
  private destroyed = false;

  private constructor(hosts: readonly string[]) {
    this.id = `nk${process.pid.toString(36)}${randomBytes(3).toString('hex')}`;
    const r = randomBytes(2);
    this.prefix = `10.${200 + ((r[0] ?? 0) % 50)}.${r[1] ?? 0}`;
    this.hosts = hosts;
    this.dropWith = 'ebtables';
  }

  /** Makes the switch and one namespace per host (in that order: host i gets address .(i + 1)). */
  static create(hosts: readonly string[]): NetLab {
    if (new Set(hosts).size !== hosts.length || hosts.some((h) => !/^[a-z0-9]{1,8}$/.test(h))) throw new TypeError(`host names must be unique, [a-z0-9]{1,8}: ${hosts.join(', ')}`);
    const lab = new NetLab(hosts);
    live.add(lab);
    try {
      lab.build();
    } catch (err) {
      lab.destroy();
      throw err;
    }
    return lab;
  }

  /** The switch's namespace. */
  get switchNs(): string {
    return `${this.id}-sw`;
  }

  ns(host: string): string {
    if (!this.hosts.includes(host)) throw new RangeError(`no host ${host} in this lab`);
    return `${this.id}-${host}`;
  }

  address(host: string): string {
    return `${this.prefix}.${this.hosts.indexOf(host) + 1}`;
  }

  private port(host: string): string {
    return `p${this.hosts.indexOf(host)}`;
  }

  private addNs(name: string): void {
    ip(['netns', 'add', name]);
    this.namespaces.push(name);
    ip(['-n', name, 'link', 'set', 'lo', 'up']);
  }

  private build(): void {
    this.addNs(this.switchNs);
    ip(['-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge']);
    ip(['-n', this.switchNs, 'link', 'set', 'br0', 'up']);
    for (const host of this.hosts) {
      const ns = this.ns(host);
      this.addNs(ns);
      ip(['-n', this.switchNs, 'link', 'add', this.port(host), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      ip(['-n', this.switchNs, 'link', 'set', this.port(host), 'master', 'br0', 'up']);
      ip(['-n', ns, 'addr', 'add', `${this.address(host)}/24`, 'dev', 'eth0']);
      ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
    }
    // ebtables (nft's bridge family) in the switch's namespace; else iptables on the hosts.
    if (!tryRun(IP, ['netns', 'exec', this.switchNs, 'ebtables', '-L', 'FORWARD'])) (this as { dropWith: 'ebtables' | 'iptables' }).dropWith = 'iptables';
  }

  /** The file and arguments that run `command` inside the host's namespace (for execFile). */
  inside(host: string, command: string, args: readonly string[]): { file: string; args: string[] } {
    return { file: IP, args: ['netns', 'exec', this.ns(host), command, ...args] };
  }

  /** Spawns `command` inside the host's namespace, logging as spawnLogged does. */
  spawn(host: string, command: string, args: readonly string[], logFile: string, opts: { env?: NodeJS.ProcessEnv; stdoutToLog?: boolean } = {}): Proc {
    return spawnLogged(IP, ['netns', 'exec', this.ns(host), command, ...args], logFile, opts);
  }

  /** Cuts the host off the switch. */
  cut(host: string, mode: CutMode): void {
    if (mode === 'link-down') return ip(['-n', this.switchNs, 'link', 'set', this.port(host), 'down']);
    for (const rule of this.dropRules(host)) execFileSync(IP, ['netns', 'exec', ...rule.ns, ...rule.add], { stdio: 'ignore' });
  }

  /** Undoes cut(). */
  heal(host: string, mode: CutMode): void {
    if (mode === 'link-down') return ip(['-n', this.switchNs, 'link', 'set', this.port(host), 'up']);
    for (const rule of this.dropRules(host)) execFileSync(IP, ['netns', 'exec', ...rule.ns, ...rule.del], { stdio: 'ignore' });
  }

  private dropRules(host: string): Array<{ ns: string[]; add: string[]; del: string[] }> {
    if (this.dropWith === 'ebtables') {
      return [['-i', this.port(host)], ['-o', this.port(host)]].map((m) => ({ ns: [this.switchNs], add: ['ebtables', '-A', 'FORWARD', ...m, '-j', 'DROP'], del: ['ebtables', '-D', 'FORWARD', ...m, '-j', 'DROP'] }));
    }
    return [['INPUT', '-i'], ['OUTPUT', '-o']].map(([chain, dir]) => ({ ns: [this.ns(host)], add: ['iptables', '-A', chain!, dir!, 'eth0', '-j', 'DROP'], del: ['iptables', '-D', chain!, dir!, 'eth0', '-j', 'DROP'] }));
  }

  /** Removes every namespace of the lab (their veths and the bridge go with them). Idempotent. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    for (const ns of this.namespaces.reverse()) spawnSync(IP, ['netns', 'del', ns], { stdio: 'ignore' });
  }

  /** The lab's namespaces that still exist (for a test of the cleanup). */
  remaining(): string[] {
    const out = spawnSync(IP, ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
    return out.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(`${this.id}-`));
  }
}
