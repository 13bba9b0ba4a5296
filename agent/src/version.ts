/**
 * The version this agent reports (hello, enrollment). Per the release layout (docs/
 * install-agent.md): the launcher `bin/nodekeeper-agent` exports NK_AGENT_INSTALL_DIR, the
 * unpacked tarball's root, whose `VERSION` file's first line is the version. Running from
 * the sources (no launcher, or no VERSION file), the agent's package.json version.
 */
import path from 'node:path';
import { packageJsonVersion, readVersionFile } from '@nodekeeper/common';

/** The agent's package.json version (the sources' own); 0.0.0 for a bundle without one and without a VERSION file. */
export function sourceVersion(): string {
  return packageJsonVersion(new URL('../package.json', import.meta.url)) ?? '0.0.0';
}

/**
 * The first line of `<installDir>/VERSION` when `installDir` is set and the file holds a
 * version, else `fallback()`. A VERSION file with something else in it is ignored (a
 * hello with it would be refused, and the agent would never connect).
 */
export function readAgentVersion(installDir: string | null, fallback: () => string = sourceVersion): string {
  return (installDir === null ? null : readVersionFile(path.join(installDir, 'VERSION'))) ?? fallback();
}
