/**
 * Reading the product's own version, for the agent (agent/src/version.ts) and the
 * coordinator (coordinator/src/version.ts) alike: a release carries a `VERSION` file
 * whose first line is the version (scripts/release); the sources have package.json.
 */
import { readFileSync } from 'node:fs';

/**
 * What a release version may look like: also what a package's version directory may be
 * named (agent install layout), so a version read here can always name one.
 */
export const VERSION_NAME = /^[0-9A-Za-z][0-9A-Za-z.+~_-]{0,63}$/;

/**
 * The first line of a `VERSION` file when it is a version; null when the file is missing,
 * unreadable or holds something else (a hello with it would be refused).
 */
export function readVersionFile(file: string | URL): string | null {
  try {
    const line = readFileSync(file, 'utf8').split('\n')[0]?.trim() ?? '';
    return VERSION_NAME.test(line) ? line : null;
  } catch {
    return null;
  }
}

/** The `version` of a package.json; null when it is missing or has none. */
export function packageJsonVersion(file: string | URL): string | null {
  try {
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : null;
  } catch {
    return null;
  }
}
