/**
 * Label selectors as kubectl's `-l` reads them (equality-based, the subset of
 * https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors
 * that matters for machines): `key=value`, `key==value`, `key!=value`, `key`, `!key`,
 * comma-separated and all required. Filtering is client-side.
 */
import { CliErrorCode, usageError } from './cli-errors.ts';

export type Requirement =
  | { readonly op: 'eq'; readonly key: string; readonly value: string }
  | { readonly op: 'neq'; readonly key: string; readonly value: string }
  | { readonly op: 'exists'; readonly key: string }
  | { readonly op: 'notExists'; readonly key: string };

// Label keys: optional DNS-subdomain prefix and a name; values may be empty.
const KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

/** Parse a selector; garbage throws NK_CLI_BAD_SELECTOR naming the bad part. */
export function parseSelector(input: string): readonly Requirement[] {
  const bad = (part: string, why: string) =>
    usageError(CliErrorCode.badSelector, `invalid label selector "${input}": "${part}" ${why}`, { context: { input } });
  if (input.trim() === '') return [];
  return input.split(',').map((raw): Requirement => {
    const part = raw.trim();
    const m = /^(!?)([^=!]*)(?:(==|=|!=)(.*))?$/.exec(part);
    if (m === null) throw bad(part, 'is not key=value, key!=value, key or !key');
    const [, not = '', key = '', op, value = ''] = m;
    if (!KEY.test(key)) throw bad(part, 'has an invalid label key');
    if (not === '!') {
      if (op !== undefined) throw bad(part, 'cannot combine ! with an operator');
      return { op: 'notExists', key };
    }
    if (op === undefined) return { op: 'exists', key };
    if (!VALUE.test(value)) throw bad(part, 'has an invalid label value');
    return op === '!=' ? { op: 'neq', key, value } : { op: 'eq', key, value };
  });
}

/** True when the labels satisfy every requirement. */
export function matches(requirements: readonly Requirement[], labels: Readonly<Record<string, string>>): boolean {
  return requirements.every((r) => {
    const has = Object.hasOwn(labels, r.key);
    switch (r.op) {
      case 'eq':
        return has && labels[r.key] === r.value;
      case 'neq':
        return !has || labels[r.key] !== r.value;
      case 'exists':
        return has;
      case 'notExists':
        return !has;
    }
  });
}
