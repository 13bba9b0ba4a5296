/**
 * The coordinator as an operator restores it: `nodekeeper-coordinator restore` run for
 * real from the checkout. (Installs use the real release tarball: test/harness/release.ts
 * `coordinatorRelease()`.)
 */
import { spawnSync } from 'node:child_process';
import { BIN } from './processes.ts';

/** `nodekeeper-coordinator restore --from FILE --data-dir DIR`, run for real. */
export function restore(from: string, dataDir: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN.coordinator, 'restore', '--from', from, '--data-dir', dataDir], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
