/**
 * Reading manifests for `nkctl apply -f` (ClusterPackageVersion, Rollout, RemediationRule)
 * and `nkctl rollout create -f`: one or several
 * YAML (or JSON) documents separated by `---`. Everything is parsed and checked before
 * anything is sent, so a typo in the third document never leaves the first two applied
 * alone. Only the envelope is checked here (YAML syntax, apiVersion, kind, name); the
 * coordinator validates the contents and names the path of the first error.
 */
import { parseAllDocuments } from 'yaml';
import { API_VERSION } from '@nodekeeper/api';
import { CliErrorCode, usageError } from './cli-errors.ts';

export const APPLY_KINDS = ['ClusterPackageVersion', 'Rollout', 'RemediationRule'] as const;
export type ApplyKind = (typeof APPLY_KINDS)[number];

/** One document, checked far enough to route it. */
export interface ApplyDocument {
  readonly kind: ApplyKind;
  /** `cluster` for the ClusterPackageVersion, the object's own name otherwise. */
  readonly name: string;
  readonly object: Record<string, unknown>;
}

/** Kubernetes object names: a DNS subdomain (lower case, digits, `-` and `.`). */
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parse every document of `text` (from `source`, named in errors) and check each is
 * an object of an allowed kind. Empty documents (a trailing `---`) are skipped;
 * throws NK_CLI_BAD_MANIFEST naming the document and what is wrong.
 */
export function parseDocuments(text: string, source: string, kinds: readonly ApplyKind[] = APPLY_KINDS): ApplyDocument[] {
  const bad = (n: number | null, why: string) =>
    usageError(CliErrorCode.badManifest, `${source}${n === null ? '' : `, document ${n}`}: ${why}`, { context: { source } });
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  if (!Array.isArray(docs)) throw bad(null, 'no documents');
  const out: ApplyDocument[] = [];
  for (const [i, doc] of docs.entries()) {
    const n = i + 1;
    const error = doc.errors[0];
    if (error !== undefined) throw bad(n, `not valid YAML: ${error.message.split('\n')[0] ?? ''}`);
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) continue;
    if (!isObject(value)) throw bad(n, `expected an object with apiVersion and kind, got ${Array.isArray(value) ? 'a list' : typeof value}`);
    if (value['apiVersion'] !== API_VERSION) {
      throw bad(n, `apiVersion must be ${API_VERSION}, got ${JSON.stringify(value['apiVersion'] ?? null)}`);
    }
    const kind = value['kind'];
    if (typeof kind !== 'string' || !(kinds as readonly string[]).includes(kind)) {
      throw bad(n, `kind ${JSON.stringify(kind ?? null)} is not one of ${kinds.join(', ')}`);
    }
    const metadata = value['metadata'];
    if (metadata !== undefined && !isObject(metadata)) throw bad(n, 'metadata must be an object');
    const name = metadata?.['name'];
    if (kind === 'Rollout' || kind === 'RemediationRule') {
      if (typeof name !== 'string' || !NAME.test(name)) {
        const example = kind === 'Rollout' ? 'web-kubelet' : 'kubelet-not-running';
        throw bad(n, `a ${kind} needs metadata.name, a lower-case DNS name such as ${example} (got ${JSON.stringify(name ?? null)})`);
      }
      // Two documents naming one rule would apply the last silently: refuse before sending.
      if (kind === 'RemediationRule' && out.some((d) => d.kind === kind && d.name === name)) throw bad(n, `RemediationRule ${name} appears twice`);
      out.push({ kind, name, object: value });
    } else {
      // There is one ClusterPackageVersion per cluster; its name is fixed.
      if (name !== undefined && name !== 'cluster') throw bad(n, `the ClusterPackageVersion is named "cluster", got ${JSON.stringify(name)}`);
      out.push({ kind: 'ClusterPackageVersion', name: 'cluster', object: value });
    }
  }
  if (out.length === 0) throw bad(null, 'no documents');
  return out;
}
