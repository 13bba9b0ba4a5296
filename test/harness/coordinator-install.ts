/**
 * The coordinator as an operator installs and restores it: `nodekeeper-coordinator
 * restore` run for real, and (for scripts/install-coordinator) a hand-assembled
 * "extracted release tarball" built from this checkout.
 */
import { spawnSync } from 'node:child_process';
import { BIN } from './processes.ts';

/** `nodekeeper-coordinator restore --from FILE --data-dir DIR`, run for real. */
export function restore(from: string, dataDir: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN.coordinator, 'restore', '--from', from, '--data-dir', dataDir], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
