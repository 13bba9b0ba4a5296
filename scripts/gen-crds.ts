/**
 * Writes coordinator/deploy/host/crds.yaml: the hand-written Cluster and Machine CRDs as
 * they are, and the Rollout, RemediationRule and ClusterPackageVersion CRDs generated
 * from the coordinator's TypeBox schemas (coordinator/src/host/crd-schemas.ts).
 *
 *   node scripts/gen-crds.ts           rewrite the file
 *   node scripts/gen-crds.ts --check   exit 1 when the file is stale
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderCrdsFile } from '../coordinator/src/host/crd-schemas.ts';

const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../coordinator/deploy/host/crds.yaml');
const current = readFileSync(file, 'utf8');
const next = renderCrdsFile(current);
if (process.argv.includes('--check')) {
  if (next !== current) {
    process.stderr.write(`${file} is stale: run node scripts/gen-crds.ts\n`);
    process.exit(1);
  }
} else if (next !== current) {
  writeFileSync(file, next);
  process.stdout.write(`wrote ${file}\n`);
}
