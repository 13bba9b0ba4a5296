/**
 * The machine key: an ed25519 key pair made on first enrollment and kept mode 0600 in
 * the state dir beside the credential. The coordinator keeps its public half; a
 * signature by it is how this agent re-enrolls when its credential is lost or lapsed,
 * without a bootstrap token (and what a stolen token cannot forge).
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppError, rawPublicKey, writeFileDurable } from '@nodekeeper/common';

export interface MachineKey {
  readonly privateKey: KeyObject;
  /** base64 of the 32 raw public-key bytes, as the protocol carries it. */
  readonly publicKey: string;
}

export const machineKeyFile = (stateDir: string): string => join(stateDir, 'machine.key');

/** Reads the machine key; null when there is none yet. NK_AGENT_STATE_CORRUPT when unreadable. */
export function loadMachineKey(stateDir: string): MachineKey | null {
  const file = machineKeyFile(stateDir);
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new AppError('NK_AGENT_STATE_CORRUPT', `cannot read the machine key ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const privateKey = createPrivateKey(pem);
    return { privateKey, publicKey: rawPublicKey(privateKey) };
  } catch (err) {
    throw new AppError('NK_AGENT_STATE_CORRUPT', `${file} does not hold an ed25519 private key; an admin must run 'nkctl machine reset' for this machine, then remove the state dir and enroll again`, {
      cause: err,
    });
  }
}

/** The machine key, made and saved durably (0600) first if there is none. */
export async function ensureMachineKey(stateDir: string): Promise<MachineKey> {
  const existing = loadMachineKey(stateDir);
  if (existing !== null) return existing;
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ed25519');
  await writeFileDurable(machineKeyFile(stateDir), privateKey.export({ type: 'pkcs8', format: 'pem' }), 0o600);
  return { privateKey, publicKey: rawPublicKey(privateKey) };
}
