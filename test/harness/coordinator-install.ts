/**
 * The coordinator as an operator installs and restores it: `nodekeeper-coordinator
 * restore` run for real, and (for scripts/install-coordinator) a hand-assembled
 * "extracted release tarball" built from this checkout.
 */
import { spawnSync } from 'node:child_process';
import { chmod, copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BIN, REPO } from './processes.ts';

/** `nodekeeper-coordinator restore --from FILE --data-dir DIR`, run for real. */
export function restore(from: string, dataDir: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN.coordinator, 'restore', '--from', from, '--data-dir', dataDir], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * A hand-assembled stand-in for an extracted `nodekeeper-coordinator-<version>-linux-<arch>.tar.gz`
 * (the shared layout: VERSION, bin/ launchers, node/, lib/, systemd/, install-coordinator),
 * built from this checkout: the launchers run the checkout's sources with this Node.
 * The real tarball comes from scripts/release; tests switch to it once it exists.
 */
export async function fakeCoordinatorRelease(dir: string, version: string, opts: { selfContained?: boolean } = {}): Promise<string> {
  const root = path.join(dir, `nodekeeper-coordinator-${version}`);
  await mkdir(path.join(root, 'bin'), { recursive: true });
  await mkdir(path.join(root, 'node', 'bin'), { recursive: true });
  await mkdir(path.join(root, 'lib'), { recursive: true });
  await mkdir(path.join(root, 'systemd'), { recursive: true });
  await writeFile(path.join(root, 'VERSION'), `${version}\n`);
  // Self-contained (for a booted systemd, whose units see neither /tmp nor /root, where a
  // checkout may live): Node and the sources with their pnpm node_modules copied into lib/
  // (pnpm's links are relative, so they resolve inside lib/). Else links to the checkout.
  let lib: string = REPO;
  if (opts.selfContained === true) {
    await copyFile(process.execPath, path.join(root, 'node', 'bin', 'node'));
    await chmod(path.join(root, 'node', 'bin', 'node'), 0o755);
    for (const d of ['package.json', 'coordinator', 'packages', 'node_modules']) {
      const r = spawnSync('cp', ['-a', path.join(REPO, d), path.join(root, 'lib', d)], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`cp ${d}: ${r.stderr}`);
    }
    lib = '$here/../lib';
  } else {
    await symlink(process.execPath, path.join(root, 'node', 'bin', 'node'));
  }
  for (const name of ['nodekeeper-coordinator', 'nkctl']) {
    await writeFile(path.join(root, 'bin', name), `#!/bin/sh\nhere="$(dirname "$(readlink -f "$0")")"\nexec "$here/../node/bin/node" "${lib}/coordinator/bin/${name}" "$@"\n`, { mode: 0o755 });
  }
  await copyFile(path.join(REPO, 'coordinator/systemd/nodekeeper-coordinator.service'), path.join(root, 'systemd', 'nodekeeper-coordinator.service'));
  await copyFile(path.join(REPO, 'scripts/install-coordinator'), path.join(root, 'install-coordinator'));
  await chmod(path.join(root, 'install-coordinator'), 0o755);
  return root;
}
