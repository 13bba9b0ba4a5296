/**
 * The version this agent reports (hello, enrollment). Per the release layout (docs/
 * install-agent.md): the launcher `bin/nodekeeper-agent` exports NK_AGENT_INSTALL_DIR, the
 * unpacked tarball's root, whose `VERSION` file's first line is the version. Running from
 * the sources (no launcher, or no VERSION file), the agent's package.json version.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** A version as a release writes it: what a package version directory may be named. */
const VERSION_LINE = /^[0-9A-Za-z][0-9A-Za-z.+~_-]{0,63}$/;

/** The agent's package.json version (the sources' own). */
export function sourceVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    // A bundle without its package.json beside it and without a VERSION file: unknown.
    return '0.0.0';
  }
}

/**
 * The first line of `<installDir>/VERSION` when `installDir` is set and the file holds a
 * version, else `fallback()`. A VERSION file with something else in it is ignored (a
 * hello with it would be refused, and the agent would never connect).
 */
export function readAgentVersion(installDir: string | null, fallback: () => string = sourceVersion): string {
  if (installDir !== null) {
    try {
      const line = readFileSync(path.join(installDir, 'VERSION'), 'utf8').split('\n')[0]?.trim() ?? '';
      if (VERSION_LINE.test(line)) return line;
    } catch {
      // no VERSION file: running from the sources
    }
  }
  return fallback();
}
