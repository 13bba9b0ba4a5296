/**
 * Who this machine is, as read on the node: its machine-id, hostname, addresses,
 * zone and labels. Informational for the coordinator; never trusted for authentication.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { AppError } from '@nodekeeper/common';
import type { MachineIdentity } from '@nodekeeper/protocol';
import { resolveHostPath } from './probes/config.ts';

export interface IdentityOptions {
  readonly hostRoot: string;
  /** From config; wins over /etc/hostname. */
  readonly hostname?: string;
  readonly zone?: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface IdentityDeps {
  /** os.networkInterfaces unless a test gives another. */
  readonly networkInterfaces?: () => NodeJS.Dict<os.NetworkInterfaceInfo[]>;
  /** os.hostname unless a test gives another. */
  readonly hostname?: () => string;
}

/** machine-id(5): 32 lower-case hex characters, one line. */
const MACHINE_ID = /^[0-9a-f]{32}$/;
const MAX_ADDRESSES = 32;

/**
 * Reads the machine's identity under `hostRoot`. A missing, unreadable or malformed
 * /etc/machine-id is an AppError (NK_AGENT_MACHINE_ID_MISSING / _UNREADABLE / _INVALID):
 * without it the machine cannot be told apart from its neighbours.
 */
export async function readIdentity(opts: IdentityOptions, deps: IdentityDeps = {}): Promise<MachineIdentity> {
  const file = resolveHostPath(opts.hostRoot, '/etc/machine-id');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new AppError('NK_AGENT_MACHINE_ID_MISSING', `${file} does not exist; run systemd-machine-id-setup on the node`, { cause: err, context: { file } });
    }
    throw new AppError('NK_AGENT_MACHINE_ID_UNREADABLE', `cannot read ${file}: ${(err as Error).message}`, { cause: err, context: { file } });
  }
  const machineId = text.trim();
  if (!MACHINE_ID.test(machineId)) {
    const shown = machineId === '' ? 'it is empty' : `got ${JSON.stringify(machineId.slice(0, 80))}`;
    throw new AppError('NK_AGENT_MACHINE_ID_INVALID', `${file} must hold 32 lower-case hex characters; ${shown}`, { context: { file } });
  }
  return {
    machineId,
    // The kubelet lowercases the hostname for the Node name; the Machine name follows it.
    hostname: (await chooseHostname(opts, deps)).toLowerCase(),
    addresses: listAddresses(deps.networkInterfaces ?? os.networkInterfaces),
    zone: opts.zone ?? null,
    labels: { ...opts.labels },
  };
}

async function chooseHostname(opts: IdentityOptions, deps: IdentityDeps): Promise<string> {
  if (opts.hostname !== undefined && opts.hostname.trim() !== '') return opts.hostname.trim();
  try {
    const line = (await readFile(resolveHostPath(opts.hostRoot, '/etc/hostname'), 'utf8')).split('\n')[0]?.trim() ?? '';
    if (line !== '') return line.slice(0, 253);
  } catch {
    // No /etc/hostname (containers, minimal images): the kernel's name is next.
  }
  return (deps.hostname ?? os.hostname)();
}

/**
 * Non-loopback addresses, IPv4 then IPv6. IPv6 link-local (fe80::/10) addresses are
 * left out: without their interface scope nobody else can use them.
 */
export function listAddresses(networkInterfaces: () => NodeJS.Dict<os.NetworkInterfaceInfo[]>): string[] {
  const v4: string[] = [];
  const v6: string[] = [];
  for (const infos of Object.values(networkInterfaces())) {
    for (const info of infos ?? []) {
      if (info.internal) continue;
      if (info.family === 'IPv4') v4.push(info.address);
      else if (!/^fe[89ab]/i.test(info.address)) v6.push(info.address);
    }
  }
  return [...new Set([...v4, ...v6])].slice(0, MAX_ADDRESSES);
}
