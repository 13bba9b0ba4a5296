/**
 * `nkctl apply -f`: each document is created or updated by the coordinator (PUT), and
 * said as kubectl says it: `created`, `configured` or `unchanged`. The verdict compares
 * the object's resourceVersion before and after the PUT (docs/declarative.md,
 * "Objects"): the coordinator writes nothing for the same spec, so the same files
 * applied again from Git all say `unchanged`.
 */
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AppError } from '@nodekeeper/common';
import type { ApiClient } from './api-client.ts';
import type { ApplyDocument } from './apply-documents.ts';
import { CliErrorCode, usageError } from './cli-errors.ts';

export type ApplyOutcome = 'created' | 'configured' | 'unchanged';

/** `metadata.resourceVersion` of an object as the API served it, or null when it has none. */
export function resourceVersionOf(obj: unknown): string | null {
  const md = typeof obj === 'object' && obj !== null ? (obj as { metadata?: { resourceVersion?: unknown } }).metadata : undefined;
  return typeof md?.resourceVersion === 'string' ? md.resourceVersion : null;
}

/** What an apply did, from the resourceVersion before (null: the object did not exist) and after. */
export function applyOutcome(before: string | null, after: string | null): ApplyOutcome {
  if (before === null) return 'created';
  return before === after ? 'unchanged' : 'configured';
}

/** The object's current resourceVersion, or null when it does not exist yet. */
async function currentVersion(api: ApiClient, doc: ApplyDocument): Promise<string | null> {
  if (doc.kind === 'ClusterPackageVersion') return resourceVersionOf(await api.getClusterPackageVersion());
  if (doc.kind === 'RemediationRule') {
    const found = (await api.listRemediationRules()).items.find((r) => r.metadata.name === doc.name && (r as { status?: { source?: string } }).status?.source === 'applied');
    return found === undefined ? null : resourceVersionOf(found);
  }
  try {
    return resourceVersionOf(await api.getRollout(doc.name));
  } catch (err) {
    if (err instanceof AppError && err.code === 'NK_ROLLOUT_NOT_FOUND') return null;
    throw err;
  }
}

/**
 * Applies one checked document (`object` already signed where asked) and says what
 * happened. The coordinator's refusals (409 NK_CONFLICT, 422 NK_ROLLOUT_FIELD_IMMUTABLE,
 * 400 with paths) come through as they are.
 */
export async function applyDocument(api: ApiClient, doc: ApplyDocument, object: unknown): Promise<{ line: string; outcome: ApplyOutcome }> {
  const before = await currentVersion(api, doc);
  if (doc.kind === 'ClusterPackageVersion') {
    const cpv = await api.putClusterPackageVersion(object);
    const outcome = applyOutcome(before, resourceVersionOf(cpv));
    return { outcome, line: `clusterpackageversion/cluster ${outcome} (generation ${cpv.metadata.generation})` };
  }
  if (doc.kind === 'RemediationRule') {
    const rule = await api.putRemediationRule(doc.name, object);
    const outcome = applyOutcome(before, resourceVersionOf(rule));
    return { outcome, line: `remediationrule/${rule.metadata.name} ${outcome}` };
  }
  const r = await api.applyRollout(doc.name, object);
  const outcome = applyOutcome(before, resourceVersionOf(r));
  return { outcome, line: `rollout/${r.metadata.name} ${outcome}` };
}

/** File names `apply -f DIR` reads, as kubectl does (not recursive). */
const MANIFEST_FILE = /\.(ya?ml|json)$/;

/**
 * The documents of `-f FILE` or of every .yaml, .yml and .json file of `-f DIR` (in name
 * order), all read and checked before anything is sent. `load` reads and checks one file.
 */
export async function loadApplyDocuments(file: string, cwd: string, load: (file: string) => Promise<ApplyDocument[]>): Promise<ApplyDocument[]> {
  const path = file === '-' ? null : resolve(cwd, file);
  if (path === null || !statSync(path, { throwIfNoEntry: false })?.isDirectory()) return load(file);
  const files = readdirSync(path).filter((f) => MANIFEST_FILE.test(f)).sort();
  if (files.length === 0) throw usageError(CliErrorCode.badManifest, `${file}: no .yaml, .yml or .json files in the directory`);
  const docs: ApplyDocument[] = [];
  for (const f of files) {
    for (const d of await load(join(path, f))) {
      // Two files naming one object would apply the last silently: refuse before sending.
      if (docs.some((x) => x.kind === d.kind && x.name === d.name)) throw usageError(CliErrorCode.badManifest, `${join(file, f)}: ${d.kind} ${d.name} appears twice in ${file}`);
      docs.push(d);
    }
  }
  return docs;
}
