/**
 * The versions nodekeeper installed, in the probes' recordedVersionsFile
 * (`/var/lib/nodekeeper/packages.json`: `{"cni-plugins":{"version":"1.1.1"}}`), so the
 * CNI probe can name a release the binaries will not state themselves.
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { resolveHostPath } from '../probes/config.ts';
import { writeFileDurable } from '@nodekeeper/common';

// Installs of different packages may commit at once: serialise the read-modify-write.
let queue: Promise<unknown> = Promise.resolve();

/** Sets (or, with null, removes) `pkg`'s recorded version. */
export function recordVersion(hostRoot: string, file: string, pkg: string, version: string | null, at: Date = new Date()): Promise<void> {
  const next = queue.then(async () => {
    const full = resolveHostPath(hostRoot, file);
    let doc: Record<string, unknown> = {};
    try {
      const parsed: unknown = JSON.parse(await readFile(full, 'utf8'));
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) doc = parsed as Record<string, unknown>;
    } catch {
      // Missing or corrupt: start over; the file is a cache of what the links show.
    }
    if (version === null) delete doc[pkg];
    else doc[pkg] = { version, installedAt: at.toISOString() };
    await mkdir(path.dirname(full), { recursive: true });
    await writeFileDurable(full, `${JSON.stringify(doc, null, 2)}\n`);
  });
  queue = next.catch(() => {});
  return next;
}
