/** The coordinator package's version (nkctl ships with it; the host's Cluster status shows it). */
import { readFileSync } from 'node:fs';

/**
 * From a release, the tarball's VERSION (one level up from the bundle in lib/, see
 * scripts/release); from the sources, coordinator/package.json (one level up from src/).
 */
export function packageVersion(): string {
  try {
    const line = readFileSync(new URL('../VERSION', import.meta.url), 'utf8').split('\n')[0]?.trim();
    if (line !== undefined && line !== '') return line;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}
