/** The coordinator package's version (nkctl ships with it; the host's Cluster status shows it). */
import { packageJsonVersion, readVersionFile } from '@nodekeeper/common';

/**
 * From a release, the tarball's VERSION (one level up from the bundle in lib/, see
 * scripts/release); from the sources, coordinator/package.json (one level up from src/).
 */
export function packageVersion(): string {
  return readVersionFile(new URL('../VERSION', import.meta.url)) ?? packageJsonVersion(new URL('../package.json', import.meta.url)) ?? 'unknown';
}
